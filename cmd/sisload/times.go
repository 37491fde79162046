package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/subjects"
)

// acceptTimes learns when the adapter accepted each change, from a core
// NATS subscription on every group's events: the gateway's messages do not
// carry that time. A delivery seen before its time is known is kept aside
// and timed when the fleet finishes.
type acceptTimes struct {
	nc  *nats.Conn
	sub *nats.Subscription

	mu    sync.RWMutex
	times map[string]map[uint64]int64 // group → seq → Unix ns
	late  []lateDelivery
	bad   int64 // messages that could not be decoded
}

// lateDelivery is a delivery whose change's time was not known yet.
type lateDelivery struct {
	group string
	seq   uint64
	at    time.Time
}

// watchAcceptTimes subscribes to subjects.AllEvents on the NATS server at
// url.
func watchAcceptTimes(url string) (*acceptTimes, error) {
	t := &acceptTimes{times: map[string]map[uint64]int64{}}
	nc, err := nats.Connect(url, nats.Name("sisload-times"))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS for acceptance times: %w", err)
	}
	t.nc = nc
	if t.sub, err = nc.Subscribe(subjects.AllEvents, t.onEvent); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", subjects.AllEvents, err)
	}
	if err := t.sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, fmt.Errorf("pending limits: %w", err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", subjects.AllEvents, err)
	}
	return t, nil
}

// onEvent notes the time of each change a message carries (one, or several
// consecutive changes of a group when the adapter had a backlog).
func (t *acceptTimes) onEvent(m *nats.Msg) {
	events, err := subjects.DecodeEvents(m.Data)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.bad++
		return
	}
	for _, e := range events {
		g := t.times[e.Group]
		if g == nil {
			g = map[uint64]int64{}
			t.times[e.Group] = g
		}
		g[e.Seq] = e.Time.UnixNano()
	}
}

// record times one delivery of change seq of group, received at now, into
// h; if the change's time is not known yet it is kept for resolve.
func (t *acceptTimes) record(h *histogram, group string, seq uint64, now time.Time) {
	t.mu.RLock()
	ns, ok := t.times[group][seq]
	t.mu.RUnlock()
	if ok {
		h.Record(now.Sub(time.Unix(0, ns)))
		return
	}
	t.mu.Lock()
	t.late = append(t.late, lateDelivery{group: group, seq: seq, at: now})
	t.mu.Unlock()
}

// resolve times the deliveries kept aside; it returns how many stay
// untimed, and how many bus messages could not be decoded.
func (t *acceptTimes) resolve(h *histogram) (untimed, undecoded int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.late {
		if ns, ok := t.times[l.group][l.seq]; ok {
			h.Record(l.at.Sub(time.Unix(0, ns)))
		} else {
			untimed++
		}
	}
	t.late = nil
	return untimed, t.bad
}

// close ends the subscription.
func (t *acceptTimes) close() { t.nc.Close() }
