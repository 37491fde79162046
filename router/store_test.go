package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
)

// fullStore starts a server whose JetStream file store is small, and an
// adapter linked to a router; the returned function fills the store with a
// ballast stream (as another tenant of the server would), the other frees
// it again.
func fullStore(t *testing.T, cfg Config) (a *Adapter, js jetstream.JetStream, d *driver, fill, free func()) {
	t.Helper()
	s := natstest.ServerWith(t, embednats.Config{MaxStore: 24 << 20})
	_, js = natstest.Connect(t, s)
	a = openAdapter(t, js, cfg)
	d = newDriver(5)
	ctx := testCtx(t)
	if err := a.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	fill = func() {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BALLAST", Subjects: []string{"ballast"}}); err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 512<<10)
		for i := 0; ; i++ {
			if _, err := js.Publish(ctx, "ballast", chunk); err != nil {
				t.Logf("store full after %d MiB of ballast: %v", i/2, err)
				return
			}
			if i > 200 {
				t.Fatal("the store never filled")
			}
		}
	}
	free = func() {
		if err := js.DeleteStream(ctx, "BALLAST"); err != nil {
			t.Fatal(err)
		}
	}
	return a, js, d, fill, free
}

// applyAsync applies n of the driver's changes on a goroutine of its own;
// the channel gets its result.
func applyAsync(a *Adapter, d *driver, n int) <-chan error {
	done := make(chan error, 1)
	changes := make([]func() error, n)
	for i := range changes {
		g, c := d.change()
		changes[i] = func() error { return a.Apply(context.Background(), g, c) }
	}
	go func() {
		for _, apply := range changes {
			if err := apply(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// TestStoreThatRefusesWritesIsReportedAndRecovered: when JetStream refuses
// the adapter's writes (its store is full), the adapter says so (Health,
// the router status gateways read), keeps every accepted change, and once
// the store takes writes again stores them all in order, by itself.
func TestStoreThatRefusesWritesIsReportedAndRecovered(t *testing.T) {
	a, js, d, fill, free := fullStore(t, Config{StatusInterval: 50 * time.Millisecond, AckTimeout: 300 * time.Millisecond, Window: 8})
	ctx := testCtx(t)
	kv, err := js.KeyValue(ctx, subjects.BucketRouter)
	if err != nil {
		t.Fatal(err)
	}
	fill()
	applied := applyAsync(a, d, 200)
	waitFor(t, "the store fault reported", func() bool { return a.Health().StoreFault != "" })
	h := a.Health()
	t.Logf("health: %+v", h)
	if !strings.Contains(h.StoreFault, "insufficient") {
		t.Errorf("store fault %q does not name the cause", h.StoreFault)
	}
	if err := a.Ready(); err == nil || !strings.Contains(err.Error(), "event store refuses writes") {
		t.Errorf("Ready: %v", err)
	}
	waitFor(t, "the router status saying so", func() bool {
		st := readStatus(t, kv)
		return !st.Connected && strings.Contains(st.Reason, "event store refuses writes")
	})
	free()
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fault cleared", func() bool { return a.Health().StoreFault == "" && a.Ready() == nil })
	waitFor(t, "the router status connected again", func() bool { return readStatus(t, kv).Connected })
	queues := replayAll(t, streamEvents(t, js))
	for id, q := range d.queues {
		sameQueue(t, id, queues[id].Sessions(), q.Sessions())
	}
	if st := a.Stats(); st.Lost != 0 {
		t.Fatalf("stats %+v: changes lost", st)
	}
}

// TestCloseIsBoundedWhileStoreRefuses: with the store refusing writes and
// a change waiting for room in the publish window, Close returns once its
// context ends, counting what it abandons, and the waiting Apply returns.
func TestCloseIsBoundedWhileStoreRefuses(t *testing.T) {
	a, _, d, fill, _ := fullStore(t, Config{AckTimeout: 300 * time.Millisecond, Window: 4})
	fill()
	applied := applyAsync(a, d, 100)
	waitFor(t, "the store fault reported", func() bool { return a.Health().StoreFault != "" })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- a.Close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v, want its deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return 29 s after its deadline")
	}
	select {
	case err := <-applied:
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("Apply: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply still waits after Close")
	}
	if st := a.Stats(); st.Lost == 0 || st.Published+st.Lost > st.Accepted {
		t.Fatalf("stats %+v: what was abandoned is counted lost", st)
	}
}
