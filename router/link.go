package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/subjects"
)

// LinkUp marks the router connected under a new epoch. With a state, the
// directory is brought up to date and every group reconciled with it first,
// so that gateways see a consistent router once it reports connected.
func (a *Adapter) LinkUp(ctx context.Context, state *State) error {
	if err := a.linkUp(ctx, state); err != nil {
		return err
	}
	return a.writeStatus(ctx)
}

// linkUp takes the lock, reconciles and sets the link up, then writes the
// directory entries that changed outside the lock.
func (a *Adapter) linkUp(ctx context.Context, state *State) error {
	a.mu.Lock()
	err := a.linkUpLocked(ctx, state)
	return errors.Join(err, a.unlockAndWriteDirectory(ctx))
}

// linkUpLocked reconciles with the router's state and sets the link up;
// the directory and the status are written after, outside the lock.
func (a *Adapter) linkUpLocked(ctx context.Context, state *State) error {
	if a.closed {
		return ErrClosed
	}
	if state != nil {
		if err := a.reconcileLocked(ctx, state); err != nil {
			return fmt.Errorf("link up: %w", err)
		}
	}
	epoch := a.setLinkLocked(subjects.RouterStatus{Connected: true, Epoch: a.link.Epoch + 1, Since: time.Now().UTC()})
	a.log.Info().Uint64("epoch", epoch).Msg("router link up")
	return nil
}

// setLinkLocked changes the link (to be written by writeStatus) and
// returns its epoch; a.mu is held (a.link changes only under both locks).
func (a *Adapter) setLinkLocked(st subjects.RouterStatus) uint64 {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	a.link = st
	a.linkVer++
	return st.Epoch
}

// LinkDown marks the router disconnected.
func (a *Adapter) LinkDown(ctx context.Context, reason string) {
	a.mu.Lock()
	if a.closed || !a.link.Connected {
		a.mu.Unlock()
		return
	}
	a.setLinkLocked(subjects.RouterStatus{Connected: false, Epoch: a.link.Epoch, Since: time.Now().UTC(), Reason: reason})
	a.mu.Unlock()
	a.log.Warn().Str("reason", reason).Msg("router link down")
	if err := a.writeStatus(ctx); err != nil {
		a.log.Error().Err(err).Msg("report router link down")
	}
}

// reconcileLocked applies a router's whole state: directory first, then
// every group's queue; groups the router no longer lists are removed
// (RemoveGroup).
func (a *Adapter) reconcileLocked(ctx context.Context, st *State) error {
	for _, t := range st.Tenants {
		if err := subjects.CheckID("TenantID", t.TenantID); err != nil {
			return err
		}
		if err := a.putTenantLocked(t); err != nil {
			return err
		}
	}
	listed := make(map[string]bool, len(st.Groups))
	for _, g := range st.Groups {
		if err := subjects.CheckID("ServiceGroupID", g.ServiceGroupID); err != nil {
			return err
		}
		if err := a.putGroupLocked(g); err != nil {
			return err
		}
		listed[g.ServiceGroupID] = true
	}
	for id, g := range a.groups {
		if !listed[id] {
			if err := a.removeGroupLocked(ctx, id); err != nil {
				return err
			}
			continue
		}
		if err := a.syncLocked(ctx, g, st.Queues[id]); err != nil {
			return err
		}
	}
	return nil
}

// refreshStatus rewrites the status so that gateways know the adapter lives.
// It takes neither the adapter's lock nor waits for the store: changes are
// applied while it waits for NATS, and it goes on while they wait for the
// store.
func (a *Adapter) refreshStatus() {
	a.linkMu.Lock()
	stopped := a.stopped
	a.linkMu.Unlock()
	if stopped {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.StatusInterval)
	defer cancel()
	if err := a.writeStatus(ctx); err != nil {
		a.rejects.Warn().Err(err).Msg("refresh router status")
	}
}

// writeStatus writes the current link status (publishedLocked), unless a
// newer one was written meanwhile: writes are serialized, and a late write
// never overwrites a newer link change.
func (a *Adapter) writeStatus(ctx context.Context) error {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	a.linkMu.Lock()
	st, ver := a.publishedLocked(a.link), a.linkVer
	a.linkMu.Unlock()
	if ver < a.statusWritten {
		return nil
	}
	if err := a.putStatus(ctx, st); err != nil {
		return err
	}
	a.statusWritten = ver
	return nil
}

func (a *Adapter) putStatus(ctx context.Context, st subjects.RouterStatus) error {
	if err := a.fence(); err != nil {
		return fmt.Errorf("put router status: %w", err)
	}
	st.Updated, st.Adapter, st.Clock = time.Now().UTC(), a.cfg.Name, a.routerClock()
	data, err := subjects.EncodeStatus(st)
	if err == nil {
		_, err = a.status.Put(ctx, subjects.RouterStatusKey, data)
	}
	if err != nil {
		return fmt.Errorf("put router status: %w", err)
	}
	return nil
}
