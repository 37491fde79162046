package stats_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/statscheck"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/stats"
	"github.com/sisbridge/sisbridge/subjects"
)

// record is one change as the test makes it.
type record struct {
	at      time.Time
	op      queue.Op
	session queue.Session
	cause   queue.RemoveCause
}

// recount counts the figures from the whole history (statscheck).
func recount(cfg stats.Config, history []record) stats.Figures {
	events := make([]subjects.Event, len(history))
	for i, r := range history {
		events[i] = subjects.Event{Seq: uint64(i + 1), Time: r.at, Change: queue.Change{Op: r.op, CallID: r.session.CallID, Session: r.session, Cause: r.cause}}
	}
	return statscheck.Count(cfg, events)
}

// TestFiguresMatchAnIndependentCount: after every change of long random
// histories (every media type and cause, moves, bursts at one instant,
// quiet spells longer than the window, a change stamped before the last),
// the Keeper's figures equal those counted from the whole history.
func TestFiguresMatchAnIndependentCount(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			cfg := stats.Config{Window: time.Duration(60+seed*30) * time.Second, ServiceLevelThreshold: 20 * time.Second}
			rng := rand.New(rand.NewPCG(seed, 7))
			k := stats.New(cfg)
			var history []record
			var queued []queue.Session
			now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
			for i := range 3000 {
				now = now.Add(step(rng))
				r := record{at: now}
				if rng.IntN(50) == 0 {
					r.at = now.Add(-3 * time.Second) // stamped before the last
				}
				switch op := rng.IntN(10); {
				case len(queued) == 0 || op < 4:
					s := queue.Session{CallID: fmt.Sprintf("c%d", i), MediaType: queue.MediaTypes[rng.IntN(len(queue.MediaTypes))],
						TimeEnteredQueue: now.Add(-time.Duration(rng.IntN(30)) * time.Second)}
					queued = append(queued, s)
					r.op, r.session = queue.OpEnqueue, s
					k.Enqueue(r.at, s)
				case op < 6:
					r.op = queue.OpMove
					k.Move(r.at)
				default:
					j := rng.IntN(len(queued))
					r.op, r.session, r.cause = queue.OpRemove, queued[j], queue.RemoveCause(1+rng.IntN(7))
					queued = slices.Delete(queued, j, j+1)
					k.Remove(r.at, r.session.CallID, r.cause)
				}
				history = append(history, r)
				if got, want := k.Figures(), recount(cfg, history); !reflect.DeepEqual(got, want) {
					t.Fatalf("after change %d:\n got %+v\nwant %+v", i+1, got, want)
				}
			}
		})
	}
}

// step is the router time between two changes: mostly seconds, sometimes
// none (a burst), sometimes longer than any window (a quiet spell).
func step(rng *rand.Rand) time.Duration {
	switch n := rng.IntN(100); {
	case n < 20:
		return 0
	case n < 98:
		return time.Duration(rng.IntN(4000)) * time.Millisecond
	default:
		return time.Duration(5+rng.IntN(10)) * time.Minute
	}
}

