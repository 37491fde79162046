// Package topology holds the test of SIS Bridge beyond one machine
// (topology_test.go): a three-node NATS cluster, two router adapters, two
// gateways and HAProxy, each a process on loopback, broken one way after
// another while 50 clients follow groups through the load balancer. It has
// no code of its own; `make test-cluster` runs it alone.
package topology
