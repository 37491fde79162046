package queue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// naive is the obviously correct model the queue is checked against.
type naive []string

func (n naive) pos(id string) int { return slices.Index(n, id) + 1 }

func (n naive) apply(c Change) (naive, Effect, error) {
	p := n.pos(c.CallID)
	switch c.Op {
	case OpEnqueue:
		if p != 0 {
			return n, Effect{}, ErrDuplicateCall
		}
		to := c.Position
		if to == 0 {
			to = len(n) + 1
		}
		if to > len(n)+1 {
			return n, Effect{}, ErrPosition
		}
		return slices.Insert(slices.Clone(n), to-1, c.CallID), Effect{To: to}, nil
	case OpMove:
		if p == 0 {
			return n, Effect{}, ErrUnknownCall
		}
		to := c.Position
		if to == 0 {
			to = len(n)
		}
		if to > len(n) {
			return n, Effect{}, ErrPosition
		}
		m := slices.Delete(slices.Clone(n), p-1, p)
		return slices.Insert(m, to-1, c.CallID), Effect{From: p, To: to}, nil
	default:
		if p == 0 {
			return n, Effect{}, ErrUnknownCall
		}
		return slices.Delete(slices.Clone(n), p-1, p), Effect{From: p}, nil
	}
}

// shifted lists the other calls whose position differs between before and after.
func shifted(before, after naive, self string) map[string]int {
	out := map[string]int{}
	for i, id := range after {
		if p := before.pos(id); id != self && p != 0 && p != i+1 {
			out[id] = i + 1 - p
		}
	}
	return out
}

func randomChange(r *rand.Rand, n naive, next *int) Change {
	id := func() string {
		if len(n) > 0 && r.IntN(10) < 8 {
			return n[r.IntN(len(n))]
		}
		*next++
		return fmt.Sprintf("c%d", *next)
	}
	c := Change{Op: Op(r.IntN(3) + 1), CallID: id(), Position: r.IntN(len(n) + 3)}
	if r.IntN(4) == 0 {
		c.Position = 0
	}
	c.Cause = RemoveCause(r.IntN(len(causeNames)))
	c.Session.MediaType = MediaType(r.IntN(len(mediaNames)))
	return c
}

func checkEffect(t *testing.T, q *Queue, before, after naive, c Change, e Effect) {
	t.Helper()
	want := shifted(before, after, c.CallID)
	if e.Shifted() != len(want) {
		t.Fatalf("%+v: effect %+v shifts %d, model shifts %d", c, e, e.Shifted(), len(want))
	}
	q.Range(e.ShiftFrom, e.ShiftTo, func(s Session) bool {
		if want[s.CallID] != e.ShiftBy {
			t.Fatalf("%+v: %s at %d reported shifted by %d, model says %d", c, s.CallID, s.QueuePosition, e.ShiftBy, want[s.CallID])
		}
		return true
	})
}

func checkSame(t *testing.T, q *Queue, n naive) {
	t.Helper()
	got := q.Sessions()
	if len(got) != len(n) || q.Len() != len(n) {
		t.Fatalf("len %d/%d, model %d", len(got), q.Len(), len(n))
	}
	for i, s := range got {
		if s.CallID != n[i] || s.QueuePosition != i+1 || q.Position(s.CallID) != i+1 {
			t.Fatalf("position %d: got %s (pos %d), model %s", i+1, s.CallID, s.QueuePosition, n[i])
		}
	}
}

// TestQueueMatchesNaiveModel is a randomized property test: every change is
// accepted or rejected exactly as the slice model does, the order stays the
// same, and Effect names exactly the sessions whose position moved.
func TestQueueMatchesNaiveModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		q, n, next := New("g"), naive{}, 0
		for step := 0; step < 2000; step++ {
			c := randomChange(r, n, &next)
			after, me, merr := n.apply(c)
			e, err := q.Apply(c)
			if (err == nil) != (merr == nil) || (err != nil && !errors.Is(err, merr)) {
				t.Fatalf("seed %d step %d %+v: err %v, model %v", seed, step, c, err, merr)
			}
			if err != nil {
				checkSame(t, q, n)
				continue
			}
			if e.From != me.From || e.To != me.To {
				t.Fatalf("seed %d step %d %+v: from/to %d/%d, model %d/%d", seed, step, c, e.From, e.To, me.From, me.To)
			}
			checkEffect(t, q, n, after, c, e)
			n = after
			checkSame(t, q, n)
		}
	}
}

