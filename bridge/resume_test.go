package bridge_test

import (
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// subscribeFrom subscribes with ResumeFromSeq and applies what follows to m
// (when not nil) until InitialDataComplete; it returns the result and how
// many updates came.
func subscribeFrom(t *testing.T, c *client.Client, m *client.Mirror, group string, from uint64) (*protocol.Result, int) {
	t.Helper()
	res, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: group, ResumeFromSeq: &from})
	if err != nil {
		t.Fatal(err)
	}
	if (res.Resumed == nil || !*res.Resumed) && m != nil {
		m.Drop(group)
	}
	updates := 0
	for {
		ev := next(t, c)
		updates += len(ev.SessionUpdates)
		if m == nil {
			if ev.Event == protocol.EventInitialDataComplete {
				return res, updates
			}
			continue
		}
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Event == protocol.EventInitialDataComplete {
			return res, updates
		}
	}
}

func TestResumeSendsOnlyTheMissedChanges(t *testing.T) {
	e := newEnv(t)
	ids := e.enqueue("acme-support", 50)
	_, url := e.gateway(bridge.Config{}, nil)
	first := initialized(t, url, true)
	m := client.NewMirror(true)
	if _, err := first.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-support"}); err != nil {
		t.Fatal(err)
	}
	seen := untilComplete(t, first, m, "acme-support").Seq
	_ = first.Close()
	// while the client is away: a removal, a move and two arrivals
	e.Apply("acme-support", queue.Change{Op: queue.OpRemove, CallID: ids[10], Cause: queue.CauseOverflow})
	e.Apply("acme-support", queue.Change{Op: queue.OpMove, CallID: ids[40], Position: 2})
	e.enqueue("acme-support", 2)

	second := initialized(t, url, true)
	res, _ := subscribeFrom(t, second, m, "acme-support", seen)
	if !*res.Resumed {
		t.Fatal("not resumed")
	}
	catchUp(t, e, second, m, "acme-support")
	if got, want := callIDs(m.Groups["acme-support"]), queueIDs(e.Queues["acme-support"]); !slices.Equal(got, want) {
		t.Fatalf("after resume\n got %v\nwant %v", got, want)
	}
	if m.Seq["acme-support"] != seen+4 {
		t.Fatalf("seq %d, want %d", m.Seq["acme-support"], seen+4)
	}
	// without position updates only the removal and the arrivals come
	third := initialized(t, url, false)
	if res, updates := subscribeFrom(t, third, nil, "acme-support", seen); !*res.Resumed || updates != 3 {
		t.Fatalf("resumed %v with %d updates, want 3", *res.Resumed, updates)
	}
}

func TestResumeFallsBackToFullData(t *testing.T) {
	e := newEnv(t)
	e.enqueue("acme-sales", 20)
	_, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	m := client.NewMirror(false)
	res, updates := subscribeFrom(t, c, m, "acme-sales", 99) // a Seq the group never reached
	if *res.Resumed || updates != 20 || len(m.Groups["acme-sales"]) != 20 {
		t.Fatalf("resumed %v, %d updates", *res.Resumed, updates)
	}
}

func TestResumeNeedsTheHistory(t *testing.T) {
	e := newEnv(t)
	e.enqueue("globex-chat", 30)
	if err := e.Adapter.Close(e.Ctx); err != nil { // a final snapshot at 30
		t.Fatal(err)
	}
	s, err := e.JS.Stream(e.Ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(e.Ctx, jetstream.WithPurgeSequence(20)); err != nil { // events 1..19 gone
		t.Fatal(err)
	}
	e.StartAdapter()
	_, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	m := client.NewMirror(false)
	if res, _ := subscribeFrom(t, c, m, "globex-chat", 5); *res.Resumed {
		t.Fatal("resumed from a Seq whose history is gone")
	}
	if len(m.Groups["globex-chat"]) != 30 {
		t.Fatalf("%d sessions", len(m.Groups["globex-chat"]))
	}
	if res, _ := subscribeFromAgain(t, c, m, "globex-chat", 25); *res.Resumed {
		t.Fatal("resumed from 25: the snapshot is at 30 and events before 20 are gone")
	}
	if err := c.Unsubscribe(ctxT(t), "globex-chat"); err != nil {
		t.Fatal(err)
	}
	drain(t, c, m)
	e.enqueue("globex-chat", 5)
	res, updates := subscribeFrom(t, c, m, "globex-chat", 30)
	if updates += catchUp(t, e, c, m, "globex-chat"); !*res.Resumed || updates != 5 {
		t.Fatalf("resume from 30 (the snapshot, events after it kept): resumed %v, %d updates", *res.Resumed, updates)
	}
	if got, want := callIDs(m.Groups["globex-chat"]), queueIDs(e.Queues["globex-chat"]); !slices.Equal(got, want) {
		t.Fatalf("after resume\n got %v\nwant %v", got, want)
	}
}

// catchUp applies events until the client holds the adapter's latest Seq
// of the group; it returns how many updates that took.
func catchUp(t *testing.T, e *env, c *client.Client, m *client.Mirror, group string) int {
	t.Helper()
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	last, _, _ := e.Adapter.Group(group)
	updates := 0
	for m.Seq[group] < last {
		ev := next(t, c)
		updates += len(ev.SessionUpdates)
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	return updates
}

// subscribeFromAgain unsubscribes, then resumes.
func subscribeFromAgain(t *testing.T, c *client.Client, m *client.Mirror, group string, from uint64) (*protocol.Result, int) {
	t.Helper()
	if err := c.Unsubscribe(ctxT(t), group); err != nil {
		t.Fatal(err)
	}
	drain(t, c, m)
	return subscribeFrom(t, c, m, group, from)
}

// drain applies the events buffered now: after a reply, those that came
// before it.
func drain(t *testing.T, c *client.Client, m *client.Mirror) {
	t.Helper()
	for range len(c.Events()) {
		if err := m.Apply(<-c.Events()); err != nil {
			t.Fatal(err)
		}
	}
}
