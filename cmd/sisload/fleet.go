package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
)

// The kinds of client a fleet runs.
const (
	kindGateway = "gateway" // client.Dial to our gateway
	kindNATS    = "nats"    // nats.go over nats-server's WebSocket listener
	// kindCentrifuge: raw protobuf clients of a centrifuge node (cfserver.go)
	kindCentrifuge = "centrifuge"
)

// fleetConfig says what clients a fleet runs; a child process gets it as
// JSON.
type fleetConfig struct {
	// Kind is kindGateway, kindNATS or kindCentrifuge.
	Kind string `json:"kind"`
	// URL is the gateway's WebSocket URL, the NATS server's ws:// URL or
	// the centrifuge node's.
	URL string `json:"url"`
	// NatsURL is the NATS client URL a gateway fleet subscribes to for the
	// acceptance time of each change.
	NatsURL string `json:"natsURL"`
	// Tenant is the groups' tenant (NATS subjects name it).
	Tenant string `json:"tenant"`
	// Assign lists each client's groups.
	Assign [][]string `json:"assign"`
	// Format is "json" or "msgpack" (gateway only).
	Format string `json:"format"`
	// Buffer is each gateway client's event buffer.
	Buffer int `json:"buffer"`
	// Parallel is how many clients connect at once.
	Parallel int `json:"parallel"`
	// Setup bounds connecting and subscribing every client.
	Setup time.Duration `json:"setup"`
	// Statistics makes each gateway client ask for QueueStatistics too.
	Statistics bool `json:"statistics"`
	// Stored has NATS clients follow the live (stored) subjects instead of
	// the events as published.
	Stored bool `json:"stored"`
}

// fleetStats is what a fleet counted over a measured window.
type fleetStats struct {
	// Deliveries counts changes delivered to clients (one change to one
	// client is one delivery).
	Deliveries int64 `json:"deliveries"`
	// Untimed counts deliveries whose acceptance time was never learnt.
	Untimed int64 `json:"untimed"`
	// Undecoded counts bus messages that could not be decoded.
	Undecoded int64 `json:"undecoded"`
	// RouterDisconnected counts RouterDisconnected events: the gateway
	// ended those sessions (it lost the router status).
	RouterDisconnected int64 `json:"routerDisconnected"`
	// Closed counts clients whose connection ended before the fleet closed
	// them; Closed4009 those the gateway closed as too slow.
	Closed     int64 `json:"closed"`
	Closed4009 int64 `json:"closed4009"`
	// CloseCodes counts the closed clients by WebSocket close code (0: the
	// connection ended without a close frame).
	CloseCodes map[int]int64 `json:"closeCodes,omitempty"`
	// Lagging counts live clients that had not received every change when
	// the drain deadline passed.
	Lagging int64 `json:"lagging"`
	// KeepAlives counts KeepAlive events (each answered with Heartbeat).
	KeepAlives int64 `json:"keepAlives"`
	// Dropped counts messages nats.go dropped (sub.Dropped), SlowConsumer
	// the slow-consumer errors it reported.
	Dropped      int64 `json:"dropped"`
	SlowConsumer int64 `json:"slowConsumer"`
	// Hist holds the latencies.
	Hist histSnapshot `json:"hist"`
	// CPU and Heap are the child process's CPU time over the window and its
	// heap at the end; zero for clients run in the measuring process.
	CPU  time.Duration `json:"cpu"`
	Heap uint64        `json:"heap"`
}

// add merges o into s.
func (s *fleetStats) add(o fleetStats) {
	s.Deliveries += o.Deliveries
	s.Untimed += o.Untimed
	s.Undecoded += o.Undecoded
	s.RouterDisconnected += o.RouterDisconnected
	s.Closed += o.Closed
	s.Closed4009 += o.Closed4009
	for code, n := range o.CloseCodes {
		if s.CloseCodes == nil {
			s.CloseCodes = map[int]int64{}
		}
		s.CloseCodes[code] += n
	}
	s.Lagging += o.Lagging
	s.KeepAlives += o.KeepAlives
	s.Dropped += o.Dropped
	s.SlowConsumer += o.SlowConsumer
	s.Hist.Merge(o.Hist)
	s.CPU += o.CPU
	s.Heap += o.Heap
}

// fleet is a set of connected, subscribed clients.
type fleet interface {
	// Begin starts counting deliveries.
	Begin() error
	// Progress returns the deliveries counted and the clients closed so far.
	Progress() (deliveries, closed int64)
	// Finish waits until every live client got each group's changes up to
	// final, or drain passed, and returns what the fleet counted.
	Finish(ctx context.Context, final map[string]uint64, drain time.Duration) (fleetStats, error)
	// Close closes every client and waits for the fleet's goroutines.
	Close()
}

// tally is what every client of a local fleet counts into.
type tally struct {
	counting   atomic.Bool
	stopping   atomic.Bool
	deliveries atomic.Int64
	untimed    atomic.Int64
	undecoded  atomic.Int64
	routerDown atomic.Int64
	closed     atomic.Int64
	closed4009 atomic.Int64
	keepAlives atomic.Int64
	slow       atomic.Int64
	ready      atomic.Int64
	hist       histogram

	mu    sync.Mutex
	codes map[int]int64
}

// Begin starts counting.
func (t *tally) Begin() error {
	t.counting.Store(true)
	return nil
}

