package bridge_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/internal/statscheck"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/stats"
	"github.com/sisbridge/sisbridge/subjects"
)

// statsCfg is the gateways' statistics setting in these tests.
var statsCfg = stats.Config{Window: time.Hour, ServiceLevelThreshold: 20 * time.Second}

// counted is what the gateway must send for a group at Seq seq: the
// figures counted independently from the stream's history up to seq.
func counted(t *testing.T, e *env, group string, seq uint64) protocol.Statistics {
	t.Helper()
	hist, err := subjects.OpenHistory(e.Ctx, e.JS)
	if err != nil {
		t.Fatal(err)
	}
	var events []subjects.Event
	err = hist.Walk(e.Ctx, subjects.Events("acme", group), 1, 0, func(ev *subjects.Event, _ uint64) error {
		if ev.Seq <= seq {
			events = append(events, *ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bridge.WireStatistics(statscheck.Count(statsCfg, events))
}

// nextStats returns the next QueueStatistics of c (failing on a
// SessionsUpdated when sessions is false).
func nextStats(t *testing.T, c *client.Client, sessions bool) protocol.Message {
	t.Helper()
	for {
		m := next(t, c)
		switch {
		case m.Event == protocol.EventQueueStatistics:
			return m
		case m.Event == protocol.EventSessionsUpdated && !sessions:
			t.Fatalf("a SessionsUpdated for a subscription without sessions: %+v", m)
		case m.Event == protocol.EventInitialDataComplete:
			t.Fatalf("InitialDataComplete before QueueStatistics")
		}
	}
}

// statsOnly is a client subscribed to group for statistics alone, and its
// first QueueStatistics.
func statsOnly(t *testing.T, url, group string) (*client.Client, protocol.Message) {
	t.Helper()
	yes, no := true, false
	c := initialized(t, url, false)
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: group, Statistics: &yes, Sessions: &no}); err != nil {
		t.Fatal(err)
	}
	return c, nextStats(t, c, false)
}

// completed fails unless c's next event is InitialDataComplete.
func completed(t *testing.T, c *client.Client) {
	t.Helper()
	if m := next(t, c); m.Event != protocol.EventInitialDataComplete {
		t.Fatalf("want InitialDataComplete, got %+v", m)
	}
}

// sameFigures fails unless a QueueStatistics holds the counted figures.
func sameFigures(t *testing.T, what string, m protocol.Message, want protocol.Statistics) {
	t.Helper()
	if m.Statistics == nil || !reflect.DeepEqual(*m.Statistics, want) {
		t.Fatalf("%s at Seq %d:\n got %+v\nwant %+v", what, m.Seq, m.Statistics, want)
	}
}

// TestQueueStatistics: a subscriber that asks for statistics gets the
// group's figures before InitialDataComplete and after the changes that
// alter them, each equal to an independent count from the stream's
// history at its Seq; statistics alone (Sessions false) carry no
// SessionsUpdated; Sessions false alone is refused; a gateway started
// later (another view, built from the snapshot and the window read back)
// sends the same figures for the same Seq.
func TestQueueStatistics(t *testing.T) {
	// A snapshot every 3 changes: a view loads from one, and reads the
	// window before it back from the stream.
	e := &env{Env: stacktest.NewWith(t, stacktest.Directory, router.Config{SnapshotEvery: 3})}
	base := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	for i, m := range []queue.MediaType{queue.MediaVoice, queue.MediaVoice, queue.MediaChat, queue.MediaEmail, queue.MediaVoice, queue.MediaSMS} {
		e.Apply("acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "s" + string(rune('a'+i)), Session: queue.Session{MediaType: m,
			TimeEnteredQueue: base.Add(time.Duration(i) * time.Minute), CustomerInformation: "+442079460001"}})
	}
	for i, cause := range []queue.RemoveCause{queue.CauseSessionAllocatedToAgent, queue.CauseDisconnect} {
		e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "s" + string(rune('a'+i)), Cause: cause})
	}
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	_, url := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	yes, no := true, false
	ctx := ctxT(t)

	refused := initialized(t, url, false)
	if _, err := refused.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales", Sessions: &no}); faultType(err) != protocol.InvalidRequestFault {
		t.Fatalf("Sessions false without Statistics: %v", err)
	}

	both := initialized(t, url, true)
	if _, err := both.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales", Statistics: &yes}); err != nil {
		t.Fatal(err)
	}
	first := nextStats(t, both, true)
	sameFigures(t, "initial statistics", first, counted(t, e, "acme-sales", first.Seq))
	if m := next(t, both); m.Event != protocol.EventInitialDataComplete || m.Seq != first.Seq {
		t.Fatalf("after the initial statistics: %+v", m)
	}
	if first.Waiting != 4 || first.Removed["Disconnect"] != 1 || first.AverageWaitAllocated == nil {
		t.Fatalf("initial figures %+v", first.Statistics)
	}

	only, initial := statsOnly(t, url, "acme-sales")
	sameFigures(t, "statistics only, initial", initial, counted(t, e, "acme-sales", first.Seq))
	completed(t, only)

	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "sc", Cause: queue.CauseSessionAllocatedToAgent})
	for _, c := range []*client.Client{both, only} {
		m := nextStats(t, c, c == both)
		sameFigures(t, "after an allocation", m, counted(t, e, "acme-sales", m.Seq))
		if m.Seq <= first.Seq {
			t.Fatalf("statistics at Seq %d after a change past %d", m.Seq, first.Seq)
		}
	}

	_, later := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	_, m := statsOnly(t, later, "acme-sales")
	sameFigures(t, "a gateway started later", m, counted(t, e, "acme-sales", m.Seq))
}

