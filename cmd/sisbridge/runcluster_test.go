package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// runNode is one `sisbridge run` of a cluster.
type runNode struct {
	gateway string // http base
	stop    context.CancelFunc
	done    chan error
	log     *lockedBuffer
}

// TestRunFormsACluster: three `sisbridge run`, one per "machine", form a
// NATS cluster with the bus on all three (--replicas 3); one adapter is
// active, the others stand by; every gateway serves. When the node of the
// active adapter stops, another adapter takes over, and a client of a
// surviving gateway keeps getting its group's changes.
func TestRunFormsACluster(t *testing.T) {
	dir := t.TempDir()
	if err := runNATSConfig([]string{"--out", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, configCredentials)
	routes := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var nodes []*runNode
	for i := range 3 {
		n := &runNode{gateway: "http://" + freeAddr(t), done: make(chan error, 1), log: &lockedBuffer{}}
		nctx, stop := context.WithCancel(ctx)
		n.stop = stop
		args := []string{"run", "--data-dir", t.TempDir(), "--nats-listen", freeAddr(t), "--listen", strings.TrimPrefix(n.gateway, "http://"),
			"--nats-cluster", "sis", "--nats-cluster-listen", routes[i], "--nats-routes", strings.Join(routes, ","),
			"--nats-server-name", fmt.Sprintf("node-%d", i+1), "--nats-credentials", creds, "--replicas", "3",
			"--name", fmt.Sprintf("adapter-%d", i+1), "--adapter-lease", "1s", "--speed", "20", "--log-format", "json"}
		go func() { n.done <- run(nctx, args, strings.NewReader(""), n.log) }()
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		for i, n := range nodes {
			if t.Failed() {
				code, body := get(n.gateway + "/readyz")
				_, metrics := get(n.gateway + "/metrics")
				t.Logf("node %d before stopping: /readyz %d %s; adapter active: %v", i+1, code, strings.TrimSpace(body), strings.Contains(metrics, "\nsis_adapter_active 1"))
			}
		}
		for i, n := range nodes {
			n.stop()
			if err := <-n.done; err != nil {
				t.Errorf("node %d: %v", i+1, err)
			}
			if t.Failed() {
				log := n.log.String()
				t.Logf("node %d's log (end):\n%s", i+1, log[max(0, len(log)-6000):])
			}
		}
	})
	start := time.Now()
	active := -1
	until(t, "every gateway ready, one adapter active", func() bool {
		active = activeNode(nodes)
		for _, n := range nodes {
			if code, _ := get(n.gateway + "/readyz"); code != http.StatusOK {
				return false
			}
		}
		return active >= 0
	})
	t.Logf("three nodes formed a cluster, every gateway ready, adapter-%d active: %s", active+1, time.Since(start).Round(time.Millisecond))
	watcher := nodes[(active+1)%3]
	s, err := client.Connect(ctx, client.SessionConfig{URL: "ws" + strings.TrimPrefix(watcher.gateway, "http") + protocol.Path, Positions: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	group := firstGroup(t, watcher.gateway)
	if _, err := s.Subscribe(ctx, protocol.Request{ServiceGroupID: group}); err != nil {
		t.Fatal(err)
	}
	until(t, "the group's initial data", func() bool { _, _, complete := s.View(group); return complete })
	stopped := time.Now()
	nodes[active].stop()
	if err := <-nodes[active].done; err != nil {
		t.Fatalf("the stopped node: %v", err)
	}
	nodes[active].done <- nil // for the cleanup
	t.Logf("node %d stopped: %s", active+1, time.Since(stopped).Round(time.Millisecond))
	seq, _, _ := s.View(group)
	until(t, "another adapter active", func() bool { a := activeNode(nodes); return a >= 0 && a != active })
	t.Logf("another adapter active: %s after the stop began", time.Since(stopped).Round(time.Millisecond))
	until(t, "the group's changes again, through the new active adapter", func() bool { now, _, _ := s.View(group); return now > seq })
	t.Logf("the client had the group's changes again: %s after the stop began", time.Since(stopped).Round(time.Millisecond))
	if st := s.Stats(); st.Broken != 0 {
		t.Fatalf("session stats %+v", st)
	}
}

// activeNode returns the node whose adapter is active, -1 if none is.
func activeNode(nodes []*runNode) int {
	for i, n := range nodes {
		if _, body := get(n.gateway + "/metrics"); strings.Contains(body, "\nsis_adapter_active 1") {
			return i
		}
	}
	return -1
}

// firstGroup returns a group of the directory, as a gateway lists it.
func firstGroup(t *testing.T, gateway string) string {
	t.Helper()
	var id string
	until(t, "a group in the directory", func() bool {
		_, body := get(gateway + "/v1/groups")
		i := strings.Index(body, `"ServiceGroupID":"`)
		if i < 0 {
			return false
		}
		rest := body[i+len(`"ServiceGroupID":"`):]
		id = rest[:strings.Index(rest, `"`)]
		return true
	})
	return id
}

// TestRunClusterFlagsAreChecked: cluster settings of `run` that cannot
// work are refused, each naming what to set, before anything starts.
func TestRunClusterFlagsAreChecked(t *testing.T) {
	dir := t.TempDir()
	if err := runNATSConfig([]string{"--out", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, configCredentials)
	all, err := access.Load(creds)
	if err != nil {
		t.Fatal(err)
	}
	delete(all, access.Route)
	noRoute := filepath.Join(dir, "no-route.json")
	if err := all.Save(noRoute); err != nil {
		t.Fatal(err)
	}
	three := "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"replicas without a cluster", []string{"--replicas", "3"}, "--replicas 3: the embedded server is one node"},
		{"no shared credentials", []string{"--nats-cluster", "sis", "--nats-routes", three}, "the same --nats-credentials"},
		{"no routes", []string{"--nats-cluster", "sis", "--nats-credentials", creds}, "--nats-routes must name the other nodes"},
		{"more replicas than nodes", []string{"--nats-cluster", "sis", "--nats-credentials", creds, "--nats-routes", three, "--nats-cluster-listen", "127.0.0.1:7001", "--replicas", "5"}, "--replicas 5: the routes name 3 nodes"},
		{"credentials without the route secret", []string{"--nats-cluster", "sis", "--nats-credentials", noRoute, "--nats-routes", three}, "has no route user"},
		{"a bad route listener", []string{"--nats-cluster", "sis", "--nats-credentials", creds, "--nats-routes", three, "--nats-cluster-listen", "nowhere"}, "cluster listen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"run", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"}, c.args...)
			err := run(ctx, args, strings.NewReader(""), io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %q", err, c.want)
			}
		})
	}
}
