package bridge

import (
	"errors"
	"fmt"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// deriver turns router changes into session updates: base for sessions
// without queue-position updates (Add, Remove), pos for those with them
// (also Modify for the moved session and every session the change shifted).
//
// Within one batch (one SessionsUpdated) a session gets at most one Modify
// after its last Add or Remove: a later shift overwrites the earlier Modify
// in place. Positions are the field's to carry, not the order of the list,
// so the client ends the event with every position right, and a burst of
// changes in a deep queue costs O(queue), not O(changes × queue).
type deriver struct {
	base, pos []protocol.Update
	// withPos says whether pos is wanted at all: deriving it costs O(shift).
	withPos bool
	// modified maps a CallID to its Modify in pos, for this batch.
	modified map[string]int
}

func (d *deriver) reset(withPos bool) {
	clear(d.base)
	clear(d.pos)
	d.base, d.pos, d.withPos = d.base[:0], d.pos[:0], withPos
	if d.modified == nil {
		d.modified = map[string]int{}
	}
	clear(d.modified)
}

// modify records a position change, replacing one recorded in this batch.
func (d *deriver) modify(s queue.Session) {
	if i, ok := d.modified[s.CallID]; ok {
		d.pos[i].Session = s
		return
	}
	d.modified[s.CallID] = len(d.pos)
	d.pos = append(d.pos, protocol.Update{Type: queue.UpdateModify, Session: s})
}

// apply applies one change to q and records the updates it causes.
func (d *deriver) apply(q *queue.Queue, c queue.Change) error {
	var removed queue.Session
	if c.Op == queue.OpRemove {
		removed, _ = q.Get(c.CallID)
	}
	e, err := q.Apply(c)
	if err != nil {
		return err
	}
	switch c.Op {
	case queue.OpEnqueue:
		s, _ := q.At(e.To)
		d.both(protocol.Update{Type: queue.UpdateAdd, Session: s})
	case queue.OpRemove:
		d.both(protocol.Update{Type: queue.UpdateRemove, Session: removed, Cause: c.Cause})
	case queue.OpMove:
		if d.withPos && e.From != e.To {
			s, _ := q.At(e.To)
			d.modify(s)
		}
	}
	if d.withPos && e.Shifted() > 0 {
		q.Range(e.ShiftFrom, e.ShiftTo, func(s queue.Session) bool {
			d.modify(s)
			return true
		})
	}
	return nil
}

func (d *deriver) both(u protocol.Update) {
	d.base = append(d.base, u)
	if d.withPos {
		delete(d.modified, u.Session.CallID) // a later Modify follows this update
		d.pos = append(d.pos, u)
	}
}

// list returns the updates for a session with or without positions.
func (d *deriver) list(positions bool) []protocol.Update {
	if positions {
		return d.pos
	}
	return d.base
}

// errGap: the next event of a group is not the one expected; streamSeq is
// the stream sequence of the one that came.
type errGap struct{ have, got, streamSeq uint64 }

func (e errGap) Error() string {
	return fmt.Sprintf("event %d follows %d: %s", e.got, e.have, subjects.ErrGap)
}

func (e errGap) Unwrap() error { return subjects.ErrGap }

// errRenumbered: an event repeats a sequence number the view has passed.
type errRenumbered struct{ have, got uint64 }

func (e errRenumbered) Error() string {
	return fmt.Sprintf("event %d arrived after %d: the group's history was renumbered", e.got, e.have)
}

func (e errRenumbered) Unwrap() error { return errHistory }

// errHistory: a group's history no longer fits the view's.
var errHistory = errors.New("group history changed")

// errRebuild: the view must be loaded anew.
type errRebuild struct{ err error }

func (e errRebuild) Error() string { return "load the view anew: " + e.err.Error() }

func (e errRebuild) Unwrap() error { return e.err }
