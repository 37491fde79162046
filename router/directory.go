package router

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// dirPut is a directory entry changed in the adapter's state and still to
// be written to the directory bucket.
type dirPut struct {
	key, what string
	data      []byte // nil: the entry is deleted
}

// PutTenant adds or renames a tenant in the directory.
func (a *Adapter) PutTenant(ctx context.Context, t subjects.Tenant) error {
	if err := subjects.CheckID("TenantID", t.TenantID); err != nil {
		return err
	}
	a.mu.Lock()
	err := a.putTenantLocked(t)
	return errors.Join(err, a.unlockAndWriteDirectory(ctx))
}

func (a *Adapter) putTenantLocked(t subjects.Tenant) error {
	if old, ok := a.tenants[t.TenantID]; ok && old == t {
		return nil
	}
	data, err := subjects.EncodeTenant(t)
	if err != nil {
		return fmt.Errorf("put tenant %s: %w", t.TenantID, err)
	}
	a.tenants[t.TenantID] = t
	a.dirPending = append(a.dirPending, dirPut{key: subjects.TenantKey(t.TenantID), what: "tenant " + t.TenantID, data: data})
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
	err = a.putGroupLocked(g)
	return errors.Join(err, a.unlockAndWriteDirectory(ctx))
}

func (a *Adapter) putGroupLocked(info subjects.Group) error {
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
	if err != nil {
		return fmt.Errorf("put group %s: %w", info.ServiceGroupID, err)
	}
	switch {
	case exists:
		old.info = info
	case a.removed[info.ServiceGroupID] != nil: // added again: it goes on after its last Seq
		g := a.removed[info.ServiceGroupID]
		delete(a.removed, info.ServiceGroupID)
		g.info = info
		a.groups[info.ServiceGroupID] = g
		a.stats.groups.Add(1)
		a.dirPending = append(a.dirPending, dirPut{key: subjects.RemovedKey(info.ServiceGroupID), what: "removed group " + info.ServiceGroupID})
	default:
		a.groups[info.ServiceGroupID] = newGroup(info)
		a.stats.groups.Add(1)
	}
	a.dirPending = append(a.dirPending, dirPut{key: subjects.GroupKey(info.ServiceGroupID), what: "group " + info.ServiceGroupID, data: data})
	return nil
}

// RemoveGroup takes a group out of the directory, as a router does when a
// service group is deleted: every session still queued leaves with
// ServiceGroupClosed, then the group's directory entry is deleted
// (gateways end their subscriptions to it with ServiceGroupRemoved). Its
// history stays in the stream: a group added again with the same ID goes
// on from its last Seq.
func (a *Adapter) RemoveGroup(ctx context.Context, id string) error {
	a.mu.Lock()
	err := a.removeGroupLocked(ctx, id)
	return errors.Join(err, a.unlockAndWriteDirectory(ctx))
}

func (a *Adapter) removeGroupLocked(ctx context.Context, id string) error {
	if err := a.usableLocked(); err != nil {
		return err
	}
	g, ok := a.groups[id]
	if !ok {
		return fmt.Errorf("remove group: %w: %q", ErrUnknownGroup, id)
	}
	for _, s := range g.q.Sessions() {
		c := queue.Change{Op: queue.OpRemove, CallID: s.CallID, Cause: queue.CauseServiceGroupClosed}
		e, err := g.q.Apply(c)
		if err != nil {
			return fmt.Errorf("remove group %s: %w", id, err)
		}
		c.Session = queue.Session{MediaType: s.MediaType, TimeEnteredQueue: s.TimeEnteredQueue}
		a.stats.queued.Add(-1)
		a.stats.accepted.Add(1)
		if err := a.numberLocked(ctx, g, c.Resolved(e)); err != nil {
			return err
		}
	}
	data, err := subjects.EncodeGroup(g.info)
	if err != nil {
		return fmt.Errorf("remove group %s: %w", id, err)
	}
	delete(a.groups, id)
	a.removed[id] = g
	a.stats.groups.Add(-1)
	a.dirPending = append(a.dirPending,
		dirPut{key: subjects.RemovedKey(id), what: "removed group " + id, data: data},
		dirPut{key: subjects.GroupKey(id), what: "group " + id + " (removed)"})
	a.log.Info().Str("group", id).Msg("group removed from the directory")
	return nil
}

// unlockAndWriteDirectory releases a.mu and writes the directory entries
// changed under it, in order: changes go on being applied while the bucket
// answers. Entries not written stay queued; retryDirectory writes them
// later.
func (a *Adapter) unlockAndWriteDirectory(ctx context.Context) error {
	puts := a.dirPending
	a.dirPending = nil
	a.dirMu.Lock() // taken before a.mu is released: writes keep the order of the changes
	a.mu.Unlock()
	defer a.dirMu.Unlock()
	for i, p := range puts {
		err := a.fence()
		switch {
		case err == nil && p.data == nil:
			err = a.dir.Delete(ctx, p.key)
		case err == nil:
			_, err = a.dir.Put(ctx, p.key, p.data)
		}
		if err != nil {
			a.mu.Lock()
			a.dirPending = append(puts[i:len(puts):len(puts)], a.dirPending...)
			a.mu.Unlock()
			return fmt.Errorf("put %s in the directory (retried): %w", p.what, err)
		}
	}
	return nil
}

// retryDirectory writes the directory entries a failed write left queued.
func (a *Adapter) retryDirectory() {
	a.mu.Lock()
	if len(a.dirPending) == 0 {
		a.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.StatusInterval)
	defer cancel()
	if err := a.unlockAndWriteDirectory(ctx); err != nil {
		a.rejects.Warn().Err(err).Msg("directory not written yet")
	}
}
