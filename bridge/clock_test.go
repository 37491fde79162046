package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/router"
)

// skewedSource is a router source whose clock runs 60 times as fast from a
// day ahead of the wall clock; it reports nothing else.
type skewedSource struct{ start, wall time.Time }

func (s skewedSource) RouterClock() (time.Time, float64) {
	return s.start.Add(60 * time.Since(s.wall)), 60
}

func (skewedSource) Run(ctx context.Context, _ router.Handler) error {
	<-ctx.Done()
	return nil
}

// TestRepliesCarryTheRouterClock: the replies to Initialize and Heartbeat
// give the router's time and rate, the wall clock's for a real router and
// the source's own otherwise, so that a client measures waits by it.
func TestRepliesCarryTheRouterClock(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := dialRaw(t, url)
	positions := false
	c.send(protocol.Request{Op: protocol.OpInitialize, SendQueuePositionUpdates: &positions})
	res := c.must().Result
	if res == nil || res.RouterTime == nil || res.RouterClockRate == nil || *res.RouterClockRate != 1 {
		t.Fatalf("Initialize result %+v", res)
	}
	if d := time.Since(*res.RouterTime); d < -time.Minute || d > time.Minute {
		t.Fatalf("a real router's time is %s off the wall clock", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.Adapter.Run(ctx, skewedSource{start: time.Now().Add(24 * time.Hour), wall: time.Now()})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the source's clock in a Heartbeat reply", func() bool {
		c.send(protocol.Request{Op: protocol.OpHeartbeat})
		r := c.must().Result
		return r != nil && r.RouterClockRate != nil && *r.RouterClockRate == 60 && r.RouterTime.After(time.Now().Add(23*time.Hour))
	})
}
