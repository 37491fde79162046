package sim_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/sim"
	"github.com/sisbridge/sisbridge/subjects"
)

// start is a Monday 06:00 UTC: a simulated day from it sees the morning
// peak, both closings and the night.
var start = time.Date(2025, 3, 10, 6, 0, 0, 0, time.UTC)

// record is one Handler call.
type record struct {
	Kind   string // "up", "down", "apply", "sync"
	Group  string
	Change queue.Change
	Reason string
	State  *router.State
}

// recorder is an in-memory Handler: it records every call and keeps its own
// queue per group, fed only from LinkUp states and changes, the way the
// adapter does.
type recorder struct {
	mu      sync.Mutex
	calls   []record
	queues  map[string]*queue.Queue
	link    bool
	errs    []error
	ups     int
	relinks int // changes LinkUp reconciliations needed, after the first
	// onApply, when set, is called after every Apply.
	onApply func(r *recorder, group string, c queue.Change)
}

func newRecorder() *recorder { return &recorder{queues: map[string]*queue.Queue{}} }

func (r *recorder) fail(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	r.errs = append(r.errs, err)
	return err
}

func (r *recorder) LinkUp(_ context.Context, st *router.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, record{Kind: "up", State: st})
	if st == nil {
		return r.fail("LinkUp without a state")
	}
	listed := map[string]bool{}
	for _, g := range st.Groups {
		listed[g.ServiceGroupID] = true
	}
	for id := range r.queues {
		if !listed[id] { // removed while the link was down
			delete(r.queues, id)
		}
	}
	for _, g := range st.Groups {
		q := r.queues[g.ServiceGroupID]
		if q == nil {
			q = queue.New(g.ServiceGroupID)
			r.queues[g.ServiceGroupID] = q
		}
		changes, _, err := q.Reconcile(st.Queues[g.ServiceGroupID])
		if err != nil {
			return r.fail("reconcile %s: %v", g.ServiceGroupID, err)
		}
		if r.ups > 0 {
			r.relinks += len(changes)
		}
	}
	r.ups++
	r.link = true
	return nil
}

func (r *recorder) LinkDown(_ context.Context, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, record{Kind: "down", Reason: reason})
	if !r.link {
		r.fail("LinkDown while down")
	}
	r.link = false
}

func (r *recorder) PutTenant(context.Context, subjects.Tenant) error {
	return r.fail("unexpected PutTenant")
}

// PutGroup sets up a group again (GroupChurn): one not in the directory.
func (r *recorder) PutGroup(_ context.Context, g subjects.Group) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, record{Kind: "putgroup", Group: g.ServiceGroupID})
	if r.queues[g.ServiceGroupID] != nil {
		return r.fail("PutGroup of %s, already there", g.ServiceGroupID)
	}
	r.queues[g.ServiceGroupID] = queue.New(g.ServiceGroupID)
	return nil
}

// RemoveGroup takes a group out (GroupChurn): the simulator has flushed it
// first, so its queue is empty.
func (r *recorder) RemoveGroup(_ context.Context, group string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, record{Kind: "removegroup", Group: group})
	q := r.queues[group]
	switch {
	case q == nil:
		return r.fail("RemoveGroup of unknown group %s", group)
	case q.Len() > 0:
		return r.fail("RemoveGroup of %s with %d sessions queued", group, q.Len())
	}
	delete(r.queues, group)
	return nil
}

func (r *recorder) Sync(_ context.Context, group string, _ []queue.Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, record{Kind: "sync", Group: group})
	return r.fail("unexpected Sync of %s", group)
}

func (r *recorder) Apply(_ context.Context, group string, c queue.Change) error {
	r.mu.Lock()
	r.calls = append(r.calls, record{Kind: "apply", Group: group, Change: c})
	err := r.apply(group, c)
	r.mu.Unlock()
	if err == nil && r.onApply != nil {
		r.onApply(r, group, c)
	}
	return err
}

