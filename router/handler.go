package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Apply validates one change and, if accepted, publishes it.
func (a *Adapter) Apply(ctx context.Context, groupID string, c queue.Change) error {
	if err := subjects.CheckID("CallID", c.CallID); err != nil {
		return a.reject(groupID, c, err)
	}
	if c.Op == queue.OpEnqueue {
		if err := a.checkTime(c.CallID, c.Session.TimeEnteredQueue, a.routerNow()); err != nil {
			return a.reject(groupID, c, err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.usableLocked(); err != nil {
		return err
	}
	g, ok := a.groups[groupID]
	if !ok {
		return a.reject(groupID, c, fmt.Errorf("%w: group %q", ErrUnknownGroup, groupID))
	}
	before := g.q.Len()
	var leaving queue.Session
	if c.Op == queue.OpRemove {
		leaving, _ = g.q.Get(c.CallID)
	}
	e, err := g.q.Apply(c)
	if err != nil {
		return a.reject(groupID, c, err)
	}
	if c.Op == queue.OpRemove { // the event says whose wait ended, and how long it was
		c.Session = queue.Session{MediaType: leaving.MediaType, TimeEnteredQueue: leaving.TimeEnteredQueue}
	}
	a.stats.queued.Add(int64(g.q.Len() - before))
	a.stats.accepted.Add(1)
	if c.Op == queue.OpMove && e.From == e.To {
		return nil // a move to where the session already is changes nothing
	}
	return a.publishLocked(ctx, g, c.Resolved(e))
}

// usableLocked says why changes are refused: the adapter closed or failed.
func (a *Adapter) usableLocked() error {
	if err := a.Failed(); err != nil {
		return err
	}
	if a.closed {
		return ErrClosed
	}
	return nil
}

func (a *Adapter) reject(groupID string, c queue.Change, err error) error {
	a.stats.reject(err)
	a.rejects.Warn().Err(err).Str("group", groupID).Str("call", c.CallID).Stringer("op", c.Op).Msg("change rejected")
	return err
}

// publishLocked numbers one applied change and publishes it: at once when
// the publisher keeps up, or, while it has a backlog, together with the
// group's next changes (up to MaxBatch in one message). a.mu is held.
func (a *Adapter) publishLocked(ctx context.Context, g *group, c queue.Change) error {
	if err := a.numberLocked(ctx, g, c); err != nil {
		return err
	}
	a.snapshotIfDueLocked(g)
	return nil
}

// snapshotIfDueLocked snapshots g once SnapshotEvery changes have passed
// since its last snapshot.
func (a *Adapter) snapshotIfDueLocked(g *group) {
	if g.seq-g.snapSeq >= a.cfg.SnapshotEvery {
		a.snapshotLocked(g)
	}
}

// numberLocked numbers one applied change and publishes it (publishLocked
// without the snapshot). It goes out at once unless the publisher has a
// backlog or the group a message in flight; it is then held, to go out
// with the group's next changes. While a group holds Window changes, the
// next waits for the group's message in flight (the router is slowed to
// what the store takes). A change that ctx ends before it could be sent
// stays held. a.mu is held.
func (a *Adapter) numberLocked(ctx context.Context, g *group, c queue.Change) error {
	g.seq++
	g.pending = append(g.pending, subjects.Event{Tenant: g.info.TenantID, Group: g.info.ServiceGroupID, Seq: g.seq,
		Time: time.Now().UTC(), RouterTime: a.routerClockTime(), Epoch: a.link.Epoch, Change: c})
	busy := g.inFlight() != nil
	if busy || (a.pub.backlogged() && len(g.pending) < a.cfg.MaxBatch) {
		a.holdLocked(g)
		if len(g.pending) < a.cfg.Window {
			return nil
		}
	}
	err := a.sendGroupLocked(ctx, g)
	if err == nil || isStop(err) {
		return nil
	}
	return err
}

// isStop says err is a wait cut short, not a failure of the change.
func isStop(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrAborted)
}

// holdLocked lists g among the groups whose changes wait for the backlog
// to shrink. a.mu is held.
func (a *Adapter) holdLocked(g *group) {
	if !g.dirty {
		g.dirty = true
		a.dirty = append(a.dirty, g)
		a.pub.wantDrain.Store(true)
	}
}

// sendGroupLocked publishes the group's first MaxBatch waiting changes as
// one message, once the group's message in flight (if any) is settled; the
// group stays held while more wait. If ctx ends, or the adapter is
// aborted, first, the changes stay waiting and the group is held.
func (a *Adapter) sendGroupLocked(ctx context.Context, g *group) error {
	if len(g.pending) == 0 {
		return nil
	}
	if err := a.waitSettled(ctx, g); err != nil {
		a.holdLocked(g)
		return err
	}
	n := min(len(g.pending), a.cfg.MaxBatch)
	if g.snapNext != nil { // a message ends where a waiting snapshot does
		n = min(n, int(g.snapNext.Seq-g.pending[0].Seq)+1)
	}
	batch := g.pending[:n]
	first, last := &batch[0], batch[len(batch)-1].Seq
	data, err := subjects.EncodeEvents(batch)
	if err != nil {
		return fmt.Errorf("encode events %s from %d: %w", g.subject, first.Seq, err)
	}
	if err := a.pub.send(ctx, g, last, len(batch), g.subject, subjects.MsgID(a.writer, first.Tenant, first.Group, first.Seq), data); err != nil {
		a.holdLocked(g)
		return fmt.Errorf("publish events %s from %d: %w", g.subject, first.Seq, err)
	}
	rest := copy(g.pending, g.pending[len(batch):])
	clear(g.pending[rest:])
	g.pending = g.pending[:rest]
	if g.snapNext != nil && g.snapNext.Seq == last {
		a.markSnapshotLocked(g, g.snapNext)
		g.snapNext = nil
	}
	if rest > 0 {
		a.holdLocked(g)
	}
	return nil
}

// waitSettled waits until g has no message in flight.
func (a *Adapter) waitSettled(ctx context.Context, g *group) error {
	busy := g.inFlight()
	if busy == nil {
		return nil
	}
	select {
	case <-busy:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.ctx.Done():
		return ErrAborted
	}
}

// flushDirtyLocked publishes everything every group has waiting, waiting
// for the groups' messages in flight, until ctx ends (what is left stays
// held; ctx's error is returned).
func (a *Adapter) flushDirtyLocked(ctx context.Context) error {
	for len(a.dirty) > 0 && a.ctx.Err() == nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.sendHeldLocked(ctx, func(*group) bool { return true })
	}
	return nil
}

// sendHeldLocked publishes what the held groups that ready picks have
// waiting; the others stay held, and so do all once ctx ends.
func (a *Adapter) sendHeldLocked(ctx context.Context, ready func(*group) bool) {
	held := a.dirty
	a.dirty = nil
	a.pub.wantDrain.Store(false)
	for _, g := range held {
		g.dirty = false
		if !ready(g) {
			a.holdLocked(g)
			continue
		}
		if err := a.sendGroupLocked(ctx, g); err != nil && !isStop(err) {
			a.log.Error().Err(err).Str("group", g.info.ServiceGroupID).Msg("publish waiting changes")
		}
	}
}

// drainLoop publishes the changes held back during a backlog once the
// publisher has caught up.
func (a *Adapter) drainLoop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.pub.drained:
			a.mu.Lock()
			if !a.closed {
				a.sendHeldLocked(a.ctx, a.readyLocked)
			}
			a.mu.Unlock()
		}
	}
}

