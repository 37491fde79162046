package subjects

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Unanswered says err is a request to the bus that went unanswered: it
// timed out, or nothing answers its subject yet. A NATS cluster that is
// forming, or electing a JetStream leader after a node's loss, drops API
// requests or has no responder for them for a while; such a request may
// be made again.
func Unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrTimeout)
}

// Retry runs fn until it returns an error that is not Unanswered (or
// nil), pausing pause between attempts. The first attempt is bounded by
// timeout, each next one by twice the last, up to 8 times timeout: a lost
// request is made again soon, a slow one gets time.
// before, when set, is told of each unanswered attempt before the next.
// When ctx ends, Retry returns the last attempt's error joined to ctx's.
func Retry(ctx context.Context, timeout, pause time.Duration, fn func(context.Context) error, before func(attempt int, err error)) error {
	for attempt, d := 1, timeout; ; attempt, d = attempt+1, min(2*d, 8*timeout) {
		err := bounded(ctx, d, fn)
		if err == nil || !Unanswered(err) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		if before != nil {
			before(attempt, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// bounded runs fn with a context that ends after d.
func bounded(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return fn(actx)
}