// TestFiguresAtTheEdges: the boundaries §9 draws, each with a case.
func TestFiguresAtTheEdges(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	voice := func(id string, entered int) queue.Session {
		return queue.Session{CallID: id, MediaType: queue.MediaVoice, TimeEnteredQueue: sec(entered)}
	}
	cfg := stats.Config{Window: 100 * time.Second, ServiceLevelThreshold: 20 * time.Second}
	cases := []struct {
		name  string
		feed  func(k *stats.Keeper)
		check func(f stats.Figures) bool
	}{
		{"an allocation after exactly the threshold is served in time", func(k *stats.Keeper) {
			k.Enqueue(sec(0), voice("a", 0))
			k.Remove(sec(20), "a", queue.CauseSessionAllocatedToAgent)
		}, func(f stats.Figures) bool { return f.ServiceLevelBase == 1 && f.ServiceLevel == 1 }},
		{"one a nanosecond later is not", func(k *stats.Keeper) {
			k.Enqueue(sec(0), voice("a", 0))
			k.Remove(sec(20).Add(1), "a", queue.CauseSessionAllocatedToAgent)
		}, func(f stats.Figures) bool { return f.ServiceLevelBase == 1 && f.ServiceLevel == 0 }},
		{"a Disconnect counts against the service level, an Overflow not at all", func(k *stats.Keeper) {
			k.Enqueue(sec(0), voice("a", 0))
			k.Enqueue(sec(0), voice("b", 0))
			k.Enqueue(sec(0), voice("c", 0))
			k.Remove(sec(5), "a", queue.CauseSessionAllocatedToAgent)
			k.Remove(sec(6), "b", queue.CauseDisconnect)
			k.Remove(sec(7), "c", queue.CauseOverflow)
		}, func(f stats.Figures) bool {
			return f.ServiceLevelBase == 2 && f.ServiceLevel == 0.5 && f.Allocated == 1
		}},
		{"a change exactly a window old is out of it", func(k *stats.Keeper) {
			k.Enqueue(sec(0), voice("a", 0))
			k.Move(sec(100))
		}, func(f stats.Figures) bool { return f.Entered == 0 && f.Waiting == 1 }},
		{"one a nanosecond younger is in", func(k *stats.Keeper) {
			k.Enqueue(sec(0), voice("a", 0))
			k.Move(sec(100).Add(-1))
		}, func(f stats.Figures) bool { return f.Entered == 1 }},
		{"the longest wait leaves with its allocation", func(k *stats.Keeper) {
			k.Enqueue(sec(0), voice("long", 0))
			k.Remove(sec(50), "long", queue.CauseSessionAllocatedToAgent)
			k.Enqueue(sec(60), voice("short", 60))
			k.Remove(sec(70), "short", queue.CauseSessionAllocatedToAgent)
			k.Move(sec(151))
		}, func(f stats.Figures) bool { return f.Allocated == 1 && f.LongestWaitAllocated == 10*time.Second }},
		{"the oldest is the earliest entered, not the head", func(k *stats.Keeper) {
			k.Enqueue(sec(10), voice("late", 10))
			k.Enqueue(sec(11), voice("early", 1))
			k.Remove(sec(12), "late", queue.CauseSessionAllocatedToAgent)
		}, func(f stats.Figures) bool {
			return f.OldestEnteredQueue.Equal(sec(1)) && f.WaitingByMedia[queue.MediaVoice] == 1
		}},
		{"no estimate before five allocations", func(k *stats.Keeper) {
			for i := range 4 {
				id := fmt.Sprint(i)
				k.Enqueue(sec(i), voice(id, i))
				k.Remove(sec(i+1), id, queue.CauseSessionAllocatedToAgent)
			}
		}, func(f stats.Figures) bool { return !f.EstimateKnown }},
		{"the estimate: the mean wait of those that entered with as many ahead", func(k *stats.Keeper) {
			for i := range 5 { // five allocated after 10 s, each entering an empty queue
				id := fmt.Sprint(i)
				k.Enqueue(sec(10*i), voice(id, 10*i))
				k.Remove(sec(10*i+10), id, queue.CauseSessionAllocatedToAgent)
			}
		}, func(f stats.Figures) bool { return f.EstimateKnown && f.EstimatedWait == 10*time.Second }},
		{"with too few like it, every place ahead at the mean wait per place", func(k *stats.Keeper) {
			for i := range 5 {
				id := fmt.Sprint(i)
				k.Enqueue(sec(10*i), voice(id, 10*i))
				k.Remove(sec(10*i+10), id, queue.CauseSessionAllocatedToAgent)
			}
			k.Enqueue(sec(50), voice("x", 50))
			k.Enqueue(sec(50), voice("y", 50)) // a newcomer has 2 ahead: none of the five had
		}, func(f stats.Figures) bool { return f.EstimateKnown && f.EstimatedWait == 30*time.Second }},
		{"a session that entered exactly a window ago no longer counts", func(k *stats.Keeper) {
			for i := range 5 {
				id := fmt.Sprint(i)
				k.Enqueue(sec(0), voice(id, 0))
				k.Remove(sec(10), id, queue.CauseSessionAllocatedToAgent)
			}
			k.Move(sec(100))
		}, func(f stats.Figures) bool { return f.Allocated == 5 && !f.EstimateKnown }},
		{"only sessions that entered within the window count", func(k *stats.Keeper) {
			for i := range 5 {
				id := fmt.Sprint(i)
				k.Enqueue(sec(i), voice(id, i))
				k.Remove(sec(150), id, queue.CauseSessionAllocatedToAgent) // entered more than a window before
			}
		}, func(f stats.Figures) bool { return f.Allocated == 5 && !f.EstimateKnown }},
		{"an empty queue has no oldest and no waits", func(k *stats.Keeper) { k.Move(sec(1)) }, func(f stats.Figures) bool {
			return f.Waiting == 0 && f.OldestEnteredQueue.IsZero() && f.Allocated == 0 && f.ServiceLevelBase == 0 && len(f.WaitingByMedia) == 0
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := stats.New(cfg)
			c.feed(k)
			if f := k.Figures(); !c.check(f) {
				t.Fatalf("%+v", f)
			}
		})
	}
}

