package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// herdConfig says what the herd's clients do; a child process gets it as
// JSON.
type herdConfig struct {
	// URL is the gateway's WebSocket URL, Group the group they subscribe to.
	URL   string `json:"url"`
	Group string `json:"group"`
	// Clients is how many connect; Sessions how many Adds each expects.
	Clients  int `json:"clients"`
	Sessions int `json:"sessions"`
	// Format is "json" or "msgpack".
	Format string `json:"format"`
	// Setup bounds connecting and initializing every client; Deadline
	// bounds the herd, from the Subscribes on.
	Setup    time.Duration `json:"setup"`
	Deadline time.Duration `json:"deadline"`
}

// herdOutcome is what the herd's clients saw, from the Subscribes on.
type herdOutcome struct {
	Clients int `json:"clients"`
	// Completed got InitialDataComplete; Incomplete of them had not
	// received exactly Sessions Adds before it.
	Completed  int64 `json:"completed"`
	Incomplete int64 `json:"incomplete"`
	// Closed ended before InitialDataComplete, by close code in Codes (0:
	// no close frame); ClosedAfter ended after it (before the tool closed
	// them).
	Closed      int64         `json:"closed"`
	Codes       map[int]int64 `json:"codes,omitempty"`
	ClosedAfter int64         `json:"closedAfter"`
	// Faults counts Subscribe faults by type ("no reply" when none came by
	// the deadline).
	Faults map[string]int64 `json:"faults,omitempty"`
	// Last is the time from the Subscribes to the last InitialDataComplete,
	// P50 to the median one.
	Last time.Duration `json:"lastNs"`
	P50  time.Duration `json:"p50Ns"`
	// TimedOut is set when the deadline passed with clients still waiting.
	TimedOut bool `json:"timedOut"`
}

// herdClients holds the herd's connections, as goroutines of this process.
type herdClients struct {
	cfg       herdConfig
	format    protocol.Format
	clients   []*herdClient
	start     atomic.Pointer[time.Time] // set by Go before any Subscribe
	completed atomic.Int64
	closed    atomic.Int64
	ended     atomic.Int64 // completed + closed
	stopping  atomic.Bool
	settled   chan struct{} // closed when every client completed or closed
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu          sync.Mutex // guards the four below
	times       []time.Duration
	codes       map[int]int64
	faults      map[string]int64
	incomplete  int64
	closedAfter int64
}

// herdClient is one connection of the herd.
type herdClient struct {
	c *client.Client
	// adds counts the Adds received before InitialDataComplete (reader
	// goroutine only).
	adds int
	// done: completed or closed, counted once.
	done      atomic.Bool
	completed atomic.Bool
}