// readyLocked says a held group's changes go now: it has no message in
// flight, and the backlog has shrunk (or it has a full batch waiting).
func (a *Adapter) readyLocked(g *group) bool {
	if g.inFlight() != nil {
		return false
	}
	return len(g.pending) >= a.cfg.MaxBatch || len(a.pub.slots) < cap(a.pub.slots)/4
}

// Sync brings a group's queue to sessions by publishing the difference.
func (a *Adapter) Sync(ctx context.Context, groupID string, sessions []queue.Session) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.usableLocked(); err != nil {
		return err
	}
	g, ok := a.groups[groupID]
	if !ok {
		return fmt.Errorf("sync: %w: group %q", ErrUnknownGroup, groupID)
	}
	return a.syncLocked(ctx, g, sessions)
}

func (a *Adapter) syncLocked(ctx context.Context, g *group, sessions []queue.Session) error {
	now := a.routerNow()
	for _, s := range sessions {
		if err := errors.Join(subjects.CheckID("CallID", s.CallID), a.checkTime(s.CallID, s.TimeEnteredQueue, now)); err != nil {
			return fmt.Errorf("sync %s: %w", g.info.ServiceGroupID, err)
		}
	}
	before := g.q.Len()
	changes, _, err := g.q.Reconcile(sessions)
	if err != nil {
		return fmt.Errorf("sync %s: %w", g.info.ServiceGroupID, err)
	}
	a.stats.queued.Add(int64(g.q.Len() - before))
	// The queue is already at the end of the sync: a snapshot taken
	// between its changes would run ahead of its Seq.
	for _, c := range changes {
		a.stats.accepted.Add(1)
		if err := a.numberLocked(ctx, g, c); err != nil {
			return err
		}
	}
	a.snapshotIfDueLocked(g)
	if len(changes) > 0 {
		a.log.Info().Str("group", g.info.ServiceGroupID).Int("changes", len(changes)).Msg("group reconciled with the router")
	}
	return nil
}
