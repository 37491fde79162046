package router

import (
	"context"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// LinkUp marks the router connected under a new epoch. With a state, the
// directory is brought up to date and every group reconciled with it first,
// so that gateways see a consistent router once it reports connected.
func (a *Adapter) LinkUp(ctx context.Context, state *State) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if state != nil {
		if err := a.reconcileLocked(ctx, state); err != nil {
			return fmt.Errorf("link up: %w", err)
		}
	}
	a.link = subjects.RouterStatus{Connected: true, Epoch: a.link.Epoch + 1, Since: time.Now().UTC()}
	a.log.Info().Uint64("epoch", a.link.Epoch).Msg("router link up")
	return a.putStatusLocked(ctx)
}

// LinkDown marks the router disconnected.
func (a *Adapter) LinkDown(ctx context.Context, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || !a.link.Connected {
		return
	}
	a.link = subjects.RouterStatus{Connected: false, Epoch: a.link.Epoch, Since: time.Now().UTC(), Reason: reason}
	a.log.Warn().Str("reason", reason).Msg("router link down")
	if err := a.putStatusLocked(ctx); err != nil {
		a.log.Error().Err(err).Msg("report router link down")
	}
}

// reconcileLocked applies a router's whole state: directory first, then
// every group's queue; groups the router no longer lists are emptied.
func (a *Adapter) reconcileLocked(ctx context.Context, st *State) error {
	for _, t := range st.Tenants {
		if err := subjects.CheckID("TenantID", t.TenantID); err != nil {
			return err
		}
		if err := a.putTenantLocked(ctx, t); err != nil {
			return err
		}
	}
	listed := make(map[string]bool, len(st.Groups))
	for _, g := range st.Groups {
		if err := subjects.CheckID("ServiceGroupID", g.ServiceGroupID); err != nil {
			return err
		}
		if err := a.putGroupLocked(ctx, g); err != nil {
			return err
		}
		listed[g.ServiceGroupID] = true
	}
	for id, g := range a.groups {
		var sessions []queue.Session
		if listed[id] {
			sessions = st.Queues[id]
		}
		if err := a.syncLocked(g, sessions); err != nil {
			return err
		}
	}
	return nil
}

// refreshStatus rewrites the status so that gateways know the adapter lives.
func (a *Adapter) refreshStatus() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.StatusInterval)
	defer cancel()
	if err := a.putStatusLocked(ctx); err != nil {
		a.rejects.Warn().Err(err).Msg("refresh router status")
	}
}

func (a *Adapter) putStatusLocked(ctx context.Context) error { return a.putStatus(ctx, a.link) }

func (a *Adapter) putStatus(ctx context.Context, st subjects.RouterStatus) error {
	st.Updated, st.Adapter = time.Now().UTC(), a.cfg.Name
	data, err := subjects.EncodeStatus(st)
	if err == nil {
		_, err = a.status.Put(ctx, subjects.RouterStatusKey, data)
	}
	if err != nil {
		return fmt.Errorf("put router status: %w", err)
	}
	return nil
}
