package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openAdapter(t *testing.T, js jetstream.JetStream, cfg Config) *Adapter {
	t.Helper()
	a, err := Open(testCtx(t), js, natstest.Logger(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	return a
}

// directory is two tenants with two groups each.
var directory = State{
	Tenants: []subjects.Tenant{{TenantID: "acme", Name: "Acme"}, {TenantID: "globex", Name: "Globex"}},
	Groups: []subjects.Group{
		{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"},
		{ServiceGroupID: "acme-support", TenantID: "acme", Name: "Support"},
		{ServiceGroupID: "globex-chat", TenantID: "globex", Name: "Chat"},
		{ServiceGroupID: "globex-email", TenantID: "globex", Name: "Email"},
	},
}

func groupIDs() []string {
	var ids []string
	for _, g := range directory.Groups {
		ids = append(ids, g.ServiceGroupID)
	}
	return ids
}

// driver produces valid random changes and keeps the expected queues.
type driver struct {
	r      *rand.Rand
	queues map[string]*queue.Queue
	next   int
}

func newDriver(seed uint64) *driver {
	d := &driver{r: rand.New(rand.NewPCG(seed, 1)), queues: map[string]*queue.Queue{}}
	for _, id := range groupIDs() {
		d.queues[id] = queue.New(id)
	}
	return d
}

func (d *driver) change() (string, queue.Change) {
	ids := groupIDs()
	g := ids[d.r.IntN(len(ids))]
	q := d.queues[g]
	n := q.Len()
	var c queue.Change
	switch k := d.r.IntN(10); {
	case n == 0 || k < 4:
		d.next++
		c = queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("call-%d", d.next), Position: d.r.IntN(n + 2),
			Session: queue.Session{MediaType: queue.MediaVoice, TimeEnteredQueue: time.Unix(1700000000, 0).UTC(), CustomerInformation: "+442079460001"}}
	case k < 6:
		s, _ := q.At(1 + d.r.IntN(n))
		c = queue.Change{Op: queue.OpMove, CallID: s.CallID, Position: 1 + d.r.IntN(n)}
	default:
		s, _ := q.At(1 + d.r.IntN(n))
		c = queue.Change{Op: queue.OpRemove, CallID: s.CallID, Cause: queue.CauseSessionAllocatedToAgent}
	}
	if _, err := q.Apply(c); err != nil {
		panic(err)
	}
	return g, c
}

func (d *driver) state() *State {
	st := directory
	st.Queues = map[string][]queue.Session{}
	for id, q := range d.queues {
		st.Queues[id] = q.Sessions()
	}
	return &st
}

// linkedAdapter starts a NATS server and an adapter whose router (a driver
// with the given seed) has reported its state.
func linkedAdapter(t *testing.T, cfg Config, seed uint64) (*Adapter, jetstream.JetStream, *driver) {
	t.Helper()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	a := openAdapter(t, js, cfg)
	d := newDriver(seed)
	if err := a.LinkUp(testCtx(t), d.state()); err != nil {
		t.Fatal(err)
	}
	return a, js, d
}

// drive applies n random changes of the driver's router.
func drive(t *testing.T, a *Adapter, d *driver, n int) {
	t.Helper()
	ctx := testCtx(t)
	for range n {
		g, c := d.change()
		if err := a.Apply(ctx, g, c); err != nil {
			t.Fatal(err)
		}
	}
}

// eachStored calls fn for every message of the events stream, in order.
func eachStored(t *testing.T, js jetstream.JetStream, fn func(*jetstream.RawStreamMsg)) {
	t.Helper()
	ctx := testCtx(t)
	s, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(m)
	}
}

// streamEvents reads every event of the stream in order.
func streamEvents(t *testing.T, js jetstream.JetStream) []subjects.Event {
	t.Helper()
	var out []subjects.Event
	eachStored(t, js, func(m *jetstream.RawStreamMsg) {
		events, err := subjects.DecodeEvents(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if tn, g, _ := subjects.ParseEvents(m.Subject); tn != e.Tenant || g != e.Group {
				t.Fatalf("event of %s.%s on subject %s", e.Tenant, e.Group, m.Subject)
			}
			out = append(out, e)
		}
	})
	return out
}

// replayAll checks that each group's events are numbered 1, 2, 3... in
// stream order and returns the queues they build from nothing.
func replayAll(t *testing.T, events []subjects.Event) map[string]*queue.Queue {
	t.Helper()
	queues, seqs := map[string]*queue.Queue{}, map[string]uint64{}
	for _, e := range events {
		if e.Seq != seqs[e.Group]+1 {
			t.Fatalf("group %s: event %d follows %d", e.Group, e.Seq, seqs[e.Group])
		}
		seqs[e.Group] = e.Seq
		if queues[e.Group] == nil {
			queues[e.Group] = queue.New(e.Group)
		}
		if _, err := queues[e.Group].Apply(e.Change); err != nil {
			t.Fatalf("group %s event %d: %v", e.Group, e.Seq, err)
		}
	}
	return queues
}

func sameQueue(t *testing.T, what string, got, want []queue.Session) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d sessions, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.CallID != w.CallID || g.QueuePosition != w.QueuePosition || g.MediaType != w.MediaType ||
			!g.TimeEnteredQueue.Equal(w.TimeEnteredQueue) || g.CustomerInformation != w.CustomerInformation || g.ServiceGroupID != w.ServiceGroupID {
			t.Fatalf("%s: position %d: got %+v, want %+v", what, i+1, g, w)
		}
	}
}

