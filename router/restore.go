package router

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// restore rebuilds the adapter's state from the bus: the directory, each
// group's snapshot plus later events, and the router status epoch. The
// sequence of each group continues after its newest stored event.
func (a *Adapter) restore(ctx context.Context) error {
	d, err := subjects.ReadDirectory(ctx, a.dir)
	if err != nil {
		return err
	}
	a.tenants = d.Tenants
	for id, info := range d.Groups {
		g, err := a.loadGroup(ctx, info)
		if err != nil {
			return err
		}
		a.groups[id] = g
		a.stats.groups.Add(1)
		a.stats.queued.Add(int64(g.q.Len()))
	}
	for id, info := range d.Removed {
		if _, listed := d.Groups[id]; listed {
			continue // added again; the removed entry was still to be deleted
		}
		g, err := a.loadGroup(ctx, info)
		if err != nil {
			return err
		}
		a.removed[id] = g
	}
	if entry, err := a.status.Get(ctx, subjects.RouterStatusKey); err == nil {
		if st, err := subjects.DecodeStatus(entry.Value()); err == nil {
			a.link.Epoch = st.Epoch
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read router status: %w", err)
	}
	a.log.Info().Int("tenants", len(a.tenants)).Int("groups", len(a.groups)).Uint64("epoch", a.link.Epoch).Msg("state restored from the bus")
	return nil
}

func (a *Adapter) loadGroup(ctx context.Context, info subjects.Group) (*group, error) {
	st, err := a.hist.Load(ctx, info.TenantID, info.ServiceGroupID)
	switch {
	case errors.Is(err, subjects.ErrGap):
		// Events were lost before the newest stored one. Keep the state up to
		// the gap, go on after the newest sequence, and snapshot at once so
		// that readers start from there; reconciliation with the router
		// corrects the queue itself.
		a.log.Error().Err(err).Str("group", info.ServiceGroupID).Msg("group history has a gap")
		st.Seq = st.Newest
	case err != nil:
		return nil, fmt.Errorf("restore group %s: %w", info.ServiceGroupID, err)
	}
	g := newGroup(info)
	g.q, g.seq, g.snapSeq = st.Queue, st.Seq, st.SnapshotSeq
	// The next write follows the subject's last message, whatever the
	// state was rebuilt from (after a gap, that is past what was applied).
	g.setAcked(st.Seq, st.NewestStreamSeq)
	if g.q == nil {
		g.q = queue.New(info.ServiceGroupID)
	}
	return g, nil
}

func newGroup(info subjects.Group) *group {
	return &group{info: info, subject: subjects.Events(info.TenantID, info.ServiceGroupID), q: queue.New(info.ServiceGroupID)}
}
