package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/subjects"
)

// natsFleet is a fleet of nats.go clients connected to nats-server's own
// WebSocket listener, each with a core subscription per group: what a user
// could run instead of the gateway.
type natsFleet struct {
	cfg fleetConfig
	tally
	clients []*natsClient
}

// natsClient is one connection, its subscriptions and how far it got.
type natsClient struct {
	nc   *nats.Conn
	subs []*nats.Subscription
	p    *progress
}

// startNATSFleet connects every client over WebSocket and subscribes it to
// its groups' event subjects.
func startNATSFleet(ctx context.Context, cfg fleetConfig) (f *natsFleet, err error) {
	f = &natsFleet{cfg: cfg, clients: make([]*natsClient, len(cfg.Assign))}
	defer closeOnError(f.Close, &err)
	sctx, cancel := context.WithTimeout(ctx, cfg.Setup)
	defer cancel()
	err = forEachParallel(sctx, len(cfg.Assign), cfg.Parallel, f.connect)
	if err != nil {
		return nil, fmt.Errorf("nats websocket clients: %w", err)
	}
	return f, nil
}

// connect opens client i and subscribes it; the subscriptions are in place
// at the server when it returns.
func (f *natsFleet) connect(ctx context.Context, i int) error {
	p := newProgress(f.cfg.Assign[i])
	nc, err := nats.Connect(f.cfg.URL, nats.Name(fmt.Sprintf("sisload-%d", i)), nats.NoReconnect(),
		nats.Timeout(30*time.Second), nats.ErrorHandler(f.onError), nats.ClosedHandler(func(*nats.Conn) { f.onClosed(p) }))
	if err != nil {
		return fmt.Errorf("client %d: connect %s: %w", i, f.cfg.URL, err)
	}
	c := &natsClient{nc: nc, p: p}
	f.clients[i] = c
	for j, g := range c.p.groups {
		sub, err := nc.Subscribe(peerSubject(f.cfg.Stored)(f.cfg.Tenant, g), func(m *nats.Msg) { f.onMsg(c.p, j, m) })
		if err != nil {
			return fmt.Errorf("client %d: subscribe to %s: %w", i, g, err)
		}
		c.subs = append(c.subs, sub)
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("client %d: flush subscriptions: %w", i, err)
	}
	return nil
}

// onMsg records one message: a message carries one change, or several
// consecutive changes of the group when the adapter had a backlog; each
// change is one delivery, its latency measured from its own Event.Time.
func (f *natsFleet) onMsg(p *progress, j int, m *nats.Msg) {
	if !f.tally.counting.Load() {
		return
	}
	now := time.Now()
	events, err := subjects.DecodeEvents(m.Data)
	if err != nil {
		f.tally.undecoded.Add(1)
		return
	}
	f.tally.deliveries.Add(int64(len(events)))
	for _, e := range events {
		f.tally.hist.Record(now.Sub(e.Time))
	}
	p.last[j].Store(events[len(events)-1].Seq)
}

// onError counts slow-consumer errors (messages dropped by nats.go).
func (f *natsFleet) onError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		f.tally.slow.Add(1)
	}
}

// onClosed counts connections that ended before the fleet closed them (the
// server closes a slow consumer).
func (f *natsFleet) onClosed(p *progress) {
	p.closed.Store(true)
	if !f.tally.stopping.Load() {
		f.tally.closed.Add(1)
	}
}

// Finish drains and returns the counts, with the messages nats.go dropped.
func (f *natsFleet) Finish(ctx context.Context, final map[string]uint64, drain time.Duration) (fleetStats, error) {
	ps := make([]*progress, len(f.clients))
	for i, c := range f.clients {
		ps[i] = c.p
	}
	lagging := f.settle(ctx, ps, final, drain)
	st := f.tally.stats()
	st.Lagging = lagging
	for _, c := range f.clients {
		for _, s := range c.subs {
			if n, err := s.Dropped(); err == nil {
				st.Dropped += int64(n)
			}
		}
	}
	return st, nil
}

// Close closes every connection; nats.go's Close waits for the
// subscriptions' delivery goroutines to be told to end.
func (f *natsFleet) Close() {
	f.tally.stopping.Store(true)
	var wg sync.WaitGroup
	for _, c := range f.clients {
		if c != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.nc.Close()
			}()
		}
	}
	wg.Wait()
}

// peerSubject is the subject the peers follow for a group's events.
func peerSubject(stored bool) func(tenant, group string) string {
	if stored {
		return subjects.Live
	}
	return subjects.Events
}
