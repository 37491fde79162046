package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// cpuTime is this process's CPU time so far (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRateCap: 50 clients with position updates follow one group of
// about 200 sessions while the router makes 1,000 changes a second in it
// (a departure near the head and an arrival at the tail, or a move to the
// front: every one moves most of the queue); "capped" clients asked for
// MaxEventsPerSecond 1, "uncapped" ones for nothing. Each iteration is one
// second; "no-clients" is the same router with nobody following. It
// reports the process's CPU milliseconds a second (NATS, the adapter and
// the router's driving are in every case: the difference to no-clients is
// the gateway and the clients' reading) and the events a client got a
// second.
//
//	go test -run '^$' -bench RateCap -benchtime 10x ./bridge/
func BenchmarkRateCap(b *testing.B) {
	for _, c := range []struct {
		name               string
		clients, perSecond int
	}{{"no-clients", 0, 0}, {"uncapped", 50, 0}, {"capped", 50, 1}} {
		b.Run(c.name, func(b *testing.B) { benchRateCap(b, c.clients, c.perSecond) })
	}
}

func benchRateCap(b *testing.B, clients, perSecond int) {
	const depth, rate = 200, 1000
	e := &env{Env: stacktest.New(b)}
	for i := range depth {
		e.enqueueOne("acme-sales", i)
	}
	_, url := e.gateway(bridge.Config{}, nil)
	var events atomic.Int64
	for range clients {
		rawFollower(b, url, perSecond, &events)
	}
	next := depth
	step := func(i int) {
		sessions := e.Queues["acme-sales"].Sessions()
		if i%2 == 0 {
			e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: sessions[len(sessions)-1].CallID, Position: 1})
			return
		}
		e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: sessions[1].CallID, Cause: queue.CauseSessionAllocatedToAgent})
		e.enqueueOne("acme-sales", next)
		next++
	}
	b.ResetTimer()
	cpu0, ev0 := cpuTime(b), events.Load()
	for range b.N {
		tick := time.NewTicker(10 * time.Millisecond)
		for i := 0; i < rate; i += rate / 100 {
			<-tick.C
			for j := range rate / 100 {
				step(i + j)
			}
		}
		tick.Stop()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/n, "cpu-ms/s")
	b.ReportMetric(float64(events.Load()-ev0)/n/float64(max(clients, 1)), "events/s/client")
	b.ReportMetric(0, "ns/op")
}

// enqueueOne adds session i at the tail of a group.
func (e *env) enqueueOne(group string, i int) {
	e.Apply(group, queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("s%d", i), Session: queue.Session{MediaType: queue.MediaVoice,
		TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), CustomerInformation: "+442079460123"}})
}

// rawFollower is a client that initializes (capped at perSecond when
// positive), subscribes to acme-sales with position updates and counts
// the SessionsUpdated it reads, decoding nothing else.
func rawFollower(b *testing.B, url string, perSecond int, events *atomic.Int64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{protocol.SubprotocolJSON}}.Dial(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	yes := true
	init := fmt.Sprintf(`{"op":"Initialize","id":1,"SendQueuePositionUpdates":%v}`, yes)
	if perSecond > 0 {
		init = fmt.Sprintf(`{"op":"Initialize","id":1,"SendQueuePositionUpdates":true,"MaxEventsPerSecond":%d}`, perSecond)
	}
	for _, req := range []string{init, `{"op":"Subscribe","id":2,"ServiceGroupID":"acme-sales"}`} {
		if err := wsutil.WriteClientMessage(conn, ws.OpText, []byte(req)); err != nil {
			b.Fatal(err)
		}
	}
	go func() {
		for {
			data, err := wsutil.ReadServerText(conn)
			if err != nil {
				return
			}
			if bytes.HasPrefix(data, []byte(`{"event":"SessionsUpdated"`)) {
				events.Add(1)
			}
		}
	}()
}
