package queue

import (
	"errors"
	"fmt"
	"math"
)

// Errors returned by Queue.Apply. Each is wrapped with the details of the
// change it rejects; test with errors.Is.
var (
	// ErrInvalid: the change is malformed (unknown operation, cause or media
	// type, empty CallID).
	ErrInvalid = errors.New("invalid change")
	// ErrDuplicateCall: an Enqueue names a CallID that is already queued.
	ErrDuplicateCall = errors.New("call already queued")
	// ErrUnknownCall: a Move or Remove names a CallID that is not queued.
	ErrUnknownCall = errors.New("call not queued")
	// ErrPosition: the position is outside the queue.
	ErrPosition = errors.New("impossible queue position")
)

// Op is the kind of a router change.
type Op uint8

// The router changes.
const (
	// OpEnqueue puts a new session into the queue at Position (1..n+1; 0 means
	// the tail).
	OpEnqueue Op = iota + 1
	// OpMove moves a queued session to Position (1..n; 0 means the tail).
	OpMove
	// OpRemove takes a session out of the queue, with Cause.
	OpRemove
)

var opNames = []string{"", "enqueue", "move", "remove"}

// String returns the operation's name as the feed format spells it.
func (o Op) String() string { return enumString(opNames, int(o), "Op") }

// Change is one change of a group's queue as the router reports it.
type Change struct {
	// Op is what happens.
	Op Op
	// CallID names the session.
	CallID string
	// Position is where the session goes, for OpEnqueue and OpMove; 0 means
	// the tail. Queue.Apply reports the position it resolved in Effect.To.
	Position int
	// Cause says why the session left, for OpRemove.
	Cause RemoveCause
	// Session holds the session's details, for OpEnqueue. Its CallID,
	// ServiceGroupID and QueuePosition are ignored: the queue sets them.
	// For OpRemove the bus carries the removed session's MediaType and
	// TimeEnteredQueue here (for statistics); Apply ignores them.
	Session Session
}

// Effect is what an applied change did: where the session was and is, and
// which other sessions it shifted. Positions are 1-based; 0 means "not in
// the queue".
type Effect struct {
	// Op and CallID repeat the change.
	Op     Op
	CallID string
	// From is the session's position before the change (0 for an enqueue).
	From int
	// To is its position after the change (0 for a remove).
	To int
	// ShiftFrom..ShiftTo (inclusive, positions after the change) are the
	// other sessions whose position changed, each by ShiftBy (+1 or -1).
	// The range is empty when ShiftFrom > ShiftTo.
	ShiftFrom, ShiftTo, ShiftBy int
}

// Shifted returns how many other sessions changed position.
func (e Effect) Shifted() int {
	if e.ShiftFrom > e.ShiftTo {
		return 0
	}
	return e.ShiftTo - e.ShiftFrom + 1
}

// Resolved returns the change as applied: Position holds the resolved
// position, so that replaying it elsewhere needs no knowledge of the tail.
func (c Change) Resolved(e Effect) Change {
	if c.Op == OpEnqueue || c.Op == OpMove {
		c.Position = e.To
	}
	return c
}

func (c *Change) validate() error {
	if c.CallID == "" {
		return fmt.Errorf("%w: empty CallID", ErrInvalid)
	}
	switch c.Op {
	case OpEnqueue:
		if err := c.Session.check(c.CallID); err != nil {
			return err
		}
	case OpMove:
	case OpRemove:
		if !c.Cause.Valid() {
			return fmt.Errorf("%w: call %s: %s", ErrInvalid, c.CallID, c.Cause)
		}
	default:
		return fmt.Errorf("%w: call %s: %s", ErrInvalid, c.CallID, c.Op)
	}
	if c.Position < 0 {
		return fmt.Errorf("%w: call %s: position %d", ErrPosition, c.CallID, c.Position)
	}
	return nil
}

// check reports what makes a session unfit for a queue: a media type
// outside the enumeration, a PreferredAgentID outside the reference's
// 32-bit int.
func (s *Session) check(callID string) error {
	if !s.MediaType.Valid() {
		return fmt.Errorf("%w: call %s: %s", ErrInvalid, callID, s.MediaType)
	}
	if id := s.PreferredAgentID; id < 0 || id > math.MaxInt32 {
		return fmt.Errorf("%w: call %s: PreferredAgentID %d: want 0 (none) to %d, the reference's 32-bit int", ErrInvalid, callID, id, math.MaxInt32)
	}
	return nil
}
