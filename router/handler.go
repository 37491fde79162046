package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Apply validates one change and, if accepted, publishes it.
func (a *Adapter) Apply(ctx context.Context, groupID string, c queue.Change) error {
	if err := subjects.CheckID("CallID", c.CallID); err != nil {
		return a.reject(groupID, c, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	g, ok := a.groups[groupID]
	if !ok {
		return a.reject(groupID, c, fmt.Errorf("%w: group %q", ErrUnknownGroup, groupID))
	}
	e, err := g.q.Apply(c)
	if err != nil {
		return a.reject(groupID, c, err)
	}
	a.stats.accepted.Add(1)
	if c.Op == queue.OpMove && e.From == e.To {
		return nil // a move to where the session already is changes nothing
	}
	return a.publishLocked(g, c.Resolved(e))
}

func (a *Adapter) reject(groupID string, c queue.Change, err error) error {
	a.stats.rejected.Add(1)
	a.rejects.Warn().Err(err).Str("group", groupID).Str("call", c.CallID).Stringer("op", c.Op).Msg("change rejected")
	return err
}

// publishLocked numbers one applied change and publishes it: at once when
// the publisher keeps up, or, while it has a backlog, together with the
// group's next changes (up to MaxBatch in one message). a.mu is held.
func (a *Adapter) publishLocked(g *group, c queue.Change) error {
	if err := a.numberLocked(g, c); err != nil {
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
// without the snapshot). a.mu is held.
func (a *Adapter) numberLocked(g *group, c queue.Change) error {
	g.seq++
	g.pending = append(g.pending, subjects.Event{Tenant: g.info.TenantID, Group: g.info.ServiceGroupID, Seq: g.seq,
		Time: time.Now().UTC(), Epoch: a.link.Epoch, Change: c})
	switch {
	case len(g.pending) >= a.cfg.MaxBatch || !a.pub.backlogged():
		if err := a.flushGroupLocked(g); err != nil {
			return err
		}
	case !g.dirty:
		g.dirty = true
		a.dirty = append(a.dirty, g)
		a.pub.wantDrain.Store(true)
	}
	return nil
}

// flushGroupLocked publishes the group's waiting changes as one message.
func (a *Adapter) flushGroupLocked(g *group) error {
	if len(g.pending) == 0 {
		return nil
	}
	first := &g.pending[0]
	data, err := subjects.EncodeEvents(g.pending)
	if err != nil {
		return fmt.Errorf("encode events %s from %d: %w", g.subject, first.Seq, err)
	}
	a.pub.send(g, g.seq, len(g.pending), g.subject, subjects.MsgID(first.Tenant, first.Group, first.Seq), data)
	clear(g.pending)
	g.pending = g.pending[:0]
	return nil
}

// flushDirtyLocked publishes what every group has waiting.
func (a *Adapter) flushDirtyLocked() {
	for _, g := range a.dirty {
		g.dirty = false
		if err := a.flushGroupLocked(g); err != nil {
			a.log.Error().Err(err).Str("group", g.info.ServiceGroupID).Msg("publish waiting changes")
		}
	}
	clear(a.dirty)
	a.dirty = a.dirty[:0]
	a.pub.wantDrain.Store(false)
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
				a.flushDirtyLocked()
			}
			a.mu.Unlock()
		}
	}
}

// Sync brings a group's queue to sessions by publishing the difference.
func (a *Adapter) Sync(ctx context.Context, groupID string, sessions []queue.Session) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	g, ok := a.groups[groupID]
	if !ok {
		return fmt.Errorf("sync: %w: group %q", ErrUnknownGroup, groupID)
	}
	return a.syncLocked(g, sessions)
}

func (a *Adapter) syncLocked(g *group, sessions []queue.Session) error {
	for _, s := range sessions {
		if err := subjects.CheckID("CallID", s.CallID); err != nil {
			return fmt.Errorf("sync %s: %w", g.info.ServiceGroupID, err)
		}
	}
	changes, _, err := g.q.Reconcile(sessions)
	if err != nil {
		return fmt.Errorf("sync %s: %w", g.info.ServiceGroupID, err)
	}
	// The queue is already at the end of the sync: a snapshot taken
	// between its changes would run ahead of its Seq.
	for _, c := range changes {
		a.stats.accepted.Add(1)
		if err := a.numberLocked(g, c); err != nil {
			return err
		}
	}
	a.snapshotIfDueLocked(g)
	if len(changes) > 0 {
		a.log.Info().Str("group", g.info.ServiceGroupID).Int("changes", len(changes)).Msg("group reconciled with the router")
	}
	return nil
}

// PutTenant adds or renames a tenant in the directory.
func (a *Adapter) PutTenant(ctx context.Context, t subjects.Tenant) error {
	if err := subjects.CheckID("TenantID", t.TenantID); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.putTenantLocked(ctx, t)
}

func (a *Adapter) putTenantLocked(ctx context.Context, t subjects.Tenant) error {
	if old, ok := a.tenants[t.TenantID]; ok && old == t {
		return nil
	}
	data, err := subjects.EncodeTenant(t)
	if err == nil {
		_, err = a.dir.Put(ctx, subjects.TenantKey(t.TenantID), data)
	}
	if err != nil {
		return fmt.Errorf("put tenant %s: %w", t.TenantID, err)
	}
	a.tenants[t.TenantID] = t
	return nil
}

// groupNamed returns the ID of another group of info's tenant whose name
// equals info's, ignoring case; "" if none. a.mu is held.
func (a *Adapter) groupNamed(info subjects.Group) string {
	name := strings.TrimSpace(info.Name)
	for id, g := range a.groups {
		if id != info.ServiceGroupID && g.info.TenantID == info.TenantID && strings.EqualFold(strings.TrimSpace(g.info.Name), name) {
			return id
		}
	}
	return ""
}

// PutGroup adds or renames a group in the directory. A group cannot move to
// another tenant: its history lives under the tenant's subjects.
func (a *Adapter) PutGroup(ctx context.Context, g subjects.Group) error {
	err := errors.Join(subjects.CheckID("ServiceGroupID", g.ServiceGroupID), subjects.CheckID("TenantID", g.TenantID))
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.putGroupLocked(ctx, g)
}

func (a *Adapter) putGroupLocked(ctx context.Context, info subjects.Group) error {
	if _, ok := a.tenants[info.TenantID]; !ok {
		return fmt.Errorf("put group %s: %w: tenant %q", info.ServiceGroupID, ErrUnknownGroup, info.TenantID)
	}
	old, exists := a.groups[info.ServiceGroupID]
	if other := a.groupNamed(info); other != "" {
		return fmt.Errorf("put group %s: %w: %q is the name of %s in tenant %s", info.ServiceGroupID, ErrDuplicateName, info.Name, other, info.TenantID)
	}
	switch {
	case exists && old.info == info:
		return nil
	case exists && old.info.TenantID != info.TenantID:
		return fmt.Errorf("put group %s: %w: it belongs to tenant %s, not %s", info.ServiceGroupID, queue.ErrInvalid, old.info.TenantID, info.TenantID)
	}
	data, err := subjects.EncodeGroup(info)
	if err == nil {
		_, err = a.dir.Put(ctx, subjects.GroupKey(info.ServiceGroupID), data)
	}
	if err != nil {
		return fmt.Errorf("put group %s: %w", info.ServiceGroupID, err)
	}
	if exists {
		old.info = info
	} else {
		a.groups[info.ServiceGroupID] = newGroup(info)
	}
	return nil
}
