// Package seats counts license seats cluster-wide with leases in a NATS
// key-value bucket (subjects.BucketSeats), so that every gateway sharing one
// NATS cluster draws from one license count and the seats of a gateway that
// died come back by themselves.
//
// A seat is a slot key "slot.<i>", i in [0, Seats). Acquire takes a slot
// with kv.Create (atomic: one winner per free slot). The holder rewrites its
// leases every RenewEvery with kv.Update at the revision it last wrote; the
// bucket's TTL (LeaseTTL) drops a lease nobody rewrote, and the server's
// marker tells every watching gateway. Release purges the slot at once. Each
// pool keeps an eventually consistent picture of the taken slots from a
// kv.Watch, so Acquire tries a slot believed free first and answers
// ErrNoSeat without a storm of round trips. See docs/seats.md.
package seats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

const (
	keyPrefix = "slot."
	// verifyProbes is how many Create attempts Acquire makes on slots its
	// picture says are taken before it answers ErrNoSeat.
	verifyProbes = 2
	// maxConflicts bounds the slots one Acquire tries that turn out taken
	// although the picture said free.
	maxConflicts = 32
	// probeInterval is the least time between two such checks of one pool:
	// a flood of Initialize on a full license costs no round trip.
	probeInterval = 100 * time.Millisecond
	// renewParallel bounds the renewals in flight at once.
	renewParallel = 16
)

// lease is the value of a taken slot.
type lease struct {
	Holder   string    `json:"holder"`
	Session  string    `json:"session"`
	Acquired time.Time `json:"acquired"`
}

// slotState is the pool's picture of one slot.
type slotState struct {
	taken    bool
	inflight bool      // a local Acquire is creating it
	rev      uint64    // latest revision known
	seen     time.Time // when the picture last heard of the slot
}

// Pool hands out license seats counted cluster-wide. Safe for concurrent
// use. Create it with New and stop it with Close.
type Pool struct {
	kv  jetstream.KeyValue
	log zerolog.Logger
	cfg Config

	cancel  context.CancelFunc
	wg      sync.WaitGroup // the pool's goroutines
	ready   chan struct{}  // closed when the picture is loaded or start failed
	closing chan struct{}  // closed by Close
	done    chan struct{}  // closed when the goroutines have ended
	restart chan struct{}  // asks the watch to start over

	acquiring sync.WaitGroup // Acquire calls in flight

	mu           sync.Mutex
	closed       bool
	isReady      bool
	startErr     error
	slots        []slotState
	free         []int   // slots believed free, not in flight
	freePos      []int32 // index of a slot in free, or -1
	taken        int
	held         map[int]*Seat
	bySession    map[string]*Seat
	acquiringFor map[string]bool // sessions with an Acquire in flight
	lastRestart  time.Time
	lastProbe    time.Time
}

// New starts a pool on the seat bucket kv (created with BucketConfig). It
// does not block: the pool loads its picture of the bucket in the
// background, and Acquire waits for it.
func New(kv jetstream.KeyValue, log zerolog.Logger, cfg Config) (*Pool, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("seats: config: %w", err)
	}
	if kv == nil {
		return nil, errors.New("seats: no key-value bucket")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		kv:           kv,
		log:          log.With().Str("component", "seats").Str("holder", cfg.Holder).Logger(),
		cfg:          cfg,
		cancel:       cancel,
		ready:        make(chan struct{}),
		closing:      make(chan struct{}),
		done:         make(chan struct{}),
		restart:      make(chan struct{}, 1),
		slots:        make([]slotState, cfg.Seats),
		free:         make([]int, 0, cfg.Seats),
		freePos:      make([]int32, cfg.Seats),
		held:         make(map[int]*Seat),
		bySession:    make(map[string]*Seat),
		acquiringFor: make(map[string]bool),
	}
	// Until the picture is loaded, no slot is believed free.
	for i := range p.freePos {
		p.freePos[i] = -1
	}
	p.wg.Add(2)
	go p.watchLoop(ctx)
	go p.renewLoop(ctx)
	go func() {
		p.wg.Wait()
		close(p.done)
	}()
	return p, nil
}

