package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// TestCapWindow: n events within any second, the next when the oldest of
// them is a second old.
func TestCapWindow(t *testing.T) {
	c := &capped{per: 3}
	t0 := time.Unix(1000, 0)
	for i, at := range []time.Duration{0, 100 * time.Millisecond, 900 * time.Millisecond} {
		if ok, _ := c.room(t0.Add(at)); !ok {
			t.Fatalf("event %d refused", i)
		}
		c.note(t0.Add(at))
	}
	if ok, wait := c.room(t0.Add(950 * time.Millisecond)); ok || wait != 50*time.Millisecond {
		t.Fatalf("a fourth within the second: %v, wait %s", ok, wait)
	}
	if ok, _ := c.room(t0.Add(time.Second)); !ok {
		t.Fatal("refused a second after the first")
	}
	c.note(t0.Add(time.Second))
	if ok, wait := c.room(t0.Add(time.Second)); ok || wait != 100*time.Millisecond {
		t.Fatalf("after it: %v, wait %s (the second event's second)", ok, wait)
	}
}

func upd(typ queue.UpdateType, id string, pos int, cause queue.RemoveCause) protocol.Update {
	return protocol.Update{Type: typ, Session: queue.Session{CallID: id, QueuePosition: pos}, Cause: cause}
}

// TestNetChanges: changes merged by their net effect on what the client
// holds.
func TestNetChanges(t *testing.T) {
	add, mod, rem := queue.UpdateAdd, queue.UpdateModify, queue.UpdateRemove
	tests := []struct {
		name string
		in   [][]protocol.Update
		want string
	}{
		{"added and removed in between: nothing", [][]protocol.Update{{upd(add, "a", 3, 0)}, {upd(rem, "a", 3, queue.CauseDisconnect)}}, ""},
		{"added, then moved: one Add as it is now", [][]protocol.Update{{upd(add, "a", 3, 0)}, {upd(mod, "a", 1, 0)}}, "Add a@1"},
		{"moved twice: one Modify, the latest", [][]protocol.Update{{upd(mod, "a", 2, 0)}, {upd(mod, "a", 1, 0)}}, "Modify a@1"},
		{"moved, then removed: the Remove with its cause", [][]protocol.Update{{upd(mod, "a", 2, 0)}, {upd(rem, "a", 2, queue.CauseSessionAllocatedToAgent)}},
			"Remove a@2 SessionAllocatedToAgent"},
		{"removes first, then in queue order", [][]protocol.Update{
			{upd(add, "c", 3, 0), upd(mod, "b", 2, 0)},
			{upd(rem, "x", 1, queue.CauseOverflow), upd(mod, "b", 1, 0), upd(mod, "c", 2, 0)},
			{upd(add, "d", 3, 0)}},
			"Remove x@1 Overflow, Modify b@1, Add c@2, Add d@3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n netChanges
			for i, u := range tt.in {
				n.merge(u, uint64(i+1), time.Time{})
			}
			if n.seq != uint64(len(tt.in)) {
				t.Errorf("Seq %d, want the last merged change's", n.seq)
			}
			got := ""
			for i, u := range n.updates() {
				if i > 0 {
					got += ", "
				}
				got += fmt.Sprintf("%s %s@%d", u.Type, u.Session.CallID, u.Session.QueuePosition)
				if u.Type == rem {
					got += " " + u.Cause.String()
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !n.empty() {
				t.Error("not emptied")
			}
		})
	}
}
