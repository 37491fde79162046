package oracle

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// storeEvents hands the oracle a stored message of group g holding changes
// from Seq first on.
func storeEvents(t *testing.T, o *Oracle, g string, first uint64, changes ...queue.Change) {
	t.Helper()
	events := make([]subjects.Event, len(changes))
	for i, c := range changes {
		events[i] = subjects.Event{Tenant: "t", Group: g, Seq: first + uint64(i), Time: time.Now(), Change: c}
	}
	data, err := subjects.EncodeEvents(events)
	if err != nil {
		t.Fatal(err)
	}
	o.Message(subjects.Events("t", g), data)
}

func enqueue(id string, pos int) queue.Change {
	return queue.Change{Op: queue.OpEnqueue, CallID: id, Position: pos, Session: queue.Session{MediaType: queue.MediaVoice}}
}

// TestOracleJudgesViews: a view equal to the stream's queue at its Seq
// passes, one that differs (a session missing, a position wrong, a view
// of a Seq not yet stored once the stream gets there) is a violation; a
// gap in the stream is one too.
func TestOracleJudgesViews(t *testing.T) {
	var found []string
	kinds := map[string]int{}
	o := New(func(kind, msg string) { kinds[kind]++; found = append(found, msg) })
	storeEvents(t, o, "g", 1, enqueue("a", 1), enqueue("b", 1)) // b, a
	both := SessionPrint("a", 0) + SessionPrint("b", 0)
	withPos := SessionPrint("b", 1) + SessionPrint("a", 2)
	o.Check(Observation{Group: "g", Seq: 2, Print: both})
	o.Check(Observation{Group: "g", Seq: 2, Positions: true, Print: withPos})
	o.Check(Observation{Group: "g", Seq: 1, Print: SessionPrint("a", 0)})
	o.Check(Observation{Group: "g", Seq: 0, Print: 0})
	if len(found) != 0 || o.Verified.Load() != 4 {
		t.Fatalf("right views: findings %v, %d verified, want none and 4", found, o.Verified.Load())
	}
	o.Check(Observation{Group: "g", Seq: 2, Print: SessionPrint("a", 0)})                                         // b missing
	o.Check(Observation{Group: "g", Seq: 2, Positions: true, Print: SessionPrint("a", 1) + SessionPrint("b", 2)}) // order wrong
	o.Check(Observation{Group: "g", Seq: 3, Print: both})                                                         // ahead: waits
	if n := len(found); n != 2 || o.Waiting() != 1 {
		t.Fatalf("wrong views: %d findings, %d waiting, want 2 and 1", n, o.Waiting())
	}
	storeEvents(t, o, "g", 3, queue.Change{Op: queue.OpRemove, CallID: "a", Cause: queue.RemoveCause(1)})
	if n := len(found); n != 3 || o.Waiting() != 0 {
		t.Fatalf("a view of Seq 3 holding a, which Seq 3 removed: %d findings, %d waiting, want 3 and 0", n, o.Waiting())
	}
	o.Check(Observation{Group: "g", Seq: 4, Print: 1}) // a Seq the stream skips
	unverified := o.Unverified.Load()
	storeEvents(t, o, "g", 5, enqueue("c", 0))
	if kinds["stream"] != 1 {
		t.Fatalf("a gap in the stream (4 missing): findings %v", kinds)
	}
	if o.Waiting() != 0 || o.Unverified.Load() != unverified+1 {
		t.Fatalf("a view of the Seq the stream skipped: %d waiting, %d unverified, want 0 and %d", o.Waiting(), o.Unverified.Load(), unverified+1)
	}
}

// TestOracleFarBehind: views that reach the oracle long before the stream
// does wait by Seq, each judged by its own event, however many wait (an
// oracle that fell behind its clients catches up at the stream's pace).
func TestOracleFarBehind(t *testing.T) {
	var found []string
	o := New(func(_, msg string) { found = append(found, msg) })
	const events, viewsPerEvent = 400, 50
	prints := make([]uint64, events+1)
	for seq := 1; seq <= events; seq++ {
		prints[seq] = prints[seq-1] + SessionPrint(fmt.Sprint("s", seq), 0)
		for range viewsPerEvent {
			o.Check(Observation{Group: "g", Seq: uint64(seq), Print: prints[seq]})
		}
	}
	if n := o.Waiting(); n != events*viewsPerEvent {
		t.Fatalf("%d views waiting, want %d", n, events*viewsPerEvent)
	}
	for seq := 1; seq <= events; seq++ {
		storeEvents(t, o, "g", uint64(seq), enqueue(fmt.Sprint("s", seq), 0))
		if n := o.Waiting(); n != (events-seq)*viewsPerEvent {
			t.Fatalf("after event %d: %d waiting, want %d", seq, n, (events-seq)*viewsPerEvent)
		}
	}
	if len(found) != 0 || o.Verified.Load() != events*viewsPerEvent {
		t.Fatalf("findings %v, %d verified, want none and %d", found, o.Verified.Load(), events*viewsPerEvent)
	}
}

// TestOracleChecksWhileApplying: views handed over by many goroutines
// while the stream's messages are applied are each judged once, none lost
// in the hand-over, none waiting once the stream has passed them.
func TestOracleChecksWhileApplying(t *testing.T) {
	var mu sync.Mutex
	var found []string
	o := New(func(_, msg string) { mu.Lock(); found = append(found, msg); mu.Unlock() })
	const events, checkers = 500, 8
	prints := make([]uint64, events+1)
	for seq := 1; seq <= events; seq++ {
		prints[seq] = prints[seq-1] + SessionPrint(fmt.Sprint("s", seq), 0)
	}
	var wg sync.WaitGroup
	for range checkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; seq <= events; seq++ {
				o.Check(Observation{Group: "g", Seq: uint64(seq), Print: prints[seq]})
			}
		}()
	}
	for seq := 1; seq <= events; seq++ {
		storeEvents(t, o, "g", uint64(seq), enqueue(fmt.Sprint("s", seq), 0))
	}
	wg.Wait()
	if n := o.Waiting(); n != 0 {
		t.Fatalf("%d views still waiting after the stream passed them all", n)
	}
	if len(found) != 0 || o.Verified.Load() != events*checkers {
		t.Fatalf("findings %v, %d verified, want none and %d", found, o.Verified.Load(), events*checkers)
	}
}
