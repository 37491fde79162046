package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

func waitClosed(t *testing.T, c *client.Client) int {
	t.Helper()
	for {
		select {
		case _, ok := <-c.Events():
			if !ok {
				code, _ := c.CloseCode()
				return code
			}
		case <-time.After(20 * time.Second):
			t.Fatal("connection not closed within 20s")
		}
	}
}

func TestHeartbeatTimeoutClosesAndFreesTheSeat(t *testing.T) {
	e := newEnv(t)
	seats := &countingSeats{max: 10}
	_, url := e.gateway(bridge.Config{KeepAlive: 200 * time.Millisecond, HeartbeatTimeout: 2 * time.Second}, seats)
	alive, silent := initialized(t, url, false), initialized(t, url, false)
	// alive answers every KeepAlive; silent never does.
	stop := make(chan struct{})
	defer close(stop)
	keepAlives := make(chan struct{}, 100)
	go func() {
		for {
			select {
			case <-stop:
				return
			case m, ok := <-alive.Events():
				if !ok {
					return
				}
				if m.Event == protocol.EventKeepAlive {
					keepAlives <- struct{}{}
					_ = alive.Heartbeat(context.Background())
				}
			}
		}
	}()
	if code := waitClosed(t, silent); code != protocol.CloseHeartbeat {
		t.Fatalf("silent session closed with %d", code)
	}
	waitFor(t, "the silent session's seat back", func() bool { return seats.inUse() == 1 })
	for range 3 {
		<-keepAlives // several KeepAlives later the answering session still lives
	}
	if err := alive.Heartbeat(ctxT(t)); err != nil {
		t.Fatalf("answering session: %v", err)
	}
}

