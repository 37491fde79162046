package router

import (
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// groupEvents returns a group's stored events, in order.
func groupEvents(t *testing.T, js jetstream.JetStream, group string) []subjects.Event {
	t.Helper()
	var out []subjects.Event
	for _, e := range streamEvents(t, js) {
		if e.Group == group {
			out = append(out, e)
		}
	}
	return out
}

// TestRemoveGroup: a removed group's sessions leave with
// ServiceGroupClosed, its directory entry goes (a removed entry keeps it
// for its sequence), changes to it are refused; added again, by the same
// adapter or by one restarted since, it goes on after its last Seq, its
// history numbered 1, 2, 3... without a gap or a foreign write.
func TestRemoveGroup(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	a := openAdapter(t, js, Config{Name: "first"})
	d := newDriver(3)
	if err := a.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	drive(t, a, d, 200)
	_, before, _ := a.Group("acme-sales")
	if err := a.RemoveGroup(ctx, "acme-sales"); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events := groupEvents(t, js, "acme-sales")
	closed := 0
	for _, e := range events[len(events)-len(before):] {
		if e.Change.Op == queue.OpRemove && e.Change.Cause == queue.CauseServiceGroupClosed {
			closed++
		}
	}
	if closed != len(before) {
		t.Fatalf("%d sessions left with ServiceGroupClosed, want the %d queued", closed, len(before))
	}
	dir, err := subjects.ReadDirectory(ctx, a.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, in := dir.Groups["acme-sales"]; in || dir.Removed["acme-sales"].TenantID != "acme" {
		t.Fatalf("directory after the removal: groups %v, removed %v", dir.Groups, dir.Removed)
	}
	err = a.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "late", Session: queue.Session{MediaType: queue.MediaVoice}})
	if !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("a change to a removed group: %v, want ErrUnknownGroup", err)
	}
	if err := a.RemoveGroup(ctx, "acme-sales"); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("removed twice: %v", err)
	}

	// added again by the same adapter: it goes on
	info := directory.Groups[0]
	if err := a.PutGroup(ctx, info); err != nil {
		t.Fatal(err)
	}
	addAndCheck := func(a *Adapter, id string) {
		t.Helper()
		if err := a.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: id, Session: queue.Session{MediaType: queue.MediaVoice}}); err != nil {
			t.Fatal(err)
		}
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Failed(); err != nil {
			t.Fatal(err)
		}
		for i, e := range groupEvents(t, js, "acme-sales") {
			if e.Seq != uint64(i+1) {
				t.Fatalf("acme-sales event %d has Seq %d", i+1, e.Seq)
			}
		}
	}
	addAndCheck(a, "again-1")

	// removed by a reconciliation that no longer lists it, then added again after a restart
	st := d.state()
	st.Groups = slices.DeleteFunc(slices.Clone(st.Groups), func(g subjects.Group) bool { return g.ServiceGroupID == "acme-sales" })
	if err := a.LinkUp(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.Group("acme-sales"); ok {
		t.Fatal("a group the router no longer lists is still there")
	}
	closeCtx := testCtx(t)
	if err := a.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	b := openAdapter(t, js, Config{Name: "second"})
	if err := b.LinkUp(ctx, d.state()); err != nil { // the router lists it again
		t.Fatal(err)
	}
	addAndCheck(b, "again-2")
}
