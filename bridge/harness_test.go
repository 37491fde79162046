package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/asyncapi"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// env is the stack the tests drive (stacktest.Env) and a counter for
// CallIDs.
type env struct {
	*stacktest.Env
	n int
}

func newEnv(t *testing.T) *env { return &env{Env: stacktest.New(t)} }

// bareEnv is a NATS server and nothing on it yet.
func bareEnv(t *testing.T) *env { return &env{Env: stacktest.Bare(t)} }

// enqueue adds n sessions at the tail of a group, stored when it returns;
// it returns their CallIDs.
func (e *env) enqueue(group string, n int) []string {
	e.TB.Helper()
	var ids []string
	for range n {
		e.n++
		id := fmt.Sprintf("call-%d", e.n)
		e.Apply(group, queue.Change{Op: queue.OpEnqueue, CallID: id, Session: queue.Session{MediaType: queue.MediaVoice,
			TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, e.n, 0, time.UTC), CustomerInformation: "+442079460" + fmt.Sprintf("%03d", e.n%1000)}})
		ids = append(ids, id)
	}
	// Stored before it returns: a gateway loading the group now sees them
	// all (the adapter publishes in the background).
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		e.TB.Fatal(err)
	}
	return ids
}

// gateway starts a gateway on the env's NATS server and serves it over
// loopback HTTP; it returns the WebSocket URL.
func (e *env) gateway(cfg bridge.Config, seats bridge.Seats) (*bridge.Server, string) {
	e.TB.Helper()
	if seats == nil {
		seats = &countingSeats{max: 1000}
	}
	srv := e.Gateway(cfg, seats, nil)
	base := newHTTPServer(e.TB, srv)
	return srv, "ws" + strings.TrimPrefix(base, "http") + protocol.Path
}

// newHTTPServer serves a gateway on loopback until the test ends; it
// returns the base URL.
func newHTTPServer(t testing.TB, srv *bridge.Server) string {
	t.Helper()
	return serveWith(t, srv, httptest.NewServer).URL
}

// serveWith starts an httptest server (plain or TLS) for a gateway; the gateway
// and the server are shut down when the test ends.
func serveWith(t testing.TB, srv *bridge.Server, start func(http.Handler) *httptest.Server) *httptest.Server {
	t.Helper()
	hs := start(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return hs
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
	opts := client.Options{Format: f}
	if f == protocol.JSON {
		opts.OnWire = conforms(t)
	}
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// schemas are docs/asyncapi.yaml's, loaded once.
var schemas = sync.OnceValues(asyncapi.Load)

// conforms returns a client's OnWire that checks every JSON message it
// sends and receives against docs/asyncapi.yaml; a test fails at its end
// on any that does not conform (the first few are shown).
func conforms(t testing.TB) func(bool, []byte) {
	t.Helper()
	s, err := schemas()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []error
	checked, done := 0, false
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		done = true
		if _, ok := malformed.Load(t.Name()); ok {
			bad = slices.DeleteFunc(bad, func(err error) bool { return errors.Is(err, errSent) })
		}
		if len(bad) > 0 {
			t.Errorf("%d of %d messages do not conform to %s, first:\n%v", len(bad), checked, asyncapi.Document, errors.Join(bad[:min(3, len(bad))]...))
		}
	})
	return func(sent bool, data []byte) {
		check := s.CheckServer
		if sent {
			check = s.CheckClient
		}
		err := check(data)
		if err != nil && sent {
			err = fmt.Errorf("%w: %w", errSent, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		checked++
		if err != nil {
			bad = append(bad, err)
		}
	}
}

// errSent marks a request that does not conform.
var errSent = errors.New("sent")

// malformed holds the names of tests whose clients send malformed requests
// on purpose (sendsMalformed): their requests are not held to the
// document, what the gateway answers is.
var malformed sync.Map

func sendsMalformed(t testing.TB) { malformed.Store(t.Name(), true) }

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

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	stacktest.WaitFor(t, what, cond)
}

// retryInitialize retries Initialize, ten times a second (a client that
// retries faster than the request limit is closed), until it works.
func retryInitialize(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for c.Initialize(ctxT(t), "", "", false) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Initialize did not work again within 20s")
		}
		time.Sleep(100 * time.Millisecond)
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

// subscribedTo is an initialized client subscribed to group, with a mirror
// that holds the group's initial data.
func subscribedTo(t *testing.T, url, group string, positions bool) (*client.Client, *client.Mirror) {
	t.Helper()
	c := initialized(t, url, positions)
	m := client.NewMirror(positions)
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: group}); err != nil {
		t.Fatal(err)
	}
	untilComplete(t, c, m, group)
	return c, m
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
