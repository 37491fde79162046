package queue

import "fmt"

// Reconcile changes q into the queue target lists (in order), using ordinary
// changes: removes (cause CauseNone: the router did not say why) for sessions
// target lacks, then enqueues and moves, front to back. It returns the
// changes it applied, resolved, with their effects. target must not repeat a
// CallID; if it does, q is left untouched.
func (q *Queue) Reconcile(target []Session) ([]Change, []Effect, error) {
	want := make(map[string]struct{}, len(target))
	for _, s := range target {
		if _, dup := want[s.CallID]; dup || s.CallID == "" {
			return nil, nil, fmt.Errorf("%w: reconcile %s: CallID %q empty or repeated", ErrInvalid, q.group, s.CallID)
		}
		if err := s.check(s.CallID); err != nil {
			return nil, nil, fmt.Errorf("reconcile %s: %w", q.group, err)
		}
		want[s.CallID] = struct{}{}
	}
	var r reconciler
	for _, s := range q.Sessions() {
		if _, keep := want[s.CallID]; !keep {
			r.apply(q, Change{Op: OpRemove, CallID: s.CallID, Cause: CauseNone})
		}
	}
	for i, s := range target {
		pos := q.Position(s.CallID)
		switch {
		case pos == 0:
			r.apply(q, Change{Op: OpEnqueue, CallID: s.CallID, Position: i + 1, Session: s})
		case pos != i+1:
			r.apply(q, Change{Op: OpMove, CallID: s.CallID, Position: i + 1})
		}
	}
	return r.changes, r.effects, nil
}

type reconciler struct {
	changes []Change
	effects []Effect
}

// apply cannot fail: every change is built from the queue's own state.
func (r *reconciler) apply(q *Queue, c Change) {
	e, err := q.Apply(c)
	if err != nil {
		panic(fmt.Sprintf("queue: reconcile built an invalid change: %v", err))
	}
	r.changes = append(r.changes, c.Resolved(e))
	r.effects = append(r.effects, e)
}
