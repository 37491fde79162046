package router

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestKilledAdapterRestartsWithoutGapOrDuplicate kills an adapter while
// publishes are in flight (its connection dropped, no final snapshot), lets
// the router move on while nothing listens, then starts a new adapter on the
// same bus. The new one rebuilds from snapshots and events, reconciles with
// the router and goes on: every group's events stay numbered 1, 2, 3... and
// replaying them gives the router's queues.
func TestKilledAdapterRestartsWithoutGapOrDuplicate(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	d := newDriver(5)

	nc1, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js1, _ := jetstream.New(nc1)
	first, err := Open(ctx, js1, natstest.Logger(t), Config{SnapshotEvery: 50, Name: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	for range 3000 {
		g, c := d.change()
		if err := first.Apply(ctx, g, c); err != nil {
			t.Fatal(err)
		}
	}
	clients := s.NumClients()
	nc1.Close() // the kill: whatever is in flight now may or may not be stored
	waitFor(t, "the server to drop the killed adapter", func() bool { return s.NumClients() < clients })
	killCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_ = first.Close(killCtx)
	cancel()
	for range 200 {
		d.change() // the router goes on while no adapter listens
	}

	second := openAdapter(t, js, Config{SnapshotEvery: 50, Name: "second"})
	if err := second.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		g, c := d.change()
		if err := second.Apply(ctx, g, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	built := replayAll(t, streamEvents(t, js))
	for id, q := range d.queues {
		sameQueue(t, id+" (replayed)", built[id].Sessions(), q.Sessions())
		_, live, _ := second.Group(id)
		sameQueue(t, id+" (adapter)", live, q.Sessions())
	}
	if st := second.Stats(); st.Rejected != 0 {
		t.Fatalf("second adapter stats %+v", st)
	}
}

// TestGracefulRestartNeedsNoReplay closes an adapter cleanly: it stores
// everything and snapshots every group, so the next one starts from the
// snapshots alone, with the same state and sequence numbers.
func TestGracefulRestartNeedsNoReplay(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	d := newDriver(6)
	first, err := Open(ctx, js, natstest.Logger(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	_ = first.LinkUp(ctx, d.state())
	for range 500 {
		g, c := d.change()
		if err := first.Apply(ctx, g, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	hist, _ := subjects.OpenHistory(ctx, js)
	second := openAdapter(t, js, Config{})
	for id, q := range d.queues {
		seq, live, ok := second.Group(id)
		firstSeq, _, _ := first.Group(id)
		if !ok || seq != firstSeq {
			t.Fatalf("%s: restored seq %d, was %d", id, seq, firstSeq)
		}
		sameQueue(t, id, live, q.Sessions())
		info := groupInfo(id)
		snap, _, _ := hist.Snapshot(ctx, info.TenantID, id)
		if snap.Seq != seq {
			t.Fatalf("%s: last snapshot at %d, state at %d", id, snap.Seq, seq)
		}
	}
}

func groupInfo(id string) subjects.Group {
	for _, g := range directory.Groups {
		if g.ServiceGroupID == id {
			return g
		}
	}
	panic(id)
}