// TestQueueStatisticsAtMostOnceASecond: a burst of changes, each altering
// the figures, brings a subscriber at most one QueueStatistics a second
// for the group, the latest figures each time (equal to the count at
// their Seq), and the last one reflects the last change.
func TestQueueStatisticsAtMostOnceASecond(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	c, _ := statsOnly(t, url, "acme-sales")
	completed(t, c)
	start := time.Now()
	ids := e.enqueue("acme-sales", 1)
	for time.Since(start) < 2500*time.Millisecond { // a change every 50 ms for 2.5 s
		ids = append(ids, e.enqueue("acme-sales", 1)...)
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	burst := time.Since(start)
	received := 0
	var m protocol.Message
	for m.Statistics == nil || m.Waiting != len(ids) {
		m = nextStats(t, c, false)
		received++
		sameFigures(t, "during the burst", m, counted(t, e, "acme-sales", m.Seq))
	}
	took := time.Since(start)
	if limit := int(took/time.Second) + 1; received > limit {
		t.Fatalf("%d QueueStatistics in %s (changes for %s): more than one a second", received, took.Round(time.Millisecond), burst.Round(time.Millisecond))
	}
	t.Logf("%d changes in %s brought %d QueueStatistics, the last at Seq %d", len(ids), burst.Round(time.Millisecond), received, m.Seq)
}

// TestStatisticsFramesSurviveAHerd: many clients subscribing at once to
// groups with sessions, asking for statistics, each get every group's
// initial data whole and its figures: the statistics frame the view
// encodes once is shared, and must never go back to the pool of
// initial-data buffers (it once did, and clients got frames cut short).
func TestStatisticsFramesSurviveAHerd(t *testing.T) {
	e := newEnv(t)
	groups := []string{"acme-sales", "acme-support"}
	for _, g := range groups {
		e.enqueue(g, 30)
	}
	_, url := e.gateway(bridge.Config{Statistics: statsCfg, InitialChunk: 7}, nil)
	yes := true
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := initialized(t, url, false)
			for _, g := range groups {
				if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: g, Statistics: &yes}); err != nil {
					code, why := c.CloseCode()
					t.Errorf("client %d, %s: %v (closed %d %q)", i, g, err, code, why)
					return
				}
			}
			complete := 0
			for complete < len(groups) {
				select {
				case m, ok := <-c.Events():
					if !ok {
						t.Errorf("client %d: connection ended before every initial data", i)
						return
					}
					if m.Event == protocol.EventInitialDataComplete {
						complete++
					}
				case <-time.After(20 * time.Second):
					t.Errorf("client %d: no initial data within 20 s", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestQueueStatisticsAfterARebuild: when the view rebuilds (the stream
// lost its tail and a new adapter numbered its changes again), the
// figures sent afterwards are those counted from the stream's history as
// it now is, at their Seq.
func TestQueueStatisticsAfterARebuild(t *testing.T) {
	e := newEnv(t)
	ids := e.enqueue("acme-sales", 40)
	_, url := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	c, _ := statsOnly(t, url, "acme-sales")
	completed(t, c)
	for i := range 10 { // one message each
		e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: ids[i], Cause: queue.CauseSessionAllocatedToAgent})
		if err := e.Adapter.Flush(e.Ctx); err != nil {
			t.Fatal(err)
		}
	}
	var m protocol.Message
	for m.Seq < 50 {
		m = nextStats(t, c, false)
	}
	renumberTail(t, e)
	// The router's queue now: 30 waiting (the new adapter's sync restored
	// what the lost events had removed, then removed it again).
	for {
		m = nextStats(t, c, false)
		want := counted(t, e, "acme-sales", m.Seq)
		if reflect.DeepEqual(*m.Statistics, want) && m.Waiting == e.Queues["acme-sales"].Len() {
			break
		}
		if m.Seq > 60 {
			t.Fatalf("after the rebuild, at Seq %d:\n got %+v\nwant %+v", m.Seq, m.Statistics, want)
		}
	}
}

// TestStatisticsJoinABusyView: a view followed for sessions only keeps no
// statistics (it reads no window back); the first subscriber asking for
// them has them built from the view as it is while changes keep coming,
// and its figures are the count at their Seq.
func TestStatisticsJoinABusyView(t *testing.T) {
	e := newEnv(t)
	ids := e.enqueue("acme-sales", 20)
	_, url := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	plain := initialized(t, url, false)
	if _, err := plain.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the router goes on: an allocation every 20 ms
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if i < len(ids) {
				if err := e.Adapter.Apply(e.Ctx, "acme-sales", queue.Change{Op: queue.OpRemove, CallID: ids[i], Cause: queue.CauseSessionAllocatedToAgent}); err != nil {
					t.Errorf("allocate %s: %v", ids[i], err)
					return
				}
			}
		}
	}()
	for i := range 5 {
		_, m := statsOnly(t, url, "acme-sales")
		if err := e.Adapter.Flush(e.Ctx); err != nil {
			t.Fatal(err)
		}
		sameFigures(t, fmt.Sprintf("subscriber %d", i), m, counted(t, e, "acme-sales", m.Seq))
	}
	close(stop)
	<-done
}