// Progress returns the deliveries and closed clients so far.
func (t *tally) Progress() (int64, int64) { return t.deliveries.Load(), t.closed.Load() }

// settle waits until every client has caught up (or drain passes), stops
// counting, and returns how many clients still lag.
func (t *tally) settle(ctx context.Context, ps []*progress, final map[string]uint64, drain time.Duration) int64 {
	lagging := drainUntilCaughtUp(ctx, ps, final, drain)
	t.counting.Store(false)
	return lagging
}

// closedWith counts a client closed with a WebSocket close code.
func (t *tally) closedWith(code int) {
	t.closed.Add(1)
	if code == protocol.CloseSlowConsumer {
		t.closed4009.Add(1)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.codes == nil {
		t.codes = map[int]int64{}
	}
	t.codes[code]++
}

// stats returns the tally as fleetStats.
func (t *tally) stats() fleetStats {
	t.mu.Lock()
	codes := maps.Clone(t.codes)
	t.mu.Unlock()
	return fleetStats{CloseCodes: codes, Deliveries: t.deliveries.Load(), Untimed: t.untimed.Load(),
		Undecoded: t.undecoded.Load(), RouterDisconnected: t.routerDown.Load(), Closed: t.closed.Load(),
		Closed4009: t.closed4009.Load(), KeepAlives: t.keepAlives.Load(), SlowConsumer: t.slow.Load(), Hist: t.hist.Snapshot()}
}

// progress tracks how far one client got in each of its groups.
type progress struct {
	groups []string
	index  map[string]int
	last   []atomic.Uint64
	closed atomic.Bool
}

func newProgress(groups []string) *progress {
	p := &progress{groups: groups, index: make(map[string]int, len(groups)), last: make([]atomic.Uint64, len(groups))}
	for i, g := range groups {
		p.index[g] = i
	}
	return p
}

// caughtUp reports whether the client is closed or got every group up to
// final.
func (p *progress) caughtUp(final map[string]uint64) bool {
	if p.closed.Load() {
		return true
	}
	for i, g := range p.groups {
		if p.last[i].Load() < final[g] {
			return false
		}
	}
	return true
}

// drainUntilCaughtUp waits until every client caught up or drain passed; it
// returns how many had not.
func drainUntilCaughtUp(ctx context.Context, clients []*progress, final map[string]uint64, drain time.Duration) int64 {
	lagging := func() int64 {
		var n int64
		for _, p := range clients {
			if !p.caughtUp(final) {
				n++
			}
		}
		return n
	}
	_ = waitUntil(ctx, drain, func() bool { return lagging() == 0 })
	return lagging()
}

// forEachParallel calls fn for 0..n-1 with at most par calls at once and
// returns the first error; after an error no new call starts.
func forEachParallel(ctx context.Context, n, par int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  atomic.Int64
	)
	for range min(max(par, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		first = ctx.Err()
	}
	return first
}

// assignGroups picks, for each of n clients, k distinct groups at random.
func assignGroups(n, k int, groups []string, seed uint64) ([][]string, error) {
	if k > len(groups) || k < 1 {
		return nil, fmt.Errorf("groups per client %d: want 1 to the number of groups (%d)", k, len(groups))
	}
	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed))
	idx := make([]int, len(groups))
	for i := range idx {
		idx[i] = i
	}
	out := make([][]string, n)
	for c := range out {
		for j := range k { // partial Fisher-Yates: the first k are a random pick
			r := j + rnd.IntN(len(idx)-j)
			idx[j], idx[r] = idx[r], idx[j]
		}
		out[c] = make([]string, k)
		for j := range k {
			out[c][j] = groups[idx[j]]
		}
	}
	return out, nil
}

// subscribers counts each group's subscribers in an assignment.
func subscribers(assign [][]string) map[string]int {
	out := map[string]int{}
	for _, gs := range assign {
		for _, g := range gs {
			out[g]++
		}
	}
	return out
}

// multiFleet runs several fleets (child processes) as one.
type multiFleet []fleet

// Begin starts counting in every fleet.
func (m multiFleet) Begin() error {
	var errs []error
	for _, f := range m {
		errs = append(errs, f.Begin())
	}
	return errors.Join(errs...)
}

// Progress sums the fleets' progress.
func (m multiFleet) Progress() (deliveries, closed int64) {
	for _, f := range m {
		d, c := f.Progress()
		deliveries, closed = deliveries+d, closed+c
	}
	return deliveries, closed
}

// Finish finishes every fleet at once and merges their counts.
func (m multiFleet) Finish(ctx context.Context, final map[string]uint64, drain time.Duration) (fleetStats, error) {
	stats := make([]fleetStats, len(m))
	errs := make([]error, len(m))
	var wg sync.WaitGroup
	for i, f := range m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i], errs[i] = f.Finish(ctx, final, drain)
		}()
	}
	wg.Wait()
	var total fleetStats
	for _, s := range stats {
		total.add(s)
	}
	return total, errors.Join(errs...)
}

// Close closes every fleet.
func (m multiFleet) Close() {
	var wg sync.WaitGroup
	for _, f := range m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Close()
		}()
	}
	wg.Wait()
}

// groups lists every group some client of the fleet subscribes to.
func (cfg fleetConfig) groups() []string {
	seen := map[string]bool{}
	var out []string
	for _, gs := range cfg.Assign {
		for _, g := range gs {
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	return out
}
