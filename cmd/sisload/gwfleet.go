package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// gwFleet is a fleet of Session Information clients of our gateway, run as
// goroutines of this process.
type gwFleet struct {
	cfg fleetConfig
	tally
	times   *acceptTimes
	clients []*gwClient
	// groupIndex numbers every group of the fleet (read-only once started).
	groupIndex map[string]int
	ctx        context.Context // cancelled by Close: ends Heartbeats in flight
	cancel     context.CancelFunc
	wg         sync.WaitGroup // every client's reader and Heartbeat
}

// gwClient is one connection and how far it got.
type gwClient struct {
	c *client.Client
	p *progress
	// complete says which groups' initial data is complete; only the
	// client's reader goroutine touches it.
	complete  []bool
	completed int
	// times holds the acceptance times of each of p.groups.
	times []*groupTimes
	// slots maps the fleet's group index to p.groups' (-1: not one).
	slots []int16
}

// parseFormat returns the protocol format a flag names.
func parseFormat(s string) (protocol.Format, error) {
	switch s {
	case "", "json":
		return protocol.JSON, nil
	case "msgpack":
		return protocol.Msgpack, nil
	}
	return protocol.JSON, fmt.Errorf("format %q: want json or msgpack", s)
}

// startGatewayFleet connects every client, initializes it without queue
// positions, subscribes it to its groups and waits until each got
// InitialDataComplete for all of them.
func startGatewayFleet(ctx context.Context, cfg fleetConfig) (f *gwFleet, err error) {
	format, err := parseFormat(cfg.Format)
	if err != nil {
		return nil, err
	}
	f = &gwFleet{cfg: cfg, clients: make([]*gwClient, len(cfg.Assign)), groupIndex: map[string]int{}}
	for i, g := range cfg.groups() {
		f.groupIndex[g] = i
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	defer closeOnError(f.Close, &err)
	if f.times, err = watchAcceptTimes(cfg.NatsURL, cfg.groups()); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.Setup)
	defer cancel()
	err = forEachParallel(sctx, len(cfg.Assign), cfg.Parallel, func(ctx context.Context, i int) error {
		return f.connect(ctx, i, format)
	})
	if err != nil {
		return nil, fmt.Errorf("gateway clients: %w", err)
	}
	n := int64(len(f.clients))
	if err := waitUntil(sctx, cfg.Setup, func() bool { return f.tally.ready.Load()+f.tally.closed.Load() >= n }); err != nil {
		return nil, fmt.Errorf("gateway clients: %d of %d got all their initial data: %w", f.tally.ready.Load(), n, err)
	}
	if c := f.tally.closed.Load(); c > 0 {
		return nil, fmt.Errorf("gateway clients: %d closed while subscribing", c)
	}
	return f, nil
}

// connect dials client i, initializes it, starts its reader and subscribes
// it to its groups.
func (f *gwFleet) connect(ctx context.Context, i int, format protocol.Format) error {
	gc := &gwClient{p: newProgress(f.cfg.Assign[i])}
	gc.complete = make([]bool, len(gc.p.groups))
	gc.slots = make([]int16, len(f.groupIndex))
	for i := range gc.slots {
		gc.slots[i] = -1
	}
	for i, g := range gc.p.groups {
		gc.times = append(gc.times, f.times.group(g))
		gc.slots[f.groupIndex[g]] = int16(i)
	}
	c, err := client.Dial(ctx, f.cfg.URL, client.Options{Format: format, OnEvent: func(m protocol.Message) { f.onEvent(gc, m) }})
	if err != nil {
		return fmt.Errorf("client %d: %w", i, err)
	}
	gc.c = c
	f.clients[i] = gc
	if err := c.Initialize(ctx, "", "", false); err != nil {
		return fmt.Errorf("client %d: initialize: %w", i, err)
	}
	f.wg.Add(1)
	go f.wait(gc)
	for _, g := range gc.p.groups {
		req := protocol.Request{ServiceGroupID: g}
		if f.cfg.Statistics {
			req.Statistics = &f.cfg.Statistics
		}
		if _, err := c.Subscribe(ctx, req); err != nil {
			if code, why := c.CloseCode(); code != 0 {
				return fmt.Errorf("client %d: subscribe to %s: %w (closed %d %q)", i, g, err, code, why)
			}

			return fmt.Errorf("client %d: subscribe to %s: %w", i, g, err)
		}
	}
	return nil
}