// TestStatisticsOnlyIgnoresResume: a statistics-only Subscribe carrying
// ResumeFromSeq resumes nothing (there are no sessions to resume): it
// answers Resumed false and sends the figures, then InitialDataComplete,
// and no SessionsUpdated.
func TestStatisticsOnlyIgnoresResume(t *testing.T) {
	e := newEnv(t)
	e.enqueue("acme-sales", 5)
	_, url := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	yes, no := true, false
	from := uint64(2)
	c := initialized(t, url, false)
	res, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales", Statistics: &yes, Sessions: &no, ResumeFromSeq: &from})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed == nil || *res.Resumed {
		t.Fatalf("Resumed %v, want false", res.Resumed)
	}
	m := nextStats(t, c, false) // fails on a SessionsUpdated
	sameFigures(t, "statistics only, resume asked", m, counted(t, e, "acme-sales", m.Seq))
	completed(t, c)
}

// TestStatisticsAfterChangesNobodyAskedFor: a view keeps its statistics
// while no subscriber asks for them (one that only lost its statistics
// subscriber, as after RouterDisconnected); the next one gets the figures
// at its own Seq, not those last sent, then the later changes.
func TestStatisticsAfterChangesNobodyAskedFor(t *testing.T) {
	e := newEnv(t)
	ids := e.enqueue("acme-sales", 2)
	_, url := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	c, first := statsOnly(t, url, "acme-sales")
	completed(t, c)
	// a sessions subscriber of the same view tells when it has applied a change
	watcher := initialized(t, url, false)
	if _, err := watcher.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	if first.Waiting != 2 {
		t.Fatalf("first figures: %d waiting, want 2", first.Waiting)
	}
	if err := c.Unsubscribe(ctxT(t), "acme-sales"); err != nil {
		t.Fatal(err)
	}
	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: ids[0], Cause: queue.CauseSessionAllocatedToAgent})
	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: ids[1], Cause: queue.CauseSessionAllocatedToAgent})
	for m := next(t, watcher); m.Seq < 4; m = next(t, watcher) {
	}
	d, m := statsOnly(t, url, "acme-sales")
	completed(t, d)
	sameFigures(t, "after changes without a statistics subscriber", m, counted(t, e, "acme-sales", m.Seq))
	if m.Seq != 4 || m.Waiting != 0 {
		t.Fatalf("the new subscriber's figures are at Seq %d with %d waiting, want Seq 4 and 0 waiting", m.Seq, m.Waiting)
	}
	e.enqueue("acme-sales", 2)
	for m.Waiting != 2 {
		m = nextStats(t, d, false)
	}
	sameFigures(t, "after two arrivals", m, counted(t, e, "acme-sales", m.Seq))
}
