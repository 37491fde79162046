package seats

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

type seatState int

const (
	seatHeld seatState = iota
	seatReleased
	seatLost
)

// Seat is one license seat held by a session. Release it when the session
// ends.
type Seat struct {
	p       *Pool
	slot    int
	key     string
	session string
	value   []byte
	// lock serializes the seat's writes (renewal, release) so that a
	// release always names the latest revision. A channel so that waiting
	// for it honours ctx.
	lock chan struct{}

	// Guarded by p.mu.
	state   seatState
	rev     uint64    // revision of the lease's last write
	written time.Time // when the last successful write was sent
}

// SessionID returns the session the seat was acquired for.
func (s *Seat) SessionID() string { return s.session }

// Slot returns the seat's slot number, in [0, Seats).
func (s *Seat) Slot() int { return s.slot }

// Release frees the seat for every gateway at once: it purges the slot,
// provided the lease is still this seat's (a lease that ran out and was
// taken by another gateway is left alone). Safe to call twice, and on a seat
// that was lost; those return nil. When NATS cannot be reached the seat is
// dropped all the same, Release returns the error, and the lease runs out
// after LeaseTTL.
func (s *Seat) Release(ctx context.Context) error {
	if s == nil {
		return nil
	}
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("seats: release %s: %w", s.key, ctx.Err())
	}
	defer func() { <-s.lock }()

	p := s.p
	p.mu.Lock()
	if s.state != seatHeld {
		p.mu.Unlock()
		return nil
	}
	s.state = seatReleased
	delete(p.held, s.slot)
	delete(p.bySession, s.session)
	rev := s.rev
	p.mu.Unlock()

	err := p.kv.Purge(ctx, s.key, jetstream.LastRevision(rev))
	if conflict(err) {
		// A renewal that timed out may have landed after all: purge the
		// lease if the latest value is still this seat's.
		if cur, ours, gerr := p.current(ctx, s); gerr == nil && ours {
			rev = cur
			err = p.kv.Purge(ctx, s.key, jetstream.LastRevision(rev))
		}
	}
	switch {
	case err == nil:
		p.mu.Lock()
		if st := &p.slots[s.slot]; st.rev <= rev {
			// Free at once in this pool's picture; the watch brings the
			// purge's revision.
			st.seen = time.Now()
			p.setTaken(s.slot, false)
		}
		p.mu.Unlock()
		p.log.Debug().Str("session", s.session).Int("slot", s.slot).Msg("seat released")
		return nil
	case conflict(err):
		// The lease had already run out or was deleted: nothing of ours
		// to free.
		p.log.Debug().Str("session", s.session).Int("slot", s.slot).Msg("seat released after it was lost")
		return nil
	default:
		return fmt.Errorf("seats: release %s of session %q (the lease runs out within %s): %w", s.key, s.session, p.cfg.LeaseTTL, err)
	}
}
