package bridge

import (
	"fmt"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// deriver turns router changes into session updates: base for sessions
// without queue-position updates (Add, Remove), pos for those with them
// (also Modify for the moved session and every session the change shifted).
type deriver struct {
	base, pos []protocol.Update
	// withPos says whether pos is wanted at all: deriving it costs O(shift).
	withPos bool
}

func (d *deriver) reset(withPos bool) {
	clear(d.base)
	clear(d.pos)
	d.base, d.pos, d.withPos = d.base[:0], d.pos[:0], withPos
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
			d.pos = append(d.pos, protocol.Update{Type: queue.UpdateModify, Session: s})
		}
	}
	if d.withPos && e.Shifted() > 0 {
		q.Range(e.ShiftFrom, e.ShiftTo, func(s queue.Session) bool {
			d.pos = append(d.pos, protocol.Update{Type: queue.UpdateModify, Session: s})
			return true
		})
	}
	return nil
}

func (d *deriver) both(u protocol.Update) {
	d.base = append(d.base, u)
	if d.withPos {
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

// errGap: the next event of a group is not the one expected.
type errGap struct{ have, got uint64 }

func (e errGap) Error() string {
	return fmt.Sprintf("event %d follows %d: %s", e.got, e.have, subjects.ErrGap)
}

func (e errGap) Unwrap() error { return subjects.ErrGap }