// TestKeepAlivesAreSpread: the first KeepAlive of each session comes
// between half an interval and an interval after it connected, at a random
// point, so that clients that connected together do not all get (and
// answer) theirs at once.
func TestKeepAlivesAreSpread(t *testing.T) {
	e := newEnv(t)
	const interval = 2 * time.Second
	_, url := e.gateway(bridge.Config{KeepAlive: interval}, nil)
	var (
		mu      sync.Mutex
		offsets []time.Duration
		wg      sync.WaitGroup
	)
	for range 12 {
		connected := time.Now()
		c := initialized(t, url, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range c.Events() {
				if m.Event == protocol.EventKeepAlive {
					mu.Lock()
					offsets = append(offsets, time.Since(connected))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(offsets) != 12 {
		t.Fatalf("%d KeepAlives, want 12", len(offsets))
	}
	lo, hi := slices.Min(offsets), slices.Max(offsets)
	if lo < interval/2 || hi > interval+time.Second {
		t.Fatalf("first KeepAlives %s to %s after connecting, want within [%s, %s]", lo, hi, interval/2, interval)
	}
	// Unspread, the offsets would differ by the 100 ms of the sweep at
	// most; spread, 12 random points over a second fall within 300 ms
	// about once in 60,000 runs.
	if hi-lo < 150*time.Millisecond {
		t.Fatalf("first KeepAlives spread over %s only", hi-lo)
	}
}

func TestNeverInitializedConnectionIsClosed(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{KeepAlive: 100 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}, nil)
	c := dial(t, url, protocol.JSON)
	if code := waitClosed(t, c); code != protocol.CloseHeartbeat {
		t.Fatalf("closed with %d", code)
	}
}

func TestNoLicenseFault(t *testing.T) {
	e := newEnv(t)
	seats := &countingSeats{max: 1}
	_, url := e.gateway(bridge.Config{}, seats)
	first := initialized(t, url, false)
	second := dial(t, url, protocol.JSON)
	if err := second.Initialize(ctxT(t), "", "", false); faultType(err) != protocol.NoLicenseFault {
		t.Fatalf("second session: %v", err)
	}
	_ = first.Close()
	waitFor(t, "the seat freed", func() bool { return seats.inUse() == 0 })
	if err := second.Initialize(ctxT(t), "", "", false); err != nil {
		t.Fatalf("after the seat freed: %v", err)
	}
}

func TestSlowClientIsClosedOthersGoOn(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{OutboundLimit: 256 << 10}, nil)
	ctx := ctxT(t)
	slow, err := client.Dial(ctx, url, client.Options{EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.Initialize(ctx, "", "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	fast := initialized(t, url, true)
	if _, err := fast.Subscribe(ctx, protocol.Request{ServiceGroupID: "globex-chat"}); err != nil {
		t.Fatal(err)
	}
	m := client.NewMirror(true)
	untilComplete(t, fast, m, "globex-chat")
	// slow reads nothing while its group gets 12 MB of sessions; fast's group
	// changes meanwhile
	ivr := []queue.IVRInfo{{Label: "Notes", Data: strings.Repeat("n", 4000)}}
	for i := range 3000 {
		e.Apply("acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("big-%d", i), Session: queue.Session{MediaType: queue.MediaEmail, IVRInformation: ivr}})
		if i%60 == 0 {
			e.enqueue("globex-chat", 1)
		}
	}
	waitFor(t, "the gateway to close the slow client", func() bool { return srv.Stats().Connections == 1 })
	if code := waitClosed(t, slow); code != protocol.CloseSlowConsumer {
		// the close frame can be lost behind unread data; the connection is gone either way
		t.Logf("slow client close code %d", code)
	}
	if err := e.Adapter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	last, _, _ := e.Adapter.Group("globex-chat")
	for m.Seq["globex-chat"] < last {
		if err := m.Apply(next(t, fast)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := callIDs(m.Groups["globex-chat"]), queueIDs(e.Queues["globex-chat"]); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatal("the fast client's queue differs from the router's")
	}
}

func TestRouterDisconnectAndReturn(t *testing.T) {
	e := newEnv(t)
	seats := &countingSeats{max: 10}
	_, url := e.gateway(bridge.Config{}, seats)
	c := initialized(t, url, false)
	ctx := ctxT(t)
	if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	untilComplete(t, c, client.NewMirror(false), "acme-sales")
	e.Adapter.LinkDown(ctx, "test cut the link")
	if ev := next(t, c); ev.Event != protocol.EventRouterDisconnected {
		t.Fatalf("got %+v", ev)
	}
	waitFor(t, "the seat freed", func() bool { return seats.inUse() == 0 })
	err := c.Initialize(ctx, "", "", false)
	if faultType(err) != protocol.RouterDisconnectedFault {
		t.Fatalf("initialize while down: %v", err)
	}
	// the fault says why and since when: a wallboard shows it where its queues were
	if msg := err.Error(); !strings.Contains(msg, "test cut the link") || !strings.Contains(msg, "(since 20") {
		t.Errorf("initialize while down says %q, want the adapter's reason and since when", msg)
	}
	if err := c.Heartbeat(ctx); faultType(err) != protocol.InvalidRequestFault {
		t.Fatalf("heartbeat without a session: %v", err)
	}
	if err := e.Adapter.LinkUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	retryInitialize(t, c)
	if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
}

func TestStatusSilenceMeansDisconnected(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{StatusTimeout: 500 * time.Millisecond}, nil)
	c := initialized(t, url, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_ = e.Adapter.Close(ctx) // a clean stop says "disconnected" at once
	if ev := next(t, c); ev.Event != protocol.EventRouterDisconnected {
		t.Fatalf("got %+v", ev)
	}
	t.Logf("RouterDisconnected %s after the adapter stopped", time.Since(start))
	if srv.RouterConnected() {
		t.Fatal("gateway still believes the router is up")
	}
}

func TestFrameTooLarge(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := dial(t, url, protocol.JSON)
	big := append([]byte(`{"op":"Heartbeat","pad":"`), bytes.Repeat([]byte("x"), 70<<10)...)
	big = append(big, `"}`...)
	if err := c.SendRaw(big); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, c); code != protocol.CloseTooLarge {
		t.Fatalf("closed with %d", code)
	}
}

func TestShutdownClosesWithGoingAway(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, c); code != protocol.CloseGoingAway {
		t.Fatalf("closed with %d", code)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), protocol.Path)
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	code, body := get("/v1/groups")
	var dir struct {
		Tenants []bridge.Tenant
	}
	if err := json.Unmarshal([]byte(body), &dir); code != 200 || err != nil || len(dir.Tenants) != 2 ||
		dir.Tenants[0].TenantID != "acme" || len(dir.Tenants[0].ServiceGroups) != 2 || dir.Tenants[0].ServiceGroups[0].ServiceGroupName != "Sales" {
		t.Fatalf("groups %d %s", code, body)
	}
	c := initialized(t, url, false)
	_, _ = c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "nope"})
	_, metrics := get("/metrics")
	for _, want := range []string{"sis_gateway_sessions 1", `sis_gateway_faults_total{type="InvalidServiceGroupFault"} 1`, "sis_gateway_router_to_client_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestIdleViewIsDropped(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{ViewIdle: 300 * time.Millisecond}, nil)
	c := initialized(t, url, false)
	ctx := ctxT(t)
	if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.Views != 1 || st.Subscriptions != 1 || st.Sessions != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := c.Unsubscribe(ctx, "acme-sales"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle view to go", func() bool { return srv.Stats().Views == 0 })
	// subscribing again builds it anew
	if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	untilComplete(t, c, client.NewMirror(false), "acme-sales")
}

// TestStalledStatusWatchIsReplaced: a router status watch whose consumer
// vanished (as when its NATS node goes away) stands still without an
// error. The gateway notices the silence, reads the status itself and
// replaces the watch, so a live adapter is never taken for a lost one:
// the router stays connected throughout and a subscribed client gets no
// RouterDisconnected.
func TestStalledStatusWatchIsReplaced(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{StatusTimeout: time.Second}, nil)
	waitFor(t, "router connected", srv.RouterConnected)
	c := initialized(t, url, false)
	gone := deleteConsumers(t, e, "KV_"+subjects.BucketRouter)
	if gone == 0 {
		t.Fatal("no consumer of the router status to remove")
	}
	// The adapter writes the status every second: three status timeouts
	// of a watch that delivers nothing would end every session.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if !srv.RouterConnected() {
			t.Fatal("the gateway took the live adapter for lost: its stalled status watch was not replaced")
		}
	}
	waitFor(t, "a new watch of the router status", func() bool { return countConsumers(t, e, "KV_"+subjects.BucketRouter) > 0 })
	if err := c.Heartbeat(ctxT(t)); err != nil {
		t.Fatalf("the session did not live on: %v", err)
	}
	for {
		select {
		case ev := <-c.Events():
			if ev.Event == protocol.EventRouterDisconnected {
				t.Fatalf("the client was told the router was lost: %+v", ev)
			}
		default:
			return
		}
	}
}

// deleteConsumers removes every consumer of a stream; it returns how many.
func deleteConsumers(t *testing.T, e *env, stream string) int {
	t.Helper()
	s, err := e.JS.Stream(e.Ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name := range s.ConsumerNames(e.Ctx).Name() {
		if err := s.DeleteConsumer(e.Ctx, name); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// countConsumers says how many consumers a stream has.
func countConsumers(t *testing.T, e *env, stream string) int {
	t.Helper()
	s, err := e.JS.Stream(e.Ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}
