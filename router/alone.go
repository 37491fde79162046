package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
)

// LiveWithin is how recently another adapter must have written the router
// status for it to count as alive: gateways give up on a silent router
// after as long (3 s).
const LiveWithin = 3 * time.Second

// stoppedReason is the status reason of an adapter that closed cleanly.
const stoppedReason = "adapter stopped"

// checkAlone refuses to start while another adapter feeds the bus: one
// that keeps rewriting the router status. A status written recently by an
// adapter that has since died (killed, say) is waited out, up to
// LiveWithin: if nobody rewrites it meanwhile, the bus is free.
func (a *Adapter) checkAlone(ctx context.Context) error {
	if a.cfg.TakeOver {
		return nil
	}
	entry, st, err := readRouterStatus(ctx, a.status)
	if err != nil || entry == nil || st.Reason == stoppedReason || time.Since(st.Updated) >= LiveWithin {
		return err
	}
	a.log.Warn().Str("adapter", st.Adapter).Msg("another adapter wrote the router status moments ago; waiting to see whether it is alive")
	for wait := time.Until(st.Updated.Add(LiveWithin)); wait > 0; wait = time.Until(st.Updated.Add(LiveWithin)) {
		if !sleepCtx(ctx, min(wait, 200*time.Millisecond)) {
			return ctx.Err()
		}
		again, now, err := readRouterStatus(ctx, a.status)
		if err != nil {
			return err
		}
		if again != nil && again.Revision() != entry.Revision() && now.Reason != stoppedReason {
			return fmt.Errorf("%w: adapter %q keeps the router status current (epoch %d); one adapter serves a bus: stop it first",
				ErrAdapterLive, now.Adapter, now.Epoch)
		}
	}
	return nil
}

// readRouterStatus reads the router status; nil when there is none.
func readRouterStatus(ctx context.Context, kv jetstream.KeyValue) (jetstream.KeyValueEntry, subjects.RouterStatus, error) {
	entry, err := kv.Get(ctx, subjects.RouterStatusKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, subjects.RouterStatus{}, nil
	}
	if err != nil {
		return nil, subjects.RouterStatus{}, fmt.Errorf("read router status: %w", err)
	}
	st, err := subjects.DecodeStatus(entry.Value())
	if err != nil {
		return nil, subjects.RouterStatus{}, fmt.Errorf("read router status: %w", err)
	}
	return entry, st, nil
}

// sleepCtx waits d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
