package router

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// stoppedReason is the status reason of an adapter that closed cleanly.
const stoppedReason = "adapter stopped"

// acquire takes the adapter lease for Open. A lease held by another is
// waited out for one lease time (its holder may have just died: nobody
// renews it, and the server drops it); past that the bus is taken:
// ErrAdapterLive. With Config.TakeOver the lease is taken whoever holds it.
func (a *Adapter) acquire(ctx context.Context) error {
	ttl := a.cfg.Bus.AdapterLeaseTTL
	if a.cfg.TakeOver {
		l, err := forceLease(ctx, a.leases, ttl, a.cfg.Name, a.writer)
		a.lease = l
		return err
	}
	deadline := time.Now().Add(ttl + time.Second)
	poll := time.NewTicker(ttl / 10)
	defer poll.Stop()
	var w leaseWatch
	for warned := false; ; {
		l, holder, err := tryLease(ctx, a.leases, ttl, a.cfg.Name, a.writer, &w)
		switch {
		case err != nil:
			return err
		case l != nil:
			a.lease = l
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%w: adapter %q holds its lease (since %s); one adapter writes to a bus: stop it first, or run this one as a standby",
				ErrAdapterLive, holder.Adapter, holder.Since.Format(time.RFC3339))
		case !warned:
			warned = true
			a.log.Warn().Str("adapter", holder.Adapter).Msg("another adapter holds the lease; waiting to see whether it is alive")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
}

// renewLease rewrites the lease; once it is lost, or has gone unrenewed
// for too long, the adapter stands down.
func (a *Adapter) renewLease() {
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.Bus.AdapterLeaseTTL/4)
	defer cancel()
	err := a.lease.renew(ctx)
	if errors.Is(err, ErrLeaseLost) {
		a.standDown(err)
		return
	}
	if err != nil && a.ctx.Err() == nil {
		a.rejects.Warn().Err(err).Msg("adapter lease not renewed; retrying")
	}
	if err := a.lease.valid(); err != nil {
		a.standDown(err)
	}
}

// fence returns nil while the adapter may write to the bus; once its lease
// may have lapsed it stands down and returns why.
func (a *Adapter) fence() error {
	if a.lease == nil {
		return nil
	}
	err := a.lease.valid()
	if err != nil {
		a.standDown(err)
	}
	return err
}

// standDown ends an adapter that lost its lease: it writes nothing more,
// and Run returns err.
func (a *Adapter) standDown(err error) {
	if a.Failed() == nil {
		a.log.Error().Err(err).Msg("standing down: another adapter may be writing to the bus now; nothing more is written")
	}
	a.fail(err)
}

// releaseLease gives the lease up (after Close, or a failed Open) so that
// a standby takes over at once.
func (a *Adapter) releaseLease(ctx context.Context) {
	if a.lease == nil {
		return
	}
	if err := a.lease.release(ctx); err != nil {
		a.log.Warn().Err(err).Msg("adapter lease not released; a standby takes over once it lapses")
	}
}
