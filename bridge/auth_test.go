package bridge_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/seats"
	"github.com/sisbridge/sisbridge/subjects"
	"github.com/sisbridge/sisbridge/users"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	store := userStore(t, e)
	if err := store.Add(e.Ctx, "admin@example.com", "correct horse", []string{users.RoleHostAdministrator}); err != nil {
		t.Fatal(err)
	}
	if err := store.Add(e.Ctx, "agent", "agent password", nil); err != nil {
		t.Fatal(err)
	}
	_, url, base := authGateway(t, e, store)
	c := dial(t, url, protocol.JSON)
	ctx := ctxT(t)
	for _, cred := range [][2]string{{"", ""}, {"admin@example.com", "wrong"}, {"agent", "agent password"}, {"nobody", "x"}} {
		if err := c.Initialize(ctx, cred[0], cred[1], false); faultType(err) != protocol.InvalidUserFault {
			t.Fatalf("%s: %v", cred[0], err)
		}
	}
	if err := c.Initialize(ctx, "admin@example.com", "correct horse", false); err != nil {
		t.Fatalf("host administrator: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/groups", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("groups without credentials: %v %v", resp, err)
	}
	req.SetBasicAuth("admin@example.com", "correct horse")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("groups with credentials: %v %v", resp, err)
	}
}

// TestLicenseSeatsAcrossGateways: two gateways on one NATS share the seats.
func TestLicenseSeatsAcrossGateways(t *testing.T) {
	e := newEnv(t)
	kv, err := e.JS.KeyValue(e.Ctx, subjects.BucketSeats)
	if err != nil {
		t.Fatal(err)
	}
	gateway := func() string {
		pool, err := seats.New(kv, natstest.Logger(t), seats.Config{Seats: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = pool.Close(ctx)
		})
		_, url := e.gateway(bridge.Config{}, poolSeats{pool})
		return url
	}
	first, second := gateway(), gateway()
	a := initialized(t, first, false)
	initialized(t, second, false)
	initialized(t, first, false)
	late := dial(t, second, protocol.JSON)
	if err := late.Initialize(ctxT(t), "", "", false); faultType(err) != protocol.NoLicenseFault {
		t.Fatalf("fourth session across two gateways: %v", err)
	}
	_ = a.Close() // a seat taken on the first gateway comes free for the second
	waitFor(t, "the freed seat", func() bool { return late.Initialize(ctxT(t), "", "", false) == nil })
}

type poolSeats struct{ p *seats.Pool }

func (s poolSeats) Acquire(ctx context.Context, id string) (func(context.Context) error, error) {
	seat, err := s.p.Acquire(ctx, id)
	if err != nil {
		return nil, err
	}
	return seat.Release, nil
}

// serve serves srv over loopback HTTP; it returns its WebSocket and HTTP URLs.
func serve(t *testing.T, srv *bridge.Server) (string, string) {
	t.Helper()
	hs := newHTTPServer(t, srv)
	return "ws" + strings.TrimPrefix(hs, "http") + protocol.Path, hs
}

// authGateway serves a gateway that signs clients in against store, the
// router connected; it returns it, its WebSocket URL and its HTTP base.
func authGateway(t *testing.T, e *env, store *users.Store) (srv *bridge.Server, url, base string) {
	t.Helper()
	nc, js := natstest.Connect(t, e.NS)
	srv, err := bridge.New(e.Ctx, natstest.Logger(t), bridge.Config{Auth: true}, bridge.Deps{Conn: nc, JetStream: js, Users: store, Seats: &countingSeats{max: 10}})
	if err != nil {
		t.Fatal(err)
	}
	url, base = serve(t, srv)
	waitFor(t, "the router", srv.RouterConnected)
	return srv, url, base
}

// userStore opens the bus's user store.
func userStore(t *testing.T, e *env) *users.Store {
	t.Helper()
	kv, err := users.OpenBucket(e.Ctx, e.JS, subjects.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := users.New(kv, users.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// TestSignInIsThrottled: after SignInFree failures of a LogonID (or from
// an address), attempts wait a doubling back-off, refused unchecked with
// the same fault, on Initialize and on /v1/groups alike; once it has
// passed the right password works. Every attempt leaves an audit line,
// and no line holds a password.
func TestSignInIsThrottled(t *testing.T) {
	e := newEnv(t)
	store := userStore(t, e)
	const good, bad = "correct horse battery", "wrong-guess-123"
	if err := store.Add(e.Ctx, "admin@example.com", good, []string{users.RoleHostAdministrator}); err != nil {
		t.Fatal(err)
	}
	var logs lockedLog
	log := zerolog.New(&logs)
	nc, js := natstest.Connect(t, e.NS)
	cfg := bridge.Config{Auth: true, Limits: bridge.Limits{SignInFree: 2, SignInBackoff: 300 * time.Millisecond}}
	srv, err := bridge.New(e.Ctx, log, cfg, bridge.Deps{Conn: nc, JetStream: js, Users: store, Seats: &countingSeats{max: 10}})
	if err != nil {
		t.Fatal(err)
	}
	url, base := serve(t, srv)
	waitFor(t, "the router", srv.RouterConnected)
	c := dial(t, url, protocol.JSON)
	ctx := ctxT(t)
	for range 2 {
		if err := c.Initialize(ctx, "admin@example.com", bad, false); faultType(err) != protocol.InvalidUserFault {
			t.Fatal(err)
		}
	}
	if err := c.Initialize(ctx, "admin@example.com", good, false); faultType(err) != protocol.InvalidUserFault {
		t.Fatalf("the right password during the back-off: %v, want InvalidUserFault", err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/groups", nil)
	req.SetBasicAuth("admin@example.com", good)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1/groups during the back-off: %v %v", resp, err)
	}
	if n := gatewayMetrics(t, url)[`sis_gateway_limit_hits_total{limit="sign_in_backoff"}`]; n != 2 {
		t.Fatalf("throttled sign-ins counted %v, want 2", n)
	}
	waitFor(t, "the back-off to pass", func() bool { return c.Initialize(ctx, "admin@example.com", good, false) == nil })
	out := logs.String()
	for _, want := range []string{`"event":"sign_in"`, `"result":"refused"`, `"result":"throttled"`, `"result":"ok"`, `"audit":true`} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %s in the log", want)
		}
	}
	if strings.Contains(out, good) || strings.Contains(out, bad) {
		t.Fatal("a password in the log")
	}
}

// lockedLog collects log lines from several goroutines.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestSessionEndsOnABadSignIn: a client.Session refused with
// InvalidUserFault stops at once and says why (retrying a wrong password
// cannot mend it and would only feed the sign-in throttle); the same
// session with the right password comes up.
func TestSessionEndsOnABadSignIn(t *testing.T) {
	e := newEnv(t)
	store := userStore(t, e)
	if err := store.Add(e.Ctx, "ann", "ann's password", []string{users.RoleHostAdministrator}); err != nil {
		t.Fatal(err)
	}
	srv, url, _ := authGateway(t, e, store)
	ctx := ctxT(t) // far longer than the session's retries would take to give up on their own
	_, err := client.Connect(ctx, client.SessionConfig{URL: url, LogonID: "ann", Password: "wrong"})
	if faultType(err) != protocol.InvalidUserFault {
		t.Fatalf("Connect with a wrong password: %v, want the InvalidUserFault", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Connect waited for its context instead of ending on the fault")
	}
	waitFor(t, "the refused connection gone", func() bool { return srv.Stats().Connections == 0 })
	s, err := client.Connect(ctx, client.SessionConfig{URL: url, LogonID: "ann", Password: "ann's password"})
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	s.Close()
}
