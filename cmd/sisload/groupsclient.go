package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// groupsTally counts what the groups run's clients saw. IDC is
// InitialDataComplete.
type groupsTally struct {
	index    map[string]int // every group's number (read-only)
	seen     []atomic.Bool  // by group number: IDC counted
	start    atomic.Pointer[time.Time]
	counting atomic.Bool // IDCs count until the deadline
	probe    atomic.Pointer[liveProbe]
	stopping atomic.Bool

	sent, replies, succeeded, notSucceeded atomic.Int64
	completed, closed                      atomic.Int64
	lastNs                                 atomic.Int64 // from start to the last counted IDC

	mu     sync.Mutex
	faults map[string]int64 // by fault type, "no reply", "connection closed"
	codes  map[int]int64    // closed clients by close code
}

// newGroupsTally numbers the groups.
func newGroupsTally(groups []string) *groupsTally {
	t := &groupsTally{index: make(map[string]int, len(groups)), seen: make([]atomic.Bool, len(groups)),
		faults: map[string]int64{}, codes: map[int]int64{}}
	for i, g := range groups {
		t.index[g] = i
	}
	return t
}

// onEvent counts a group's first IDC while counting, and hands events to
// the live check once it runs.
func (t *groupsTally) onEvent(m protocol.Message) {
	i, ok := t.index[m.ServiceGroupID]
	if p := t.probe.Load(); ok && p != nil {
		p.onEvent(i, m)
	}
	if m.Event != protocol.EventInitialDataComplete || !t.counting.Load() || !ok || t.seen[i].Swap(true) {
		return
	}
	t.completed.Add(1)
	d := int64(time.Since(*t.start.Load()))
	for {
		last := t.lastNs.Load()
		if d <= last || t.lastNs.CompareAndSwap(last, d) {
			return
		}
	}
}

// count counts a Subscribe's answer.
func (t *groupsTally) count(res *protocol.Result, err error) {
	var fault *protocol.Fault
	switch {
	case err == nil:
		t.replies.Add(1)
		if res != nil && res.Succeeded != nil && *res.Succeeded {
			t.succeeded.Add(1)
		} else {
			t.notSucceeded.Add(1)
		}
		return
	case t.stopping.Load():
		return
	case errors.As(err, &fault):
		t.replies.Add(1)
		t.fault(string(fault.Type))
	case errors.Is(err, client.ErrClosed):
		t.fault("connection closed")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		t.fault("no reply by the deadline")
	default:
		t.fault(err.Error())
	}
}

// fault counts one failed Subscribe by kind.
func (t *groupsTally) fault(kind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults[kind]++
}

// Faults returns the failed Subscribes by kind, and the closed clients by
// close code.
func (t *groupsTally) Faults() (map[string]int64, map[int]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.faults), maps.Clone(t.codes)
}

// groupsClients are the run's connections and their share of the groups:
// group i goes to client i mod n.
type groupsClients struct {
	t       *groupsTally
	clients []*client.Client
	shares  [][]string
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// openGroupsClients dials and initializes n clients.
func openGroupsClients(ctx context.Context, url string, format protocol.Format, n int, groups []string, t *groupsTally) (*groupsClients, error) {
	gc := &groupsClients{t: t, shares: make([][]string, n)}
	gc.ctx, gc.cancel = context.WithCancel(context.Background())
	for i, g := range groups {
		gc.shares[i%n] = append(gc.shares[i%n], g)
	}
	for i := range n {
		var self atomic.Pointer[client.Client]
		c, err := client.Dial(ctx, url, client.Options{Format: format, OnEvent: func(m protocol.Message) { gc.onEvent(&self, m) }})
		if err != nil {
			gc.Close()
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		self.Store(c)
		gc.clients = append(gc.clients, c)
		if err := c.Initialize(ctx, "", "", false); err != nil {
			gc.Close()
			return nil, fmt.Errorf("client %d: initialize: %w", i, err)
		}
		gc.wg.Add(1)
		go gc.wait(c)
	}
	return gc, nil
}

// onEvent counts a client's events and answers its KeepAlives.
func (gc *groupsClients) onEvent(self *atomic.Pointer[client.Client], m protocol.Message) {
	gc.t.onEvent(m)
	if c := self.Load(); c != nil && m.Event == protocol.EventKeepAlive {
		gc.wg.Add(1)
		go func() {
			defer gc.wg.Done()
			ctx, cancel := context.WithTimeout(gc.ctx, 30*time.Second)
			defer cancel()
			_ = c.Heartbeat(ctx)
		}()
	}
}

// wait notes how a client's connection ended.
func (gc *groupsClients) wait(c *client.Client) {
	defer gc.wg.Done()
	<-c.Done()
	if gc.t.stopping.Load() {
		return
	}
	code, _ := c.CloseCode()
	gc.t.mu.Lock()
	gc.t.codes[code]++
	gc.t.mu.Unlock()
	gc.t.closed.Add(1)
}

// subscribeAll sends every client's Subscribes (asking for statistics
// too when statistics), window of them in flight per client, until they
// are all answered or ctx ends; it returns at once.
func (gc *groupsClients) subscribeAll(ctx context.Context, window int, statistics bool) {
	now := time.Now()
	gc.t.start.Store(&now)
	gc.t.counting.Store(true)
	for i, c := range gc.clients {
		var next atomic.Int64
		share := gc.shares[i]
		for range min(window, len(share)) {
			gc.wg.Add(1)
			go func() {
				defer gc.wg.Done()
				for {
					k := int(next.Add(1) - 1)
					if k >= len(share) || ctx.Err() != nil {
						return
					}
					gc.t.sent.Add(1)
					req := protocol.Request{ServiceGroupID: share[k]}
					if statistics {
						req.Statistics = &statistics
					}
					res, err := c.Subscribe(ctx, req)
					gc.t.count(res, err)
				}
			}()
		}
	}
}

// Close closes every client and waits for their goroutines.
func (gc *groupsClients) Close() {
	gc.t.stopping.Store(true)
	gc.cancel()
	for _, c := range gc.clients {
		_ = c.Close()
	}
	gc.wg.Wait()
}
