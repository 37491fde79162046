package bridge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// TestCoalesceGathersChangesAndWrites spaces delivery rounds a second
// apart (FixedRounds): changes to three groups made within one interval reach the client
// as one SessionsUpdated per group, all three in one write, while replies
// do not wait for a round.
func TestCoalesceGathersChangesAndWrites(t *testing.T) {
	e := newEnv(t)
	groups := []string{"acme-sales", "acme-support", "globex-chat"}
	_, url := e.gateway(bridge.Config{Coalesce: time.Second, FixedRounds: true}, nil)
	c := initialized(t, url, false)
	m := client.NewMirror(false)
	for _, g := range groups {
		if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: g}); err != nil {
			t.Fatal(err)
		}
		untilComplete(t, c, m, g)
	}
	// A first change opens a round; the ones after it wait for the next.
	e.enqueue("acme-sales", 1)
	if ev := next(t, c); ev.Seq != 1 || len(ev.SessionUpdates) != 1 {
		t.Fatalf("first change: seq %d, %d updates", ev.Seq, len(ev.SessionUpdates))
	}
	writes, frames := writeCounts(t, url)
	start := time.Now()
	for _, g := range groups {
		e.enqueue(g, 3)
	}
	got := map[string]protocol.Message{}
	for len(got) < len(groups) {
		ev := next(t, c)
		if _, dup := got[ev.ServiceGroupID]; dup {
			t.Fatalf("a second event for %s within one round", ev.ServiceGroupID)
		}
		got[ev.ServiceGroupID] = ev
	}
	if since := time.Since(start); since > 5*time.Second {
		t.Fatalf("the round came after %s", since)
	}
	for _, g := range groups {
		want := uint64(3)
		if g == "acme-sales" {
			want = 4
		}
		if ev := got[g]; ev.Seq != want || len(ev.SessionUpdates) != 3 {
			t.Errorf("%s: seq %d with %d updates, want seq %d with 3", g, ev.Seq, len(ev.SessionUpdates), want)
		}
	}
	w, f := writeCounts(t, url)
	if w-writes != 1 || f-frames != 3 {
		t.Errorf("the round took %d writes for %d messages, want 1 for 3", w-writes, f-frames)
	}
	// A reply is written at once, not at the next round.
	e.enqueue("acme-sales", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := c.Heartbeat(ctx); err != nil {
		t.Fatalf("a Heartbeat reply waited for the round: %v", err)
	}
}

// TestRoundsFollowTheLoad: with rounds spaced by the load (the default),
// a lightly loaded gateway writes each change at once, even with an hour
// of Coalesce: the short round before it holds the next back for
// microseconds, not the interval.
func TestRoundsFollowTheLoad(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{Coalesce: time.Hour}, nil)
	c := initialized(t, url, false)
	m := client.NewMirror(false)
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	untilComplete(t, c, m, "acme-sales")
	for seq := uint64(1); seq <= 5; seq++ {
		e.enqueue("acme-sales", 1)
		if ev := next(t, c); ev.Seq != seq {
			t.Fatalf("change %d: got Seq %d", seq, ev.Seq)
		}
	}
}

// writeCounts reads the gateway's write and frame counters.
func writeCounts(t *testing.T, wsURL string) (writes, frames int) {
	t.Helper()
	m := gatewayMetrics(t, wsURL)
	return int(m["sis_gateway_writes_total"]), int(m["sis_gateway_frames_out_total"])
}

// gatewayMetrics reads a gateway's /metrics: every sample without labels.
func gatewayMetrics(t *testing.T, wsURL string) map[string]float64 {
	t.Helper()
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws"), protocol.Path)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseFloat(value, 64)
		if ok && err == nil {
			out[name] = n
		}
	}
	return out
}

// TestTLS serves the gateway over TLS, where writes go through a goroutine
// of the connection's own instead of the flusher's non-blocking writes.
func TestTLS(t *testing.T) {
	e := newEnv(t)
	srv := e.Gateway(bridge.Config{}, &countingSeats{max: 10}, nil)
	hs := serveWith(t, srv, httptest.NewTLSServer)
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	url := "wss" + strings.TrimPrefix(hs.URL, "https") + protocol.Path
	c, err := client.Dial(ctxT(t), url, client.Options{Format: protocol.Msgpack, TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Initialize(ctxT(t), "", "", true); err != nil {
		t.Fatal(err)
	}
	ids := e.enqueue("acme-sales", 700)
	m := client.NewMirror(true)
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	untilComplete(t, c, m, "acme-sales")
	for i := range 20 {
		e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: ids[i], Cause: queue.CauseSessionAllocatedToAgent})
	}
	// Initial data may hold only part of the 700 (the rest follow live),
	// so the length alone can reach 680 before the removals have come.
	for g := m.Groups["acme-sales"]; len(g) != 680 || g[0].CallID != ids[20]; g = m.Groups["acme-sales"] {
		if err := m.Apply(next(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range m.Groups["acme-sales"] {
		if s.CallID != ids[i+20] || s.QueuePosition != i+1 {
			t.Fatalf("position %d holds %s at %d", i+1, s.CallID, s.QueuePosition)
		}
	}
}

// TestLiveEventsOutlastWriteTimeout: a writer goroutine's deadline (set
// for a reply or initial data) must not fail the flusher's later writes.
func TestLiveEventsOutlastWriteTimeout(t *testing.T) {
	e := newEnv(t)
	const timeout = 200 * time.Millisecond
	_, url := e.gateway(bridge.Config{WriteTimeout: timeout}, nil)
	c := initialized(t, url, false)
	m := client.NewMirror(false)
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	untilComplete(t, c, m, "acme-sales")
	<-time.After(2 * timeout) // the writer's deadline has passed
	e.enqueue("acme-sales", 1)
	if ev := next(t, c); ev.Event != protocol.EventSessionsUpdated || ev.Seq != 1 {
		t.Fatalf("got %s seq %d, want the live change", ev.Event, ev.Seq)
	}
}
