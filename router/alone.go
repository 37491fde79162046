package router

import (
	"context"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/subjects"
)

// stoppedReason is the status reason of an adapter that closed cleanly.
const stoppedReason = "adapter stopped"

// checkAlone refuses to start while another adapter feeds the bus: one
// that keeps rewriting the router status. A status written recently by an
// adapter that has since died (killed, say) is waited out, up to
// subjects.StatusLiveWithin: if nobody rewrites it meanwhile, the bus is
// free.
func (a *Adapter) checkAlone(ctx context.Context) error {
	if a.cfg.TakeOver {
		return nil
	}
	entry, st, err := subjects.ReadRouterStatus(ctx, a.status)
	if err != nil || entry == nil || st.Reason == stoppedReason || time.Since(st.Updated) >= subjects.StatusLiveWithin {
		return err
	}
	a.log.Warn().Str("adapter", st.Adapter).Msg("another adapter wrote the router status moments ago; waiting to see whether it is alive")
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	for time.Since(st.Updated) < subjects.StatusLiveWithin {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
		again, now, err := subjects.ReadRouterStatus(ctx, a.status)
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
