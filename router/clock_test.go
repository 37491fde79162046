package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestFutureTimeEnteredQueueIsRefused: a session that entered the queue
// further ahead of the router's clock than ClockSkew is refused, by Apply
// and by a sync; within the skew it is taken.
func TestFutureTimeEnteredQueueIsRefused(t *testing.T) {
	a, _, _ := linkedAdapter(t, Config{ClockSkew: time.Minute}, 11)
	ctx := testCtx(t)
	enqueue := func(id string, at time.Time) error {
		return a.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: id, Session: queue.Session{MediaType: queue.MediaVoice, TimeEnteredQueue: at}})
	}
	if err := enqueue("future", time.Now().Add(time.Hour)); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("an hour ahead: %v", err)
	}
	if err := enqueue("skewed", time.Now().Add(30*time.Second)); err != nil {
		t.Fatalf("30 s ahead (within the skew): %v", err)
	}
	err := a.Sync(ctx, "acme-support", []queue.Session{{CallID: "later", MediaType: queue.MediaChat, TimeEnteredQueue: time.Now().Add(time.Hour)}})
	if !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("sync an hour ahead: %v", err)
	}
	if got := a.Stats().RejectedBy["invalid"]; got != 1 {
		t.Fatalf("rejected as invalid: %d, want 1", got)
	}
}

// clockSource is a Source with a clock of its own, two days ahead of the
// wall clock and running 60 times as fast.
type clockSource struct {
	start time.Time
	wall  time.Time
	run   func(ctx context.Context, h Handler) error
}

func (c *clockSource) RouterClock() (time.Time, float64) {
	return c.start.Add(60 * time.Since(c.wall)), 60
}

func (c *clockSource) Run(ctx context.Context, h Handler) error { return c.run(ctx, h) }

// TestSourceClockIsPublishedAndTrusted: a source's clock goes into the
// router status, and times are checked against it, not the wall clock.
func TestSourceClockIsPublishedAndTrusted(t *testing.T) {
	a, js, _ := linkedAdapter(t, Config{StatusInterval: 50 * time.Millisecond}, 12)
	ctx := testCtx(t)
	src := &clockSource{start: time.Now().Add(48 * time.Hour), wall: time.Now()}
	applied := make(chan error, 1)
	src.run = func(ctx context.Context, h Handler) error {
		now, _ := src.RouterClock()
		applied <- h.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "sim", Session: queue.Session{MediaType: queue.MediaVoice, TimeEnteredQueue: now}})
		<-ctx.Done()
		return nil
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx, src) }()
	if err := <-applied; err != nil {
		t.Fatalf("a time of the source's clock: %v", err)
	}
	kv, err := js.KeyValue(ctx, subjects.BucketRouter)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the clock in the status", func() bool { return statusClock(t, kv) != nil })
	st := readStatus(t, kv)
	if st.Clock.Rate != 60 || st.RouterTime(time.Now()).Before(time.Now().Add(47*time.Hour)) {
		t.Fatalf("status clock %+v", st.Clock)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func statusClock(t *testing.T, kv jetstream.KeyValue) *subjects.RouterClock {
	t.Helper()
	return readStatus(t, kv).Clock
}

// TestEventsCarryRouterTimeAndTheRemovedSession: with a source that has a
// clock, every event carries the router's time of its change; a removal
// carries the removed session's media type and TimeEnteredQueue, so that
// its wait is known from the event alone.
func TestEventsCarryRouterTimeAndTheRemovedSession(t *testing.T) {
	a, js, _ := linkedAdapter(t, Config{}, 13)
	ctx := testCtx(t)
	src := &clockSource{start: time.Now().Add(48 * time.Hour), wall: time.Now()}
	entered, _ := src.RouterClock()
	applied := make(chan error, 1)
	src.run = func(ctx context.Context, h Handler) error {
		err := h.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "r1", Session: queue.Session{MediaType: queue.MediaEmail, TimeEnteredQueue: entered}})
		applied <- errors.Join(err, h.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpRemove, CallID: "r1", Cause: queue.CauseSessionAllocatedToAgent}))
		<-ctx.Done()
		return nil
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx, src) }()
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var removal *subjects.Event
	eachStored(t, js, func(m *jetstream.RawStreamMsg) {
		events, err := subjects.DecodeEvents(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Change.CallID != "r1" {
				continue
			}
			if e.RouterAt().Before(entered) || e.RouterAt().Sub(e.Time) < 47*time.Hour {
				t.Fatalf("event %d: router time %s, accepted %s: not the source's clock", e.Seq, e.RouterAt(), e.Time)
			}
			if e.Change.Op == queue.OpRemove {
				removal = &e
			}
		}
	})
	if removal == nil {
		t.Fatal("no removal stored")
	}
	if s := removal.Change.Session; s.MediaType != queue.MediaEmail || !s.TimeEnteredQueue.Equal(entered) {
		t.Fatalf("the removal carries %v %s, want Email %s", s.MediaType, s.TimeEnteredQueue, entered)
	}
}