// Holder returns the holder ID this pool writes in its leases.
func (p *Pool) Holder() string { return p.cfg.Holder }

// InUse returns how many seats are taken cluster-wide, by every gateway,
// according to this pool's picture of the bucket: eventually consistent,
// behind by the watch's delay (milliseconds on a healthy cluster). 0 until
// the picture is loaded.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taken
}

// Held returns how many seats this pool holds.
func (p *Pool) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// Acquire takes a seat for the session. It returns ErrNoSeat when every seat
// is taken, ErrClosed after Close, ErrBucket when the bucket is
// misconfigured, and another error when NATS cannot be reached or ctx ends
// (the seat was not granted: see docs/seats.md for the fault to answer). A
// session holds at most one seat of a pool.
func (p *Pool) Acquire(ctx context.Context, sessionID string) (*Seat, error) {
	if sessionID == "" {
		return nil, errors.New("seats: acquire: empty session ID")
	}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return nil, fmt.Errorf("seats: acquire for session %q: %w", sessionID, ErrClosed)
	case p.bySession[sessionID] != nil || p.acquiringFor[sessionID]:
		p.mu.Unlock()
		return nil, fmt.Errorf("seats: acquire: session %q already holds a seat", sessionID)
	}
	p.acquiring.Add(1)
	p.acquiringFor[sessionID] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.acquiringFor, sessionID)
		p.mu.Unlock()
		p.acquiring.Done()
	}()

	if p.cfg.Seats == 0 {
		return nil, fmt.Errorf("seats: acquire for session %q: license has 0 seats: %w", sessionID, ErrNoSeat)
	}
	select {
	case <-p.ready:
	case <-p.closing:
		return nil, fmt.Errorf("seats: acquire for session %q: %w", sessionID, ErrClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("seats: acquire for session %q: seat bucket not loaded yet (is NATS reachable?): %w", sessionID, ctx.Err())
	}

	value, err := json.Marshal(lease{Holder: p.cfg.Holder, Session: sessionID, Acquired: time.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("seats: acquire: %w", err)
	}
	var (
		probes, conflicts int
		tried             map[int]bool
	)
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return nil, fmt.Errorf("seats: acquire for session %q: %w", sessionID, ErrClosed)
		case p.startErr != nil:
			err := p.startErr
			p.mu.Unlock()
			return nil, fmt.Errorf("seats: acquire for session %q: %w", sessionID, err)
		}
		i, ok := -1, false
		if conflicts < maxConflicts && len(p.free) > 0 {
			i, ok = p.free[rand.IntN(len(p.free))], true
		} else if probes < verifyProbes && (probes > 0 || time.Since(p.lastProbe) >= probeInterval) {
			// The picture says full: it may be stale, so check a slot or
			// two, at most one such check per probeInterval.
			p.lastProbe = time.Now()
			i, ok = p.probeCandidate(tried)
			probes++
		}
		if !ok {
			inUse := p.taken
			p.mu.Unlock()
			return nil, fmt.Errorf("seats: acquire for session %q: %d of %d seats in use: %w", sessionID, inUse, p.cfg.Seats, ErrNoSeat)
		}
		p.slots[i].inflight = true
		p.refresh(i)
		revBefore := p.slots[i].rev
		p.mu.Unlock()

		sent := time.Now()
		rev, err := p.kv.Create(ctx, slotKey(i), value)

		p.mu.Lock()
		st := &p.slots[i]
		st.inflight = false
		switch {
		case err == nil && rev < st.rev:
			// The watch already saw the slot change after our Create:
			// someone took or deleted it. Not ours to keep.
			p.refresh(i)
			p.mu.Unlock()
			conflicts++
			continue
		case err == nil:
			s := &Seat{p: p, slot: i, key: slotKey(i), session: sessionID, value: value, lock: make(chan struct{}, 1), rev: rev, written: sent}
			st.rev, st.seen = rev, time.Now()
			p.setTaken(i, true)
			p.held[i] = s
			p.bySession[sessionID] = s
			p.mu.Unlock()
			p.log.Debug().Str("session", sessionID).Int("slot", i).Uint64("rev", rev).Msg("seat acquired")
			return s, nil
		case conflict(err):
			if st.rev == revBefore {
				// Taken: the watch will bring the winner's revision. Had
				// the watch heard of the slot meanwhile, it knows better.
				st.seen = time.Now()
				p.setTaken(i, true)
			}
			p.refresh(i)
			if tried == nil {
				tried = make(map[int]bool)
			}
			tried[i] = true
			p.mu.Unlock()
			conflicts++
			continue
		default:
			p.refresh(i)
			p.mu.Unlock()
			return nil, fmt.Errorf("seats: acquire for session %q: create %s: %w", sessionID, slotKey(i), err)
		}
	}
}