// TestRebuiltKeeperAgrees: a Keeper built part-way through a history, as
// a gateway that starts mid-day builds a view (seeded with the queue at a
// snapshot, recalling the changes of a window before it from the stream,
// then applying the rest live), gives after every later change exactly
// the figures of the Keeper that saw the whole history.
func TestRebuiltKeeperAgrees(t *testing.T) {
	cfg := stats.Config{Window: 10 * time.Minute}
	rng := rand.New(rand.NewPCG(42, 42))
	type change struct {
		at time.Time
		c  queue.Change
	}
	var history []change
	var queued []queue.Session
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := range 1500 {
		now = now.Add(step(rng))
		var c queue.Change
		switch op := rng.IntN(10); {
		case len(queued) == 0 || op < 4:
			s := queue.Session{CallID: fmt.Sprintf("c%d", i), MediaType: queue.MediaTypes[rng.IntN(len(queue.MediaTypes))], TimeEnteredQueue: now.Add(-time.Second)}
			c = queue.Change{Op: queue.OpEnqueue, CallID: s.CallID, Session: s, Position: len(queued) + 1} // resolved, as the bus has it
			queued = append(queued, s)
		case op < 6:
			c = queue.Change{Op: queue.OpMove, CallID: queued[0].CallID}
		default:
			j := rng.IntN(len(queued))
			s := queued[j]
			queued = slices.Delete(queued, j, j+1)
			c = queue.Change{Op: queue.OpRemove, CallID: s.CallID, Cause: causeOf(rng),
				Session: queue.Session{MediaType: s.MediaType, TimeEnteredQueue: s.TimeEnteredQueue}} // as the bus carries it
		}
		history = append(history, change{now, c})
	}
	whole := stats.New(cfg)
	want := make([]stats.Figures, len(history))
	waiting := make([][]queue.Session, len(history)) // the queue after each change: the snapshots
	var q []queue.Session
	for i, h := range history {
		whole.Apply(h.at, h.c)
		want[i] = whole.Figures()
		switch h.c.Op {
		case queue.OpEnqueue:
			q = append(q, h.c.Session)
		case queue.OpRemove:
			q = slices.DeleteFunc(slices.Clone(q), func(s queue.Session) bool { return s.CallID == h.c.CallID })
		}
		waiting[i] = slices.Clone(q)
	}
	known := 0
	for _, f := range want {
		if f.EstimateKnown {
			known++
		}
	}
	t.Logf("estimates known after %d of %d changes", known, len(want))
	for _, cut := range []int{0, 1, 37, 400, 999, 1400} {
		k := stats.New(cfg)
		// Recall from the first change at or before a window ahead of the
		// cut (a read back from the stream is a superset of the window).
		from := cut
		for from > 0 && history[from].at.After(history[cut].at.Add(-cfg.Window-10*time.Second)) {
			from--
		}
		for _, h := range history[from : cut+1] {
			k.Recall(h.at, h.c)
		}
		k.Seed(waiting[cut])
		if got := k.Figures(); !reflect.DeepEqual(got, want[cut]) {
			t.Fatalf("cut %d, at the snapshot:\n got %+v\nwant %+v", cut, got, want[cut])
		}
		for i := cut + 1; i < len(history); i++ {
			k.Apply(history[i].at, history[i].c)
			if got := k.Figures(); !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("cut %d, change %d:\n got %+v\nwant %+v", cut, i, got, want[i])
			}
		}
	}
}

// causeOf draws a remove cause: an allocation half the time, any other
// cause else.
func causeOf(rng *rand.Rand) queue.RemoveCause {
	if rng.IntN(2) == 0 {
		return queue.CauseSessionAllocatedToAgent
	}
	return queue.RemoveCause(1 + rng.IntN(7))
}