// openHerd connects and initializes every client of cfg.
func openHerd(ctx context.Context, cfg herdConfig) (h *herdClients, err error) {
	h = &herdClients{cfg: cfg, clients: make([]*herdClient, cfg.Clients), settled: make(chan struct{}),
		codes: map[int]int64{}, faults: map[string]int64{}}
	if h.format, err = parseFormat(cfg.Format); err != nil {
		return nil, err
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	defer closeOnError(h.Close, &err)
	sctx, cancel := context.WithTimeout(ctx, cfg.Setup)
	defer cancel()
	if err := forEachParallel(sctx, cfg.Clients, 64, h.open); err != nil {
		return nil, fmt.Errorf("herd clients: %w", err)
	}
	return h, nil
}

// open dials and initializes client i and starts watching its end.
func (h *herdClients) open(ctx context.Context, i int) error {
	hc := &herdClient{}
	c, err := client.Dial(ctx, h.cfg.URL, client.Options{Format: h.format, OnEvent: func(m protocol.Message) { h.onEvent(hc, m) }})
	if err != nil {
		return fmt.Errorf("client %d: %w", i, err)
	}
	hc.c = c
	h.mu.Lock()
	h.clients[i] = hc
	h.mu.Unlock()
	if err := c.Initialize(ctx, "", "", false); err != nil {
		return fmt.Errorf("client %d: initialize: %w", i, err)
	}
	h.wg.Add(1)
	go h.wait(hc)
	return nil
}

// onEvent takes a client's events on its reader goroutine.
func (h *herdClients) onEvent(hc *herdClient, m protocol.Message) {
	switch m.Event {
	case protocol.EventSessionsUpdated:
		if m.ServiceGroupID == h.cfg.Group && !hc.completed.Load() {
			hc.adds += len(m.SessionUpdates)
		}
	case protocol.EventInitialDataComplete:
		if m.ServiceGroupID != h.cfg.Group || !hc.done.CompareAndSwap(false, true) {
			return
		}
		hc.completed.Store(true)
		h.mu.Lock()
		h.times = append(h.times, time.Since(*h.start.Load()))
		if hc.adds != h.cfg.Sessions {
			h.incomplete++
		}
		h.mu.Unlock()
		h.settle(&h.completed)
	case protocol.EventKeepAlive:
		h.wg.Add(1)
		go h.heartbeat(hc.c)
	}
}

// settle counts a client that completed or closed, and closes settled
// when it is the last.
func (h *herdClients) settle(n *atomic.Int64) {
	n.Add(1)
	if h.ended.Add(1) == int64(h.cfg.Clients) {
		close(h.settled)
	}
}

// heartbeat answers a KeepAlive off the reader goroutine.
func (h *herdClients) heartbeat(c *client.Client) {
	defer h.wg.Done()
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	_ = c.Heartbeat(ctx)
}

// wait notes how a client's connection ended.
func (h *herdClients) wait(hc *herdClient) {
	defer h.wg.Done()
	<-hc.c.Done()
	if h.stopping.Load() {
		return
	}
	if !hc.done.CompareAndSwap(false, true) {
		h.mu.Lock()
		h.closedAfter++
		h.mu.Unlock()
		return
	}
	code, _ := hc.c.CloseCode()
	h.mu.Lock()
	h.codes[code]++
	h.mu.Unlock()
	h.settle(&h.closed)
}

// Go has every client Subscribe at once: each request goes from its own
// goroutine, all released together.
func (h *herdClients) Go() error {
	gate := make(chan struct{})
	for _, hc := range h.clients {
		h.wg.Add(1)
		go h.subscribe(hc, gate)
	}
	now := time.Now()
	h.start.Store(&now)
	close(gate)
	return nil
}

// subscribe sends one client's Subscribe once the gate opens and counts
// a fault.
func (h *herdClients) subscribe(hc *herdClient, gate <-chan struct{}) {
	defer h.wg.Done()
	<-gate
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.Deadline)
	defer cancel()
	_, err := hc.c.Subscribe(ctx, protocol.Request{ServiceGroupID: h.cfg.Group})
	var fault *protocol.Fault
	switch {
	case err == nil, errors.Is(err, client.ErrClosed), h.stopping.Load():
		return
	case errors.As(err, &fault):
		h.countFault(string(fault.Type))
	case errors.Is(err, context.DeadlineExceeded):
		h.countFault("no reply")
	default:
		h.countFault(err.Error())
	}
}

// countFault counts a Subscribe fault by type.
func (h *herdClients) countFault(kind string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults[kind]++
}

// Progress returns how many clients completed and how many closed so far.
func (h *herdClients) Progress() (int64, int64) { return h.completed.Load(), h.closed.Load() }

// Outcome waits until every client completed or closed, or the deadline
// passed since Go, and says what they saw.
func (h *herdClients) Outcome(ctx context.Context) (herdOutcome, error) {
	t := time.NewTimer(time.Until(h.start.Load().Add(h.cfg.Deadline)))
	defer t.Stop()
	timedOut := false
	select {
	case <-h.settled:
	case <-t.C:
		timedOut = true
	case <-ctx.Done():
		return herdOutcome{}, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	o := herdOutcome{Clients: h.cfg.Clients, Completed: h.completed.Load(), Incomplete: h.incomplete, Closed: h.closed.Load(),
		Codes: maps.Clone(h.codes), ClosedAfter: h.closedAfter, Faults: maps.Clone(h.faults), TimedOut: timedOut}
	if len(h.times) > 0 {
		sorted := slices.Sorted(slices.Values(h.times))
		o.Last, o.P50 = sorted[len(sorted)-1], sorted[len(sorted)/2]
	}
	return o, nil
}

// Close closes every client and waits for their goroutines.
func (h *herdClients) Close() {
	h.stopping.Store(true)
	h.cancel()
	var wg sync.WaitGroup
	h.mu.Lock()
	clients := slices.Clone(h.clients)
	h.mu.Unlock()
	for _, hc := range clients {
		if hc != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = hc.c.Close()
			}()
		}
	}
	wg.Wait()
	h.wg.Wait()
}
