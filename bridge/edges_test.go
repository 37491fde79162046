package bridge_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// deepEnv is the test stack with depth sessions queued in group before the
// adapter starts (they reach the bus as the adapter's first sync).
func deepEnv(t *testing.T, group string, depth int) *env {
	t.Helper()
	e := bareEnv(t)
	for _, g := range stacktest.Directory.Groups {
		e.Queues[g.ServiceGroupID] = queue.New(g.ServiceGroupID)
	}
	for i := range depth {
		e.n++
		c := queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("deep-%d", i), Session: queue.Session{MediaType: queue.MediaVoice,
			TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), CustomerInformation: "+442079460123"}}
		if _, err := e.Queues[group].Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	e.StartAdapter()
	if err := e.Adapter.Flush(e.Ctx); err != nil { // the whole queue is on the bus before any gateway looks
		t.Fatal(err)
	}
	return e
}

// TestNothingOfASessionAfterRouterDisconnected drops the router link while
// a Subscribe to a deep group is being answered: whatever the timing, the
// session's reply, initial data and InitialDataComplete either come before
// RouterDisconnected or not at all (a fault answers the request instead).
func TestNothingOfASessionAfterRouterDisconnected(t *testing.T) {
	e := deepEnv(t, "acme-sales", 30000)
	srv, url := e.gateway(bridge.Config{}, nil)
	c := dialRaw(t, url)
	c.initialize(false)
	subID := c.send(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "acme-sales"})
	waitFor(t, "the subscription", func() bool { return srv.Stats().Subscriptions == 1 })
	e.Adapter.LinkDown(e.Ctx, "test")
	disconnected, answered := false, false
	for !disconnected || !answered {
		m := c.must()
		switch {
		case m.Event == protocol.EventRouterDisconnected:
			disconnected = true
		case m.ID != nil && *m.ID == subID:
			answered = true
			if disconnected && m.Fault == nil {
				t.Fatalf("the Subscribe was answered %+v after RouterDisconnected", m.Result)
			}
		case disconnected && m.Event != "":
			t.Fatalf("%s (Seq %d) after RouterDisconnected", m.Event, m.Seq)
		}
	}
	// A request after the disconnect is answered after everything before it.
	hb := c.send(protocol.Request{Op: protocol.OpHeartbeat})
	for {
		m := c.must()
		if m.Event != "" {
			t.Fatalf("%s (Seq %d) after RouterDisconnected", m.Event, m.Seq)
		}
		if m.ID != nil && *m.ID == hb {
			return
		}
	}
}