// onEvent takes a client's events on its reader goroutine.
func (f *gwFleet) onEvent(gc *gwClient, m protocol.Message) {
	switch m.Event {
	case protocol.EventInitialDataComplete:
		if i, ok := f.slot(gc, m.ServiceGroupID); ok && !gc.complete[i] {
			gc.complete[i] = true
			gc.p.last[i].Store(m.Seq)
			if gc.completed++; gc.completed == len(gc.complete) {
				f.tally.ready.Add(1)
			}
		}
	case protocol.EventSessionsUpdated:
		if i, ok := f.slot(gc, m.ServiceGroupID); ok && gc.complete[i] {
			f.count(gc.times[i], m)
			gc.p.last[i].Store(m.Seq)
		}
	case protocol.EventRouterDisconnected:
		f.tally.routerDown.Add(1)
	case protocol.EventKeepAlive:
		f.tally.keepAlives.Add(1)
		f.wg.Add(1)
		go f.heartbeat(gc.c)
	}
}

// slot returns the index of group in gc's groups. The fleet's own map of
// every group is shared, so it stays in the cache; each client keeps only
// a slice from that index to its own.
func (f *gwFleet) slot(gc *gwClient, group string) (int, bool) {
	g, ok := f.groupIndex[group]
	if !ok || gc.slots[g] < 0 {
		return 0, false
	}
	return int(gc.slots[g]), true
}

// wait notes how a client's connection ended.
func (f *gwFleet) wait(gc *gwClient) {
	defer f.wg.Done()
	<-gc.c.Done()
	gc.p.closed.Store(true)
	if f.tally.stopping.Load() {
		return
	}
	code, _ := gc.c.CloseCode()
	f.tally.closedWith(code)
}

// count records a live SessionsUpdated. With queue positions off each
// update is one router change (Add for an enqueue, Remove for a removal),
// and the event's Seq is that of its last change: update i of n carries
// change Seq-(n-1-i), and its latency is measured from that change's
// acceptance time.
func (f *gwFleet) count(g *groupTimes, m protocol.Message) {
	if !f.tally.counting.Load() {
		return
	}
	n := uint64(len(m.SessionUpdates))
	if n == 0 || n > m.Seq {
		return
	}
	f.tally.deliveries.Add(int64(n))
	f.times.record(&f.tally.hist, g, m.Seq-n+1, m.Seq, time.Now())
}

// heartbeat answers a KeepAlive; it runs apart from the reader, which must
// go on taking events for the reply to get through.
func (f *gwFleet) heartbeat(c *client.Client) {
	defer f.wg.Done()
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	_ = c.Heartbeat(ctx)
}

// Finish drains and returns the counts.
func (f *gwFleet) Finish(ctx context.Context, final map[string]uint64, drain time.Duration) (fleetStats, error) {
	ps := make([]*progress, len(f.clients))
	for i, c := range f.clients {
		ps[i] = c.p
	}
	lagging := f.settle(ctx, ps, final, drain)
	untimed, undecoded := f.times.resolve(&f.tally.hist)
	f.tally.untimed.Add(untimed)
	f.tally.undecoded.Add(undecoded)
	st := f.tally.stats()
	st.Lagging = lagging
	return st, nil
}

// Close closes every client and waits for the readers and Heartbeats.
func (f *gwFleet) Close() {
	f.tally.stopping.Store(true)
	f.cancel()
	var wg sync.WaitGroup
	for _, c := range f.clients {
		if c != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.c.Close()
			}()
		}
	}
	wg.Wait()
	f.wg.Wait()
	if f.times != nil {
		f.times.close()
	}
}
