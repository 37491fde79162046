package queue

import "fmt"

// Queue is the ordered queue of one service group. Enqueue, move, remove,
// lookup of a position and access by position all take O(log n); walking k
// consecutive positions takes O(log n + k). It is not safe for concurrent
// use.
type Queue struct {
	group string
	root  *node
	byID  map[string]*node
	rnd   uint64
}

// node is a treap node ordered implicitly by queue position.
type node struct {
	s                   Session
	left, right, parent *node
	size                int
	prio                uint64
}

// New returns an empty queue for the service group.
func New(group string) *Queue {
	return &Queue{group: group, byID: make(map[string]*node), rnd: 0x9E3779B97F4A7C15}
}

// Group returns the service group the queue belongs to.
func (q *Queue) Group() string { return q.group }

// Len returns the number of queued sessions.
func (q *Queue) Len() int { return size(q.root) }

// Position returns the 1-based position of the call, or 0 if it is not queued.
func (q *Queue) Position(callID string) int {
	n, ok := q.byID[callID]
	if !ok {
		return 0
	}
	return rank(n)
}

// Get returns the queued session with its position.
func (q *Queue) Get(callID string) (Session, bool) {
	n, ok := q.byID[callID]
	if !ok {
		return Session{}, false
	}
	return n.session(rank(n)), true
}

// At returns the session at a 1-based position.
func (q *Queue) At(pos int) (Session, bool) {
	n := q.nodeAt(pos)
	if n == nil {
		return Session{}, false
	}
	return n.session(pos), true
}

// Range calls fn for the sessions at positions from..to (inclusive, clipped
// to the queue) in order, until fn returns false.
func (q *Queue) Range(from, to int, fn func(Session) bool) {
	from, to = max(from, 1), min(to, q.Len())
	for n, pos := q.nodeAt(from), from; n != nil && pos <= to; n, pos = next(n), pos+1 {
		if !fn(n.s.withPosition(pos)) {
			return
		}
	}
}

// Sessions returns a copy of the whole queue in order, positions filled in.
func (q *Queue) Sessions() []Session {
	out := make([]Session, 0, q.Len())
	q.Range(1, q.Len(), func(s Session) bool {
		out = append(out, s)
		return true
	})
	return out
}

// Apply validates and applies one change. A rejected change leaves the queue
// as it was and returns an error wrapping ErrInvalid, ErrDuplicateCall,
// ErrUnknownCall or ErrPosition.
func (q *Queue) Apply(c Change) (Effect, error) {
	if err := c.validate(); err != nil {
		return Effect{}, err
	}
	switch c.Op {
	case OpEnqueue:
		return q.enqueue(c)
	case OpMove:
		return q.move(c)
	default:
		return q.remove(c)
	}
}

func (q *Queue) enqueue(c Change) (Effect, error) {
	if _, dup := q.byID[c.CallID]; dup {
		return Effect{}, fmt.Errorf("%w: %s in %s", ErrDuplicateCall, c.CallID, q.group)
	}
	pos, err := q.target(c, q.Len()+1)
	if err != nil {
		return Effect{}, err
	}
	s := c.Session
	s.CallID, s.ServiceGroupID, s.QueuePosition = c.CallID, q.group, 0
	n := &node{s: s, size: 1, prio: q.nextPrio()}
	q.byID[c.CallID] = n
	q.insertAt(pos, n)
	return Effect{Op: OpEnqueue, CallID: c.CallID, To: pos, ShiftFrom: pos + 1, ShiftTo: q.Len(), ShiftBy: 1}, nil
}

func (q *Queue) move(c Change) (Effect, error) {
	n, ok := q.byID[c.CallID]
	if !ok {
		return Effect{}, fmt.Errorf("%w: %s in %s", ErrUnknownCall, c.CallID, q.group)
	}
	to, err := q.target(c, q.Len())
	if err != nil {
		return Effect{}, err
	}
	from := rank(n)
	e := Effect{Op: OpMove, CallID: c.CallID, From: from, To: to, ShiftFrom: 1, ShiftTo: 0}
	if from == to {
		return e, nil
	}
	q.removeAt(from)
	q.insertAt(to, n)
	if from < to {
		e.ShiftFrom, e.ShiftTo, e.ShiftBy = from, to-1, -1
	} else {
		e.ShiftFrom, e.ShiftTo, e.ShiftBy = to+1, from, 1
	}
	return e, nil
}

func (q *Queue) remove(c Change) (Effect, error) {
	n, ok := q.byID[c.CallID]
	if !ok {
		return Effect{}, fmt.Errorf("%w: %s in %s", ErrUnknownCall, c.CallID, q.group)
	}
	from := rank(n)
	q.removeAt(from)
	delete(q.byID, c.CallID)
	return Effect{Op: OpRemove, CallID: c.CallID, From: from, ShiftFrom: from, ShiftTo: q.Len(), ShiftBy: -1}, nil
}

// target resolves the change's position against the highest allowed one.
func (q *Queue) target(c Change, highest int) (int, error) {
	if c.Position == 0 {
		return highest, nil
	}
	if c.Position > highest {
		return 0, fmt.Errorf("%w: %s %s to %d in %s of %d", ErrPosition, c.Op, c.CallID, c.Position, q.group, q.Len())
	}
	return c.Position, nil
}

// nextPrio is a xorshift64 step: treap priorities need only be well spread,
// and a fixed seed keeps the shape of a queue reproducible.
func (q *Queue) nextPrio() uint64 {
	q.rnd ^= q.rnd << 13
	q.rnd ^= q.rnd >> 7
	q.rnd ^= q.rnd << 17
	return q.rnd
}

func (n *node) session(pos int) Session { return n.s.withPosition(pos) }

func (s Session) withPosition(pos int) Session {
	s.QueuePosition = pos
	return s
}