// TestResumeCutsOnlyBetweenChanges resumes a position client across a
// head removal from a deep queue (one change, thousands of updates): after
// every event its positions run 1..n.
func TestResumeCutsOnlyBetweenChanges(t *testing.T) {
	e := deepEnv(t, "acme-sales", 3000)
	_, url := e.gateway(bridge.Config{}, nil)
	c, m := subscribedTo(t, url, "acme-sales", true)
	if err := c.Unsubscribe(ctxT(t), "acme-sales"); err != nil {
		t.Fatal(err)
	}
	for range len(c.Events()) { // what came before the reply still counts
		if err := m.Apply(<-c.Events()); err != nil {
			t.Fatal(err)
		}
	}
	from := m.Seq["acme-sales"]
	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "deep-0", Cause: queue.CauseSessionAllocatedToAgent})
	e.enqueue("acme-sales", 2)
	e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: "deep-2999", Position: 1})
	seq, sessions, _ := e.Adapter.Group("acme-sales")
	// The gateway's view has every change once a watcher sees the last; it
	// takes position updates, or a last change that only moves a session
	// would never reach it.
	watcher := initialized(t, url, true)
	if _, err := watcher.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	for wm := client.NewMirror(true); wm.Seq["acme-sales"] != seq; {
		if err := wm.Apply(next(t, watcher)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales", ResumeFromSeq: &from})
	if err != nil || res.Resumed == nil || !*res.Resumed {
		t.Fatalf("resume: %+v %v", res, err)
	}
	done := untilComplete(t, c, m, "acme-sales") // the mirror checks 1..n after every event
	if done.Seq != seq || len(m.Groups["acme-sales"]) != len(sessions) {
		t.Fatalf("resumed to seq %d with %d sessions, router at %d with %d", done.Seq, len(m.Groups["acme-sales"]), seq, len(sessions))
	}
}

// TestInitialDataIsBoundedForAClientThatNeverReads subscribes to and
// unsubscribes from a deep group 40 times without reading: the gateway
// holds no more than a bounded part of the initial data for it. When
// live changes then pile up for the client, it is closed.
func TestInitialDataIsBoundedForAClientThatNeverReads(t *testing.T) {
	e := deepEnv(t, "acme-sales", 20000)
	srv, url := e.gateway(bridge.Config{OutboundLimit: 256 << 10}, nil)
	warm := initialized(t, url, false) // loads the view before the baseline
	if _, err := warm.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	untilComplete(t, warm, client.NewMirror(false), "acme-sales")
	_ = warm.Close()
	base := heapInUse()
	c := dialRaw(t, url)
	c.initialize(false)
	for range 40 {
		c.send(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "acme-sales"})
		c.send(protocol.Request{Op: protocol.OpUnsubscribe, ServiceGroupID: "acme-sales"})
	}
	// Two more subscriptions: both held means every request was handled.
	c.send(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "acme-support"})
	c.send(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "globex-chat"})
	waitFor(t, "every request handled", func() bool { return srv.Stats().Subscriptions == 2 })
	grown := heapInUse() - base
	t.Logf("heap grew %d MiB", grown>>20)
	if grown > 40<<20 {
		t.Fatalf("the gateway holds %d MiB more for a client that does not read", grown>>20)
	}
	c.send(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "acme-sales"})
	waitFor(t, "the subscription", func() bool { return srv.Stats().Subscriptions == 3 })
	for range 20 {
		e.enqueue("acme-sales", 100)
		if srv.Stats().Connections == 0 {
			break
		}
	}
	waitFor(t, "the client closed as too slow", func() bool { return srv.Stats().Connections == 0 })
}

// heapInUse returns the heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// TestHerdIsServedUnderTheBudget has 30 clients subscribe to a deep group
// at once with room for 4 of them at a time: every one gets the whole
// queue, and the initial data made and not yet written never passes the
// budget by more than a frame per connection served.
func TestHerdIsServedUnderTheBudget(t *testing.T) {
	e := deepEnv(t, "acme-sales", 3000)
	srv, url := e.gateway(bridge.Config{InitialBudget: 1 << 20, InitialConcurrency: 4}, nil)
	clients := make([]*client.Client, 30)
	for i := range clients {
		clients[i] = initialized(t, url, i%2 == 0)
	}
	errs := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			_, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"})
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		m := client.NewMirror(i%2 == 0)
		untilComplete(t, c, m, "acme-sales")
		if n := len(m.Groups["acme-sales"]); n != 3000 {
			t.Fatalf("client %d got %d sessions", i, n)
		}
	}
	st := srv.Stats()
	if st.InitialBufferedPeak > 1<<20+4*256<<10 || st.InitialBufferedPeak == 0 {
		t.Fatalf("initial data buffered at most %d bytes, budget 1 MiB", st.InitialBufferedPeak)
	}
	t.Logf("initial data buffered at most %d KiB", st.InitialBufferedPeak>>10)
	waitFor(t, "the budget emptied", func() bool { return srv.Stats().InitialBuffered == 0 })
}

// TestClientThatStopsReadingIsClosedAsTooSlow: a client that stops reading
// while its outbound queue stays under the limit is closed once a write
// makes no progress for WriteTimeout, and that close counts as too slow
// (4009), as one past the limit does.
func TestClientThatStopsReadingIsClosedAsTooSlow(t *testing.T) {
	e := deepEnv(t, "acme-sales", 20000)
	srv, url := e.gateway(bridge.Config{OutboundLimit: 1 << 30, WriteTimeout: 300 * time.Millisecond, SendBuffer: 4096}, nil)
	c := dialRaw(t, url)
	c.initialize(false)
	c.send(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "acme-sales"})
	waitFor(t, "the client closed", func() bool { return srv.Stats().Connections == 0 })
	if n := gatewayMetrics(t, url)["sis_gateway_slow_client_closes_total"]; n != 1 {
		t.Fatalf("slow client closes %v, want 1", n)
	}
}
