package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/internal/embednats"
)

// clusterFlags make the embedded server of `run` a node of a NATS cluster
// of `run`s (one per machine): each runs its own adapter (one is active,
// the others stand by) and gateway, and the bus is kept on every node.
type clusterFlags struct {
	name, listen, routes, serverName string
	// credentials is a credentials file shared by every node (made once
	// by `sisbridge nats-config`): the roles' users, and the routes'.
	credentials string
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "nats-cluster", "", "make the embedded NATS server a node of this cluster (with --nats-routes and --nats-credentials; --replicas 3 keeps the bus on three nodes)")
	fs.StringVar(&c.listen, "nats-cluster-listen", "127.0.0.1:6222", "address of the embedded server's route listener (with --nats-cluster)")
	fs.StringVar(&c.routes, "nats-routes", "", "comma-separated route addresses (host:port) of the cluster's nodes, this one's may be among them")
	fs.StringVar(&c.serverName, "nats-server-name", hostName(), "this node's name, unique in the cluster")
	fs.StringVar(&c.credentials, "nats-credentials", "", "credentials file shared by every node of the cluster (sisbridge nats-config); default: the data directory's own")
}

// on says whether the node is to join a cluster.
func (c *clusterFlags) on() bool { return c.name != "" }

// nodes is how many nodes the routes name, this one included.
func (c *clusterFlags) nodes() int {
	seen := map[string]bool{c.listen: true}
	for _, r := range c.routeList() {
		seen[r] = true
	}
	return len(seen)
}

func (c *clusterFlags) routeList() []string {
	var out []string
	for _, r := range strings.Split(c.routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// check names what cannot work, before anything starts.
func (c *clusterFlags) check(replicas int) []error {
	var errs []error
	switch {
	case !c.on() && replicas > 1:
		errs = append(errs, fmt.Errorf("--replicas %d: the embedded server is one node; replicas need a cluster of as many (--nats-cluster, or `sisbridge router` and gateways on one)", replicas))
	case !c.on():
	case c.credentials == "":
		errs = append(errs, errors.New("--nats-cluster: every node needs the same --nats-credentials (make them once with sisbridge nats-config)"))
	case len(c.routeList()) == 0:
		errs = append(errs, errors.New("--nats-cluster: --nats-routes must name the other nodes"))
	case replicas > c.nodes():
		errs = append(errs, fmt.Errorf("--replicas %d: the routes name %d nodes", replicas, c.nodes()))
	}
	return errs
}

// credentialsFor returns the credentials the node uses: the shared file's
// in a cluster (it must hold the route secret), else the data
// directory's, made on first use.
func (c *clusterFlags) credentialsFor(dir string) (access.Credentials, error) {
	if c.credentials == "" {
		return runCredentials(dir)
	}
	creds, err := access.Load(c.credentials)
	if err != nil {
		return nil, err
	}
	need := slices.Clone(access.Roles)
	if c.on() {
		need = append(need, access.Route)
	}
	for _, r := range need {
		if _, ok := creds[r]; !ok {
			return nil, fmt.Errorf("--nats-credentials %s has no %s user (sisbridge nats-config --out DIR makes every one)", c.credentials, r)
		}
	}
	return creds, nil
}

// config is the embedded server's cluster settings.
func (c *clusterFlags) config(creds access.Credentials) embednats.Cluster {
	if !c.on() {
		return embednats.Cluster{}
	}
	route := creds[access.Route]
	return embednats.Cluster{Name: c.name, ServerName: c.serverName, Listen: c.listen, Routes: c.routeList(), User: route.User, Password: route.Password}
}

// awaitJetStream waits until the cluster's JetStream answers (its nodes
// have met and elected a leader), saying so every few seconds.
func awaitJetStream(ctx context.Context, nc *nats.Conn, log zerolog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	start, said := time.Now(), time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for the cluster's JetStream: %w", ctx.Err())
		}
		if time.Since(said) >= waitLogEvery {
			said = time.Now()
			log.Warn().Err(err).Dur("waited", time.Since(start).Round(time.Second)).Msg("waiting for the NATS cluster's JetStream (a majority of the nodes must be up)")
		}
		time.Sleep(250 * time.Millisecond)
	}
}