// probeCandidate picks the slot taken by another holder that the picture
// heard of longest ago: the likeliest to have run out unnoticed. Lock held.
func (p *Pool) probeCandidate(tried map[int]bool) (int, bool) {
	best, found := -1, false
	for i := range p.slots {
		st := &p.slots[i]
		if !st.taken || st.inflight || p.held[i] != nil || tried[i] {
			continue
		}
		if !found || st.seen.Before(p.slots[best].seen) {
			best, found = i, true
		}
	}
	return best, found
}

// Close releases every seat the pool holds, stops its goroutines and
// returns once they have ended, or when ctx ends. Safe to call twice;
// Acquire fails with ErrClosed from the start of Close. Seats that could not
// be released run out after LeaseTTL.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		select {
		case <-p.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("seats: close: %w", ctx.Err())
		}
	}
	p.closed = true
	close(p.closing)
	p.mu.Unlock()
	defer p.cancel()

	acquired := make(chan struct{})
	go func() {
		p.acquiring.Wait()
		close(acquired)
	}()
	select {
	case <-acquired:
	case <-ctx.Done():
		return fmt.Errorf("seats: close: waiting for Acquire calls: %w", ctx.Err())
	}

	p.mu.Lock()
	held := make([]*Seat, 0, len(p.held))
	for _, s := range p.held {
		held = append(held, s)
	}
	p.mu.Unlock()
	var errs []error
	for _, s := range held {
		if err := s.Release(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("seats: close: waiting for goroutines: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// setTaken records whether slot i is taken. Lock held.
func (p *Pool) setTaken(i int, taken bool) {
	st := &p.slots[i]
	if st.taken != taken {
		st.taken = taken
		if taken {
			p.taken++
		} else {
			p.taken--
		}
	}
	p.refresh(i)
}

// refresh keeps slot i in the free set exactly when the picture says it is
// free and no local Acquire is creating it. Lock held.
func (p *Pool) refresh(i int) {
	st := &p.slots[i]
	want := p.isReady && !st.taken && !st.inflight
	pos := p.freePos[i]
	switch {
	case want && pos < 0:
		p.freePos[i] = int32(len(p.free))
		p.free = append(p.free, i)
	case !want && pos >= 0:
		last := p.free[len(p.free)-1]
		p.free[pos] = last
		p.freePos[last] = pos
		p.free = p.free[:len(p.free)-1]
		p.freePos[i] = -1
	}
}

// lostLocked drops a seat the pool no longer holds and returns its session
// ID for OnLost. Lock held.
func (p *Pool) lostLocked(s *Seat, why string) string {
	s.state = seatLost
	delete(p.held, s.slot)
	delete(p.bySession, s.session)
	p.log.Warn().Str("session", s.session).Int("slot", s.slot).Str("why", why).Msg("seat lost")
	return s.session
}

// reportLost calls OnLost for each session, outside the lock.
func (p *Pool) reportLost(sessions []string) {
	if p.cfg.OnLost == nil {
		return
	}
	for _, id := range sessions {
		p.cfg.OnLost(id)
	}
}

func slotKey(i int) string { return keyPrefix + strconv.Itoa(i) }

// parseSlot returns the slot of a key, if it names one below seats.
func parseSlot(key string, seats int) (int, bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= seats || strconv.Itoa(i) != rest {
		return 0, false
	}
	return i, true
}
