package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// env is a NATS server, a router adapter driven by the test, and the means
// to start gateways on it.
type env struct {
	t   *testing.T
	ns  *server.Server
	js  jetstream.JetStream
	a   *router.Adapter
	ctx context.Context
	mu  sync.Mutex
	q   map[string]*queue.Queue // the router's queues, as the test drives them
	n   int
}

var testDirectory = router.State{
	Tenants: []subjects.Tenant{{TenantID: "acme", Name: "Acme"}, {TenantID: "globex", Name: "Globex"}},
	Groups: []subjects.Group{
		{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"},
		{ServiceGroupID: "acme-support", TenantID: "acme", Name: "Support"},
		{ServiceGroupID: "globex-chat", TenantID: "globex", Name: "Chat"},
	},
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := bareEnv(t)
	for _, g := range testDirectory.Groups {
		e.q[g.ServiceGroupID] = queue.New(g.ServiceGroupID)
	}
	restartAdapter(t, e)
	return e
}

// bareEnv is a NATS server and nothing on it yet.
func bareEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ns := natstest.Server(t)
	_, js := natstest.Connect(t, ns)
	return &env{t: t, ns: ns, js: js, ctx: ctx, q: map[string]*queue.Queue{}}
}

// restartAdapter starts a router adapter on the env's bus and reports the
// router's whole state to it.
func restartAdapter(t *testing.T, e *env) {
	t.Helper()
	a := openAdapter(t, e)
	st := testDirectory
	st.Queues = map[string][]queue.Session{}
	for id, q := range e.q {
		st.Queues[id] = q.Sessions()
	}
	if err := a.LinkUp(e.ctx, &st); err != nil {
		t.Fatal(err)
	}
	e.a = a
}

// apply makes the router change a queue.
func (e *env) apply(group string, c queue.Change) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.q[group].Apply(c); err != nil {
		e.t.Fatal(err)
	}
	if err := e.a.Apply(e.ctx, group, c); err != nil {
		e.t.Fatal(err)
	}
}

// enqueue adds n sessions at the tail of a group; it returns their CallIDs.
func (e *env) enqueue(group string, n int) []string {
	e.t.Helper()
	var ids []string
	for range n {
		e.n++
		id := fmt.Sprintf("call-%d", e.n)
		e.apply(group, queue.Change{Op: queue.OpEnqueue, CallID: id, Session: queue.Session{MediaType: queue.MediaVoice,
			TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, e.n, 0, time.UTC), CustomerInformation: "+442079460" + fmt.Sprintf("%03d", e.n%1000)}})
		ids = append(ids, id)
	}
	return ids
}

// openAdapter opens a router adapter on the env's bus, closed at cleanup.
func openAdapter(t *testing.T, e *env) *router.Adapter {
	t.Helper()
	a, err := router.Open(e.ctx, e.js, natstest.Logger(t), router.Config{StatusInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = a.Close(c)
	})
	return a
}

// gateway starts a gateway on the env's NATS server and serves it over
// loopback HTTP.
func (e *env) gateway(cfg bridge.Config, seats bridge.Seats) (*bridge.Server, string) {
	e.t.Helper()
	nc, js := natstest.Connect(e.t, e.ns)
	if seats == nil {
		seats = &countingSeats{max: 1000}
	}
	srv, err := bridge.New(e.ctx, natstest.Logger(e.t), cfg, bridge.Deps{Conn: nc, JetStream: js, Seats: seats})
	if err != nil {
		e.t.Fatal(err)
	}
	base := newHTTPServer(e.t, srv)
	waitFor(e.t, "the gateway to see the router", srv.RouterConnected)
	return srv, "ws" + strings.TrimPrefix(base, "http") + protocol.Path
}

// newHTTPServer serves a gateway on loopback until the test ends; it
// returns the base URL.
func newHTTPServer(t testing.TB, srv *bridge.Server) string {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return hs.URL
}

// countingSeats is a process-local seat count for tests that are not about
// license seats.
type countingSeats struct {
	mu        sync.Mutex
	max, used int
}

func (s *countingSeats) Acquire(_ context.Context, _ string) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used >= s.max {
		return nil, errors.New("no seat free")
	}
	s.used++
	var once sync.Once
	return func(context.Context) error {
		once.Do(func() {
			s.mu.Lock()
			s.used--
			s.mu.Unlock()
		})
		return nil
	}, nil
}

func (s *countingSeats) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

func dial(t *testing.T, url string, f protocol.Format) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Format: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func initialized(t *testing.T, url string, positions bool) *client.Client {
	t.Helper()
	c := dial(t, url, protocol.JSON)
	if err := c.Initialize(ctxT(t), "", "", positions); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next returns the next event, skipping KeepAlives unless asked for.
func next(t *testing.T, c *client.Client) protocol.Message {
	t.Helper()
	for {
		select {
		case m, ok := <-c.Events():
			if !ok {
				code, why := c.CloseCode()
				t.Fatalf("connection ended (close %d %q) while waiting for an event", code, why)
			}
			if m.Event != protocol.EventKeepAlive {
				return m
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no event within 20s")
		}
	}
}

// untilComplete applies events to a mirror until InitialDataComplete of group.
func untilComplete(t *testing.T, c *client.Client, m *client.Mirror, group string) protocol.Message {
	t.Helper()
	for {
		e := next(t, c)
		if err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
		if e.Event == protocol.EventInitialDataComplete && e.ServiceGroupID == group {
			return e
		}
	}
}

func faultType(err error) protocol.FaultType {
	var f *protocol.Fault
	if errors.As(err, &f) {
		return f.Type
	}
	return ""
}

func callIDs(ss []protocol.SessionInfo) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.CallID)
	}
	return out
}

func queueIDs(q *queue.Queue) []string {
	var out []string
	for _, s := range q.Sessions() {
		out = append(out, s.CallID)
	}
	return out
}