func (r *recorder) apply(group string, c queue.Change) error {
	q := r.queues[group]
	switch {
	case !r.link:
		return r.fail("Apply while the link is down: %s %+v", group, c)
	case q == nil:
		return r.fail("Apply to unknown group %s", group)
	}
	if err := r.checkPosition(q, c); err != nil {
		return err
	}
	if _, err := q.Apply(c); err != nil {
		return r.fail("queue rejects %s %+v: %v", group, c, err)
	}
	return nil
}

// checkPosition checks where the simulator puts sessions: Voice before the
// first callback (else the tail), other media at the tail, moves forward.
func (r *recorder) checkPosition(q *queue.Queue, c queue.Change) error {
	switch c.Op {
	case queue.OpEnqueue:
		want := 0
		if c.Session.MediaType == queue.MediaVoice {
			q.Range(1, q.Len(), func(s queue.Session) bool {
				if s.MediaType == queue.MediaCallback || s.MediaType == queue.MediaWebCallBack {
					want = s.QueuePosition
					return false
				}
				return true
			})
		}
		if c.Position != want {
			return r.fail("%s %s enqueued at %d, want %d", c.Session.MediaType, c.CallID, c.Position, want)
		}
	case queue.OpMove:
		if from := q.Position(c.CallID); c.Position < 1 || c.Position >= from {
			return r.fail("move of %s from %d to %d is not towards the front", c.CallID, from, c.Position)
		}
	}
	return nil
}

// snapshot returns the recorded calls and errors so far.
func (r *recorder) snapshot() ([]record, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.calls...), append([]error(nil), r.errs...)
}

// checkMatches fails t unless the recorder's queues equal the state.
func (r *recorder) checkMatches(t *testing.T, st *router.State) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queues) != len(st.Groups) {
		t.Fatalf("recorder holds %d groups, the simulator's directory %d", len(r.queues), len(st.Groups))
	}
	for _, g := range st.Groups {
		q := r.queues[g.ServiceGroupID]
		if q == nil {
			t.Fatalf("recorder has no queue for %s", g.ServiceGroupID)
		}
		got, want := q.Sessions(), st.Queues[g.ServiceGroupID]
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("group %s: recorder holds %d sessions, sim %d:\n got %+v\nwant %+v", g.ServiceGroupID, len(got), len(want), got, want)
		}
	}
}

func maxSpeed(c sim.Config) sim.Config {
	c.Speed = math.Inf(1)
	if c.Start.IsZero() {
		c.Start = start
	}
	return c
}

func newSim(t testing.TB, c sim.Config) *sim.Sim {
	t.Helper()
	s, err := sim.New(maxSpeed(c))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s to completion (MaxChanges) and checks that the recorder
// accepted everything.
func run(t testing.TB, s *sim.Sim, r *recorder) {
	t.Helper()
	if err := s.Run(context.Background(), r); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, errs := r.snapshot(); len(errs) > 0 {
		t.Fatalf("%d handler errors, first: %v", len(errs), errs[0])
	}
}

func TestSameSeedSameCalls(t *testing.T) {
	cfg := sim.Config{Seed: 42, LinkDrops: true, MaxChanges: 5000}
	a, b := newRecorder(), newRecorder()
	run(t, newSim(t, cfg), a)
	run(t, newSim(t, cfg), b)
	ca, _ := a.snapshot()
	cb, _ := b.snapshot()
	if len(ca) < 5000 {
		t.Fatalf("only %d calls", len(ca))
	}
	if !reflect.DeepEqual(ca, cb) {
		for i := range min(len(ca), len(cb)) {
			if !reflect.DeepEqual(ca[i], cb[i]) {
				t.Fatalf("call %d differs:\n%+v\n%+v", i, ca[i], cb[i])
			}
		}
		t.Fatalf("%d calls, then %d", len(ca), len(cb))
	}
}

func TestDifferentSeedsDiffer(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	run(t, newSim(t, sim.Config{Seed: 1, MaxChanges: 200}), a)
	run(t, newSim(t, sim.Config{Seed: 2, MaxChanges: 200}), b)
	ca, _ := a.snapshot()
	cb, _ := b.snapshot()
	if reflect.DeepEqual(ca, cb) {
		t.Fatal("seeds 1 and 2 produced the same calls")
	}
}

func TestChangesValidAndStateMatches(t *testing.T) {
	for _, seed := range []uint64{1, 7, 99} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, sim.Config{Seed: seed, LinkDrops: true, MaxChanges: 20000})
			r := newRecorder()
			run(t, s, r)
			r.checkMatches(t, s.State())
		})
	}
}

