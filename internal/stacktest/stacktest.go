// Package stacktest runs SIS Bridge for tests, on loopback: a NATS server
// with JetStream, a router adapter that the test drives as its router, and
// gateways on that bus.
package stacktest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// Directory is the router's directory in Env: two tenants, three groups.
var Directory = router.State{
	Tenants: []subjects.Tenant{{TenantID: "acme", Name: "Acme"}, {TenantID: "globex", Name: "Globex"}},
	Groups: []subjects.Group{
		{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"},
		{ServiceGroupID: "acme-support", TenantID: "acme", Name: "Support"},
		{ServiceGroupID: "globex-chat", TenantID: "globex", Name: "Chat"},
	},
}

// Env is a NATS server and, once started, a router adapter; Queues are the
// router's queues as the test drives them.
type Env struct {
	TB      testing.TB
	NS      *server.Server
	JS      jetstream.JetStream
	Adapter *router.Adapter
	Ctx     context.Context
	Queues  map[string]*queue.Queue
	dir     router.State  // the router's directory: Directory unless NewWith
	adapter router.Config // the adapters' configuration
	mu      sync.Mutex
}

// Bare returns a NATS server with nothing on it yet.
func Bare(tb testing.TB) *Env {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	ns := natstest.Server(tb)
	_, js := natstest.Connect(tb, ns)
	return &Env{TB: tb, NS: ns, JS: js, Ctx: ctx, Queues: map[string]*queue.Queue{}, dir: Directory}
}

// New returns a NATS server with an adapter whose router reports Directory
// with empty queues.
func New(tb testing.TB) *Env {
	tb.Helper()
	return NewWith(tb, Directory, router.Config{})
}

// NewWith returns a NATS server with an adapter whose router reports dir:
// its tenants and groups, each group's queue as dir.Queues holds it (empty
// when absent). The adapter publishes the queues as it comes up. cfg
// configures every adapter of the Env (StatusInterval defaults to 100 ms).
func NewWith(tb testing.TB, dir router.State, cfg router.Config) *Env {
	tb.Helper()
	e := Bare(tb)
	e.dir = router.State{Tenants: dir.Tenants, Groups: dir.Groups}
	e.adapter = cfg
	for _, g := range dir.Groups {
		q := queue.New(g.ServiceGroupID)
		for _, s := range dir.Queues[g.ServiceGroupID] {
			if _, err := q.Apply(queue.Change{Op: queue.OpEnqueue, CallID: s.CallID, Session: s}); err != nil {
				tb.Fatal(err)
			}
		}
		e.Queues[g.ServiceGroupID] = q
	}
	e.StartAdapter()
	return e
}

// OpenAdapter opens a router adapter on the bus, closed at cleanup.
func (e *Env) OpenAdapter() *router.Adapter {
	e.TB.Helper()
	cfg := e.adapter
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 100 * time.Millisecond
	}
	if cfg.Bus.AdapterLeaseTTL == 0 {
		// These tests have one adapter and no standby: a machine loaded
		// enough to hold its lease renewal up for seconds must not make it
		// stand down (the failover tests are router's and the topology's).
		cfg.Bus.AdapterLeaseTTL = 30 * time.Second
	}
	a, err := router.Open(e.Ctx, e.JS, natstest.Logger(e.TB), cfg)
	if err != nil {
		e.TB.Fatal(err)
	}
	e.TB.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = a.Close(c)
	})
	return a
}

// StartAdapter opens an adapter and reports the router's whole state to it
// (the link comes up); it becomes e.Adapter.
func (e *Env) StartAdapter() {
	e.TB.Helper()
	a := e.OpenAdapter()
	if err := a.LinkUp(e.Ctx, e.State()); err != nil {
		e.TB.Fatal(err)
	}
	e.Adapter = a
}

// State is the router's directory and queues now.
func (e *Env) State() *router.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.dir
	st.Queues = map[string][]queue.Session{}
	for id, q := range e.Queues {
		st.Queues[id] = q.Sessions()
	}
	return &st
}

// Apply makes the router change a queue and reports it to the adapter.
func (e *Env) Apply(group string, c queue.Change) {
	e.TB.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.Queues[group].Apply(c); err != nil {
		e.TB.Fatal(err)
	}
	if err := e.Adapter.Apply(e.Ctx, group, c); err != nil {
		e.TB.Fatal(err)
	}
}

// ApplyUnheard changes a router queue without telling the adapter: the
// router moves on while its link is down.
func (e *Env) ApplyUnheard(group string, c queue.Change) {
	e.TB.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.Queues[group].Apply(c); err != nil {
		e.TB.Fatal(err)
	}
}

// Gateway starts a gateway on the bus, shut down at cleanup, and waits until
// it sees the router.
func (e *Env) Gateway(cfg bridge.Config, seats bridge.Seats, users bridge.Authenticator) *bridge.Server {
	e.TB.Helper()
	nc, js := natstest.Connect(e.TB, e.NS)
	srv, err := bridge.New(e.Ctx, natstest.Logger(e.TB), cfg, bridge.Deps{Conn: nc, JetStream: js, Seats: seats, Users: users})
	if err != nil {
		e.TB.Fatal(err)
	}
	e.TB.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	WaitFor(e.TB, "the gateway to see the router", srv.RouterConnected)
	return srv
}

// WaitFor polls cond until it holds, failing the test after 20 s.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// PutGroup adds a group to the router's directory, with an empty queue, and
// reports it to the adapter; a later LinkUp lists it.
func (e *Env) PutGroup(g subjects.Group) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.Queues[g.ServiceGroupID]; !ok {
		e.dir.Groups = append(slices.Clone(e.dir.Groups), g) // not the shared Directory's array
		e.Queues[g.ServiceGroupID] = queue.New(g.ServiceGroupID)
	}
	if err := e.Adapter.PutGroup(e.Ctx, g); err != nil {
		return fmt.Errorf("put group %s: %w", g.ServiceGroupID, err)
	}
	return nil
}

// RemoveGroup takes a group out of the router's directory and has the
// adapter remove it.
func (e *Env) RemoveGroup(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.Queues, id)
	e.dir.Groups = slices.DeleteFunc(slices.Clone(e.dir.Groups), func(g subjects.Group) bool { return g.ServiceGroupID == id })
	if err := e.Adapter.RemoveGroup(e.Ctx, id); err != nil {
		return fmt.Errorf("remove group %s: %w", id, err)
	}
	return nil
}
