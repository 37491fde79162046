package bridge

import (
	"cmp"
	"slices"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// The update rate cap (§12): a session initialized with
// MaxEventsPerSecond n is sent at most n SessionsUpdated of a group in any
// second. A subscription keeps the times of its last n events; a change
// that comes while n were sent within the last second is merged, by its
// net effect on what the client holds, into one event sent as soon as the
// second allows. Changes that come while the subscription gets its
// initial data are merged too, and sent after it.

// capped is a capped subscription's state; guarded by its view's v.mu.
type capped struct {
	per     int         // events a second at most
	sent    []time.Time // the times of the last per events, oldest first
	pending netChanges  // merged changes not sent yet
	timer   *time.Timer // sends pending when the second allows
}

// netChanges are changes merged by their net effect on what a client last
// received, by CallID.
type netChanges struct {
	byID map[string]*netChange
	seq  uint64 // the group's Seq after the last change merged
	born time.Time
}

// netChange is what became of one session since the client's last event.
type netChange struct {
	known   bool // the client holds the session (the first change was no Add)
	present bool // the session is in the queue now
	last    protocol.Update
}

func (n *netChanges) empty() bool { return len(n.byID) == 0 }

// merge adds a change's updates (already filtered for the subscriber).
func (n *netChanges) merge(updates []protocol.Update, seq uint64, born time.Time) {
	if n.byID == nil {
		n.byID = map[string]*netChange{}
	}
	for _, u := range updates {
		c := n.byID[u.Session.CallID]
		if c == nil {
			c = &netChange{known: u.Type != queue.UpdateAdd}
			n.byID[u.Session.CallID] = c
		}
		c.present = u.Type != queue.UpdateRemove
		c.last = u
	}
	n.seq = seq
	if n.born.IsZero() || (!born.IsZero() && born.Before(n.born)) {
		n.born = born
	}
}

// updates returns the net effect: Removes first, then Adds and Modifies in
// queue order; a session added and removed in between is left out. It
// empties n.
func (n *netChanges) updates() []protocol.Update {
	var removes, rest []protocol.Update
	for _, c := range n.byID {
		switch {
		case c.known && !c.present:
			removes = append(removes, c.last)
		case !c.known && c.present:
			u := c.last
			u.Type = queue.UpdateAdd
			rest = append(rest, u)
		case c.known && c.present:
			u := c.last
			u.Type, u.Cause = queue.UpdateModify, queue.CauseNone
			rest = append(rest, u)
		}
	}
	slices.SortFunc(removes, func(a, b protocol.Update) int { return cmp.Compare(a.Session.CallID, b.Session.CallID) })
	slices.SortFunc(rest, func(a, b protocol.Update) int { return cmp.Compare(a.Session.QueuePosition, b.Session.QueuePosition) })
	clear(n.byID)
	n.born = time.Time{}
	return append(removes, rest...)
}

// room says whether an event may be sent now, and if not, when.
func (c *capped) room(now time.Time) (bool, time.Duration) {
	if len(c.sent) < c.per {
		return true, 0
	}
	if wait := c.sent[0].Add(time.Second).Sub(now); wait > 0 {
		return false, wait
	}
	return true, 0
}

// note records an event sent now.
func (c *capped) note(now time.Time) {
	if len(c.sent) == c.per {
		c.sent = append(c.sent[:0], c.sent[1:]...)
	}
	c.sent = append(c.sent, now)
}

// deliverCapped sends a change's updates to a capped subscriber: at once
// when the second allows and nothing waits (shared is their encoding for
// every subscriber of its kind), else merged; v.mu is held.
func (v *view) deliverCapped(s *sub, list []protocol.Update, shared []byte, born time.Time) {
	if shared == nil { // nothing of this change passes s's media filter
		return
	}
	c := s.capped
	now := time.Now()
	ok, _ := c.room(now)
	if ok && !s.holding && c.pending.empty() {
		c.note(now)
		v.deliver(s, frame{data: shared, op: s.t.opcode, gen: s.gen, born: born, mark: s.mark, seq: v.seq})
		return
	}
	if s.media != 0 {
		list = s.media.filter(nil, list)
	}
	c.pending.merge(list, v.seq, born)
	v.sendMerged(s, now)
}

// sendMerged sends a capped subscriber's merged changes when the second
// allows, or sets a timer for when it will; v.mu is held.
func (v *view) sendMerged(s *sub, now time.Time) {
	c := s.capped
	if s.holding || c.pending.empty() {
		return
	}
	ok, wait := c.room(now)
	if !ok {
		if c.timer == nil {
			c.timer = time.AfterFunc(wait, func() { v.mergedDue(s) })
		}
		return
	}
	seq, born := c.pending.seq, c.pending.born
	updates := c.pending.updates()
	if len(updates) == 0 { // everything merged cancelled out
		return
	}
	c.note(now)
	data := protocol.AppendSessionsUpdated(s.t.format, nil, v.group.ServiceGroupID, seq, updates)
	v.deliver(s, frame{data: data, op: s.t.opcode, gen: s.gen, born: born, mark: s.mark, seq: seq})
}

// mergedDue runs when a capped subscriber's second allows its merged
// changes.
func (v *view) mergedDue(s *sub) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.capped == nil || s.idx < 0 || v.ctx.Err() != nil {
		return
	}
	s.capped.timer = nil
	v.sendMerged(s, time.Now())
}

// stopCap stops a capped subscriber's timer; v.mu is held.
func (s *sub) stopCap() {
	if s.capped != nil && s.capped.timer != nil {
		s.capped.timer.Stop()
		s.capped.timer = nil
	}
}
