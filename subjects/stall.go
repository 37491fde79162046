package subjects

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StallChecks is how many checks, a second apart, a follower of the events
// stream may stand still while the stream moves on before WatchStall calls
// it stalled.
const StallChecks = 3

// WatchStall watches a follower of stream until ctx ends: every second it
// compares last() (the stream sequence the follower applied last) with the
// stream's; when the stream has moved past it and it has not moved for
// StallChecks checks, it calls stalled (with both sequences) and watches
// on. An ordered consumer reading through a NATS node that went away can
// stall so without reporting an error; stalled typically stops it, for
// one from last()+1.
func WatchStall(ctx context.Context, stream jetstream.Stream, last func() uint64, stalled func(applied, stored uint64)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	seen, still := last(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := stream.Info(ictx)
		cancel()
		now := last()
		if err != nil || now != seen || info.State.LastSeq <= now {
			seen, still = now, 0
			continue
		}
		if still++; still >= StallChecks {
			stalled(now, info.State.LastSeq)
			still = 0
		}
	}
}