func TestWarmupFillsQueues(t *testing.T) {
	s := newSim(t, sim.Config{Seed: 3})
	if !s.Now().Equal(start) {
		t.Fatalf("Now %s after New, want Start %s", s.Now(), start)
	}
	n := 0
	for _, ss := range s.State().Queues {
		n += len(ss)
	}
	if n == 0 {
		t.Fatal("queues empty after the warmup")
	}
	if s := newSim(t, sim.Config{Seed: 3, Warmup: -1}); len(s.State().Queues["acme-sales"]) != 0 {
		t.Fatal("queues filled without a warmup")
	}
}

func TestDirectory(t *testing.T) {
	st := newSim(t, sim.Config{}).State()
	if len(st.Tenants) != 3 || len(st.Groups) != 9 || len(st.Queues) != 9 {
		t.Fatalf("%d tenants, %d groups, %d queues; want 3, 9, 9", len(st.Tenants), len(st.Groups), len(st.Queues))
	}
	if st.Tenants[0].TenantID != "acme" || st.Groups[0].ServiceGroupID != "acme-sales" || st.Groups[0].TenantID != "acme" {
		t.Fatalf("first tenant %+v, group %+v", st.Tenants[0], st.Groups[0])
	}
	checkDirectory(t, st)
	big := newSim(t, sim.Config{Tenants: 20, GroupsPerTenant: 14, Warmup: -1}).State()
	if len(big.Tenants) != 20 || len(big.Groups) != 20*14 {
		t.Fatalf("%d tenants, %d groups; want 20, %d", len(big.Tenants), len(big.Groups), 20*14)
	}
	checkDirectory(t, big)
}

func checkDirectory(t *testing.T, st *router.State) {
	t.Helper()
	tenants := map[string]bool{}
	for _, tn := range st.Tenants {
		if !subjects.ValidID(tn.TenantID) || tn.Name == "" || tenants[tn.TenantID] {
			t.Fatalf("bad or repeated tenant %+v", tn)
		}
		tenants[tn.TenantID] = true
	}
	ids, names := map[string]bool{}, map[string]bool{}
	for _, g := range st.Groups {
		key := g.TenantID + "/" + strings.ToLower(g.Name)
		if !subjects.ValidID(g.ServiceGroupID) || !tenants[g.TenantID] || ids[g.ServiceGroupID] || names[key] {
			t.Fatalf("bad or repeated group %+v", g)
		}
		ids[g.ServiceGroupID], names[key] = true, true
	}
}

// TestGroupChurn: with GroupChurn, groups close down for good (flushed with
// ServiceGroupClosed, then removed) and are set up again, link drops
// between; the handler's queues stay the simulator's throughout.
func TestGroupChurn(t *testing.T) {
	r := newRecorder()
	s := newSim(t, sim.Config{Seed: 9, GroupChurn: true, LinkDrops: true, MaxChanges: 30000})
	run(t, s, r)
	calls, _ := r.snapshot()
	removed, put, closed := 0, 0, 0
	for _, c := range calls {
		switch {
		case c.Kind == "removegroup":
			removed++
		case c.Kind == "putgroup":
			put++
		case c.Kind == "apply" && c.Change.Cause == queue.CauseServiceGroupClosed:
			closed++
		}
	}
	if removed < 3 || put < 2 || closed == 0 {
		t.Fatalf("%d removals, %d set up again, %d sessions closed: want groups to come and go", removed, put, closed)
	}
	r.checkMatches(t, s.State())
	t.Logf("%d removals, %d set up again, %d sessions left with ServiceGroupClosed", removed, put, closed)
}