func TestApplyRejects(t *testing.T) {
	q := New("g")
	mustApply(t, q, Change{Op: OpEnqueue, CallID: "a"})
	tests := []struct {
		name string
		c    Change
		want error
	}{
		{"duplicate enqueue", Change{Op: OpEnqueue, CallID: "a"}, ErrDuplicateCall},
		{"move unknown", Change{Op: OpMove, CallID: "b", Position: 1}, ErrUnknownCall},
		{"remove unknown", Change{Op: OpRemove, CallID: "b"}, ErrUnknownCall},
		{"enqueue past tail", Change{Op: OpEnqueue, CallID: "b", Position: 3}, ErrPosition},
		{"move past tail", Change{Op: OpMove, CallID: "a", Position: 2}, ErrPosition},
		{"negative position", Change{Op: OpEnqueue, CallID: "b", Position: -1}, ErrPosition},
		{"empty call", Change{Op: OpEnqueue}, ErrInvalid},
		{"unknown op", Change{Op: 9, CallID: "b"}, ErrInvalid},
		{"unknown cause", Change{Op: OpRemove, CallID: "a", Cause: 99}, ErrInvalid},
		{"unknown media", Change{Op: OpEnqueue, CallID: "b", Session: Session{MediaType: 42}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := q.Apply(tt.c); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got := q.Sessions(); len(got) != 1 || got[0].CallID != "a" {
				t.Fatalf("queue changed: %+v", got)
			}
		})
	}
}

func TestEnqueueSetsIdentity(t *testing.T) {
	q := New("sales")
	mustApply(t, q, Change{Op: OpEnqueue, CallID: "c1", Session: Session{CallID: "other", ServiceGroupID: "x", QueuePosition: 9, MediaType: MediaVoice}})
	s, ok := q.Get("c1")
	if !ok || s.CallID != "c1" || s.ServiceGroupID != "sales" || s.QueuePosition != 1 || s.MediaType != MediaVoice {
		t.Fatalf("got %+v", s)
	}
	if _, ok := q.At(2); ok {
		t.Fatal("At past the tail found a session")
	}
}

func TestReconcile(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for round := 0; round < 200; round++ {
		q, n, next := New("g"), naive{}, 0
		for i := 0; i < r.IntN(40); i++ {
			if after, _, err := n.apply(randomChange(r, n, &next)); err == nil {
				n = after
			}
		}
		for _, id := range n {
			mustApply(t, q, Change{Op: OpEnqueue, CallID: id})
		}
		target := targetFrom(r, n, &next)
		changes, _, err := q.Reconcile(target)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, q, idsOf(target))
		replay := New("g")
		for _, id := range n {
			mustApply(t, replay, Change{Op: OpEnqueue, CallID: id})
		}
		for _, c := range changes {
			mustApply(t, replay, c)
		}
		checkSame(t, replay, idsOf(target))
	}
}

func TestReconcileRejectsRepeatedCall(t *testing.T) {
	q := New("g")
	mustApply(t, q, Change{Op: OpEnqueue, CallID: "a"})
	if _, _, err := q.Reconcile([]Session{{CallID: "b"}, {CallID: "b"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
	checkSame(t, q, naive{"a"})
}

func targetFrom(r *rand.Rand, n naive, next *int) []Session {
	var out []Session
	for _, id := range n {
		if r.IntN(3) > 0 {
			out = append(out, Session{CallID: id})
		}
	}
	for i := r.IntN(5); i > 0; i-- {
		*next++
		out = append(out, Session{CallID: fmt.Sprintf("c%d", *next)})
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func idsOf(ss []Session) naive {
	out := naive{}
	for _, s := range ss {
		out = append(out, s.CallID)
	}
	return out
}

func mustApply(t *testing.T, q *Queue, c Change) Effect {
	t.Helper()
	e, err := q.Apply(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnumText(t *testing.T) {
	for _, m := range MediaTypes {
		b, _ := m.MarshalText()
		var back MediaType
		if err := back.UnmarshalText(b); err != nil || back != m {
			t.Fatalf("%s: %v %v", b, back, err)
		}
	}
	for _, c := range RemoveCauses {
		b, _ := c.MarshalText()
		var back RemoveCause
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Fatalf("%s: %v %v", b, back, err)
		}
	}
	var m MediaType
	if err := m.UnmarshalText([]byte("voice")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("lower-case name accepted: %v", err)
	}
	if _, err := MediaType(77).MarshalText(); err == nil {
		t.Fatal("unknown media type marshalled")
	}
	if UpdateModify.String() != "Modify" || CauseCampaignNotRunning.String() != "CampaignNotRunning" {
		t.Fatal("names differ from the protocol")
	}
}

// FuzzQueue drives the queue with arbitrary change sequences and checks it
// against the naive model.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{1, 0, 0, 1, 1, 1, 2, 0, 1, 3, 1, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		q, n := New("g"), naive{}
		for i := 0; i+2 < len(prog) && i < 600; i += 3 {
			c := Change{Op: Op(prog[i]%4 + 0), CallID: fmt.Sprintf("c%d", prog[i+1]%16), Position: int(prog[i+2] % 20)}
			if c.Op == 0 {
				c.Op = OpRemove
			}
			after, _, merr := n.apply(c)
			_, err := q.Apply(c)
			if (err == nil) != (merr == nil) {
				t.Fatalf("%+v: err %v, model %v", c, err, merr)
			}
			if err == nil {
				n = after
			}
			checkSame(t, q, n)
		}
	})
}