func TestPublishesOrderedNumberedEvents(t *testing.T) {
	a, js, d := linkedAdapter(t, Config{}, 1)
	ctx := testCtx(t)
	drive(t, a, d, 3000)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events := streamEvents(t, js)
	built := replayAll(t, events)
	for id, q := range d.queues {
		sameQueue(t, id+" (replayed)", built[id].Sessions(), q.Sessions())
		_, live, _ := a.Group(id)
		sameQueue(t, id+" (adapter)", live, q.Sessions())
	}
	if st := a.Stats(); st.Published != uint64(len(events)) || st.Accepted < st.Published || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRepeatedPublishIsStoredOnce(t *testing.T) {
	a, js, d := linkedAdapter(t, Config{}, 2)
	ctx := testCtx(t)
	drive(t, a, d, 1)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events := streamEvents(t, js)
	e := events[0]
	data, _ := subjects.EncodeEvent(&e)
	msg := &nats.Msg{Subject: subjects.Events(e.Tenant, e.Group), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, subjects.MsgID(a.writer, e.Tenant, e.Group, e.Seq))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate {
		t.Fatal("a repeated Nats-Msg-Id was stored again")
	}
	if n := len(streamEvents(t, js)); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}

func TestRejectsBadChangesAndChangesNothing(t *testing.T) {
	a, js, d := linkedAdapter(t, Config{}, 3)
	ctx := testCtx(t)
	g, c := d.change()
	if err := a.Apply(ctx, g, c); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		group string
		c     queue.Change
		want  error
	}{
		{"duplicate enqueue", g, c, queue.ErrDuplicateCall},
		{"unknown call", g, queue.Change{Op: queue.OpRemove, CallID: "nobody"}, queue.ErrUnknownCall},
		{"impossible position", g, queue.Change{Op: queue.OpEnqueue, CallID: "x1", Position: 99}, queue.ErrPosition},
		{"unknown group", "nowhere", queue.Change{Op: queue.OpEnqueue, CallID: "x2"}, ErrUnknownGroup},
		{"malformed call id", g, queue.Change{Op: queue.OpEnqueue, CallID: "has space"}, subjects.ErrMalformedID},
		{"unknown cause", g, queue.Change{Op: queue.OpRemove, CallID: c.CallID, Cause: 200}, queue.ErrInvalid},
		{"PreferredAgentID past 32 bits", g, queue.Change{Op: queue.OpEnqueue, CallID: "x3", Session: queue.Session{MediaType: queue.MediaVoice, PreferredAgentID: 1 << 31}}, queue.ErrInvalid},
		{"negative PreferredAgentID", g, queue.Change{Op: queue.OpEnqueue, CallID: "x4", Session: queue.Session{MediaType: queue.MediaVoice, PreferredAgentID: -1}}, queue.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Apply(ctx, tt.group, tt.c); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(streamEvents(t, js)); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
	seq, live, _ := a.Group(g)
	sameQueue(t, g, live, d.queues[g].Sessions())
	if st := a.Stats(); seq != 1 || st.Rejected != uint64(len(tests)) || st.Accepted != 1 {
		t.Fatalf("seq %d, stats %+v", seq, st)
	}
}

func TestSnapshotPlusLaterEventsEqualsLiveState(t *testing.T) {
	a, js, d := linkedAdapter(t, Config{SnapshotEvery: 37}, 4)
	ctx := testCtx(t)
	drive(t, a, d, 1000)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	hist, err := subjects.OpenHistory(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range directory.Groups {
		// Snapshots are written in the background, not in the order of the
		// groups: wait for this group's own (a count of all of them may be
		// reached by other groups' first).
		var snap subjects.Snapshot
		var found bool
		waitFor(t, "a snapshot of "+info.ServiceGroupID, func() bool {
			snap, found, err = hist.Snapshot(ctx, info.TenantID, info.ServiceGroupID)
			return err != nil || (found && snap.Seq > 0)
		})
		if err != nil || !found || snap.Seq == 0 {
			t.Fatalf("%s: snapshot %v found %v seq %d", info.ServiceGroupID, err, found, snap.Seq)
		}
		st, err := hist.Load(ctx, info.TenantID, info.ServiceGroupID)
		if err != nil {
			t.Fatal(err)
		}
		seq, live, _ := a.Group(info.ServiceGroupID)
		if st.Seq != seq || st.SnapshotSeq == 0 || st.SnapshotSeq == seq && seq%37 != 0 {
			t.Fatalf("%s: loaded seq %d (snapshot %d), live %d", info.ServiceGroupID, st.Seq, st.SnapshotSeq, seq)
		}
		sameQueue(t, info.ServiceGroupID, st.Queue.Sessions(), live)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBacklogBatchesChanges: changes arriving faster than JetStream
// acknowledges them share messages, and the history stays exact.
func TestBacklogBatchesChanges(t *testing.T) {
	a, js, d := linkedAdapter(t, Config{Window: 64, MaxBatch: 16}, 8)
	ctx := testCtx(t)
	drive(t, a, d, 20_000)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st.Messages >= st.Published {
		t.Fatalf("%d changes in %d messages: no batching", st.Published, st.Messages)
	}
	built := replayAll(t, streamEvents(t, js))
	for id, q := range d.queues {
		sameQueue(t, id, built[id].Sessions(), q.Sessions())
	}
	t.Logf("%d changes in %d messages", st.Published, st.Messages)
}

// TestSnapshotDuringSyncMatchesItsSeq syncs a group with more changes than
// SnapshotEvery: a snapshot taken then holds the queue at its own Seq, not
// the state the sync is heading for, so snapshot + later events replays.
func TestSnapshotDuringSyncMatchesItsSeq(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	a := openAdapter(t, js, Config{SnapshotEvery: 50})
	ctx := testCtx(t)
	st := directory
	st.Queues = map[string][]queue.Session{"acme-sales": nil}
	for i := range 120 {
		st.Queues["acme-sales"] = append(st.Queues["acme-sales"], queue.Session{CallID: fmt.Sprintf("c%d", i), MediaType: queue.MediaVoice})
	}
	if err := a.LinkUp(ctx, &st); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	hist, err := subjects.OpenHistory(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a snapshot", func() bool { return a.Stats().Snapshots >= 1 })
	snap, _, err := hist.Snapshot(ctx, "acme", "acme-sales")
	if err != nil || int(snap.Seq) != len(snap.Sessions) { // every change of the sync from empty is an enqueue
		t.Fatalf("snapshot at seq %d holds %d sessions (%v)", snap.Seq, len(snap.Sessions), err)
	}
	if loaded, err := hist.Load(ctx, "acme", "acme-sales"); err != nil || loaded.Seq != 120 {
		t.Fatalf("load: seq %d, %v", loaded.Seq, err)
	}
}

// TestGroupNamesAreUniqueIgnoringCase refuses a second group of a tenant
// whose name differs from another's only in case (Subscribe by name could
// not tell them apart); a group may change the case of its own name, and
// another tenant may use the name.
func TestGroupNamesAreUniqueIgnoringCase(t *testing.T) {
	a, _, _ := linkedAdapter(t, Config{}, 1)
	ctx := testCtx(t)
	for _, tt := range []struct {
		g    subjects.Group
		want error
	}{
		{subjects.Group{ServiceGroupID: "acme-sales2", TenantID: "acme", Name: "sALES "}, ErrDuplicateName},
		{subjects.Group{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "SALES"}, nil},
		{subjects.Group{ServiceGroupID: "globex-sales", TenantID: "globex", Name: "Sales"}, nil},
	} {
		if err := a.PutGroup(ctx, tt.g); !errors.Is(err, tt.want) {
			t.Fatalf("%+v: got %v, want %v", tt.g, err, tt.want)
		}
	}
	if _, _, ok := a.Group("acme-sales2"); ok {
		t.Fatal("the refused group was added")
	}
}
