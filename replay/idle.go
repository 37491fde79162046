package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
)

// LiveWithin is how recent a connected router status must be for CheckIdle
// to call the router live: gateways give a silent router up after 3 s.
const LiveWithin = 3 * time.Second

// CheckIdle returns an error wrapping ErrRouterLive when the bus's router
// status says a router is connected and was written within LiveWithin:
// another adapter is feeding the bus, and playing into it would fight it.
// A bus without a status bucket or key is idle.
func CheckIdle(ctx context.Context, js jetstream.JetStream) error {
	kv, err := js.KeyValue(ctx, subjects.BucketRouter)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", subjects.BucketRouter, err)
	}
	entry, st, err := subjects.ReadRouterStatus(ctx, kv)
	if err != nil || entry == nil {
		return err
	}
	if age := time.Since(st.Updated); st.Connected && age < LiveWithin {
		return fmt.Errorf("%w: adapter %q reports the router connected (epoch %d, written %s ago)",
			ErrRouterLive, st.Adapter, st.Epoch, age.Round(time.Millisecond))
	}
	return nil
}
