package bridge_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestViewRebuildsWhenHistoryIsRenumbered: the stream loses its last events
// (as after a power failure), a new adapter restores the shorter history,
// reconciles with the router and numbers its changes again from there. The
// gateway's view sees an old sequence number, rebuilds from the bus, and its
// clients end with the router's queue.
func TestViewRebuildsWhenHistoryIsRenumbered(t *testing.T) {
	e := newEnv(t)
	ids := e.enqueue("acme-sales", 40)
	_, url := e.gateway(bridge.Config{}, nil)
	c, m := subscribedTo(t, url, "acme-sales", true)
	first := e.Adapter
	for i := range 10 { // one message each
		e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: ids[i], Cause: queue.CauseSessionAllocatedToAgent})
		if err := first.Flush(e.Ctx); err != nil {
			t.Fatal(err)
		}
	}
	catchUp(t, e, c, m, "acme-sales")
	renumberTail(t, e)
	want := queueIDs(e.Queues["acme-sales"])
	waitFor(t, "the client to hold the router's queue", func() bool {
		select {
		case ev := <-c.Events():
			if err := m.Apply(ev); err != nil {
				t.Fatal(err)
			}
		case <-time.After(50 * time.Millisecond):
		}
		return slices.Equal(callIDs(m.Groups["acme-sales"]), want)
	})
}

// TestSilentAdapterMeansRouterDisconnected: an adapter that dies without a
// word (its connection cut) stops refreshing the status; the gateway tells
// its clients RouterDisconnected within the status timeout.
func TestSilentAdapterMeansRouterDisconnected(t *testing.T) {
	e := newEnv(t)
	_ = e.Adapter.Close(e.Ctx) // the env's adapter steps aside cleanly
	nc, err := nats.Connect(e.NS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := jetstream.New(nc)
	a, err := router.Open(e.Ctx, js2, natstest.Logger(t), router.Config{StatusInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.LinkUp(e.Ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, url := e.gateway(bridge.Config{StatusTimeout: time.Second}, nil)
	c := initialized(t, url, false)
	nc.Close() // the adapter dies: no status, no goodbye
	start := time.Now()
	if ev := next(t, c); ev.Event != protocol.EventRouterDisconnected {
		t.Fatalf("got %+v", ev)
	}
	t.Logf("RouterDisconnected %s after the adapter went silent", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.Close(ctx)
}

// TestGatewayLosingNATSMeansRouterDisconnected: the NATS server goes away;
// clients connected to the gateway are told RouterDisconnected.
func TestGatewayLosingNATSMeansRouterDisconnected(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	e.NS.Shutdown()
	if ev := next(t, c); ev.Event != protocol.EventRouterDisconnected {
		t.Fatalf("got %+v", ev)
	}
	if err := c.Initialize(ctxT(t), "", "", false); faultType(err) != protocol.RouterDisconnectedFault {
		t.Fatalf("initialize without NATS: %v", err)
	}
}

// renumberTail loses the last five events of the stream (as after a power
// failure) and has a new adapter restore the shorter history, reconcile
// with the router and number its changes again from there.
func renumberTail(t *testing.T, e *env) {
	t.Helper()
	// The tail is lost: the last five events vanish from the stream.
	s, err := e.JS.Stream(e.Ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(e.Ctx)
	for seq := info.State.LastSeq - 4; seq <= info.State.LastSeq; seq++ {
		if err := s.DeleteMsg(e.Ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	// A new adapter on its own connection, with no snapshot newer than the loss.
	nc, err := nats.Connect(e.NS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js2, _ := jetstream.New(nc)
	snaps, _ := e.JS.ObjectStore(e.Ctx, subjects.BucketSnapshots)
	_ = snaps.Delete(e.Ctx, subjects.SnapshotName("acme", "acme-sales"))
	// The first adapter is left running: its router status keeps the router
	// connected. TakeOver: the test plays an adapter restarted while the old
	// one still writes the status.
	second, err := router.Open(e.Ctx, js2, natstest.Logger(t), router.Config{Name: "second", TakeOver: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = second.Close(ctx)
	})
	if seq, _, _ := second.Group("acme-sales"); seq != 45 {
		t.Fatalf("restored at %d, want 45", seq)
	}
	if err := second.Sync(e.Ctx, "acme-sales", e.Queues["acme-sales"].Sessions()); err != nil {
		t.Fatal(err)
	}
	if err := second.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
}
