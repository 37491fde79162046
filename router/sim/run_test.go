package sim_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/sim"
)

func applies(calls []record) []record {
	var out []record
	for _, c := range calls {
		if c.Kind == "apply" {
			out = append(out, c)
		}
	}
	return out
}

func TestLinkDropsReconcile(t *testing.T) {
	s := newSim(t, sim.Config{Seed: 11, LinkDrops: true, MaxChanges: 40000})
	r := newRecorder()
	run(t, s, r)
	calls, _ := r.snapshot()
	downs, ups := 0, 0
	for i, c := range calls {
		switch c.Kind {
		case "down":
			downs++
			if c.Reason == "" {
				t.Error("LinkDown without a reason")
			}
			if i+1 < len(calls) && calls[i+1].Kind != "up" {
				t.Fatalf("call %d after LinkDown is %s, want LinkUp", i+1, calls[i+1].Kind)
			}
		case "up":
			ups++
		}
	}
	if downs < 3 || ups != downs+1 {
		t.Fatalf("%d LinkDowns, %d LinkUps: want at least 3, each followed by a LinkUp", downs, ups)
	}
	if r.relinks == 0 {
		t.Fatal("no LinkUp state differed from what the handler held: drops hide nothing")
	}
	r.checkMatches(t, s.State())
}

func TestNoLinkDropsByDefault(t *testing.T) {
	r := newRecorder()
	run(t, newSim(t, sim.Config{Seed: 11, MaxChanges: 20000}), r)
	calls, _ := r.snapshot()
	for _, c := range calls[1:] {
		if c.Kind != "apply" {
			t.Fatalf("unexpected %s call", c.Kind)
		}
	}
}

// TestRunAgainContinues: a Run after a Run continues the same simulation:
// its LinkUp holds what the handler already has, and the changes are those
// of one long Run.
func TestRunAgainContinues(t *testing.T) {
	split, r := newSim(t, sim.Config{Seed: 8, MaxChanges: 500}), newRecorder()
	run(t, split, r)
	before, at := split.State(), split.Now()
	first, _ := r.snapshot()
	run(t, split, r)
	calls, _ := r.snapshot()
	if next := calls[len(first)]; next.Kind != "up" || !reflect.DeepEqual(next.State, before) {
		t.Fatal("the second Run does not start with LinkUp of the state the first left")
	}
	if r.relinks != 0 {
		t.Fatalf("the second LinkUp needed %d changes to reconcile, want 0", r.relinks)
	}
	if !split.Now().After(at) {
		t.Fatal("simulated time did not go on")
	}
	whole := newRecorder()
	run(t, newSim(t, sim.Config{Seed: 8, MaxChanges: 3000}), whole)
	got, wholeCalls := applies(calls), func() []record { c, _ := whole.snapshot(); return applies(c) }()
	if len(got) < 1000 || !reflect.DeepEqual(got, wholeCalls[:len(got)]) {
		t.Fatal("two Runs report other changes than one")
	}
}

func TestCancelAtMaxSpeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	n := 0
	r.onApply = func(*recorder, string, queue.Change) {
		if n++; n == 1000 {
			cancel()
		}
	}
	s := newSim(t, sim.Config{Seed: 4})
	if err := s.Run(ctx, r); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if n != 1000 {
		t.Fatalf("%d changes reported, want Run to stop at the 1000th", n)
	}
}

// signalling is a recorder that says when the link came up.
type signalling struct {
	*recorder
	up chan struct{}
}

func (s signalling) LinkUp(ctx context.Context, st *router.State) error {
	err := s.recorder.LinkUp(ctx, st)
	s.up <- struct{}{}
	return err
}

// TestCancelWhilePacing cancels a Run waiting for the wall clock; meanwhile
// State, Now and a second Run are safe to call.
func TestCancelWhilePacing(t *testing.T) {
	s, err := sim.New(sim.Config{Seed: 4, Start: start, Speed: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := signalling{newRecorder(), make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, h) }()
	<-h.up
	if len(s.State().Groups) != 9 || s.Now().IsZero() {
		t.Fatal("State or Now unusable while running")
	}
	if err := s.Run(ctx, newRecorder()); !errors.Is(err, sim.ErrRunning) {
		t.Fatalf("second concurrent Run: %v, want ErrRunning", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if calls, _ := h.snapshot(); len(calls) != 1 {
		t.Fatalf("%d calls at a millionth of real time, want only the LinkUp", len(calls))
	}
}

func TestStateWhileRunning(t *testing.T) {
	s := newSim(t, sim.Config{Seed: 6, MaxChanges: 5000})
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), newRecorder()) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
			if st := s.State(); len(st.Queues) != 9 {
				t.Fatalf("%d queues", len(st.Queues))
			}
		}
	}
}

// rejecting is a Handler that refuses some changes, as an adapter whose
// state diverged would.
type rejecting struct {
	*recorder
	syncs int
}

func (h *rejecting) Apply(_ context.Context, group string, c queue.Change) error {
	if c.Op == queue.OpMove {
		return queue.ErrUnknownCall
	}
	return nil
}

func (h *rejecting) Sync(_ context.Context, group string, ss []queue.Session) error {
	h.syncs++
	return nil
}

func TestRejectedChangeSyncsGroup(t *testing.T) {
	h := &rejecting{recorder: newRecorder()}
	if err := newSim(t, sim.Config{Seed: 2, MaxChanges: 20000}).Run(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if h.syncs == 0 {
		t.Fatal("rejected moves were not answered with Sync")
	}
}

// TestRouterClockFollowsSpeed: while Run paces the simulation, the router
// clock runs on between events at Speed; unpaced it is the simulated time
// with no steady rate.
func TestRouterClockFollowsSpeed(t *testing.T) {
	s, err := sim.New(sim.Config{Seed: 4, Start: start, Speed: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	if now, rate := s.RouterClock(); rate != 0 || !now.Equal(s.Now()) {
		t.Fatalf("before Run: %s at rate %v, want the simulated time %s at rate 0", now, rate, s.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := signalling{newRecorder(), make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, h) }()
	<-h.up
	first, rate := s.RouterClock()
	if rate != 1e-3 {
		t.Fatalf("rate %v, want the Speed", rate)
	}
	wall := time.Now()
	for time.Since(wall) < 50*time.Millisecond { // the clock must move between two readings
		time.Sleep(5 * time.Millisecond)
	}
	if later, _ := s.RouterClock(); !later.After(first) {
		t.Fatalf("router clock stood still: %s then %s", first, later)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
