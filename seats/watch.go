package seats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var (
	errWatchClosed = errors.New("watch closed")
	errWatchStale  = errors.New("picture stale")
)

// watchLoop checks the bucket, then keeps a watch on it feeding the
// picture, starting it over when it closes or goes stale, until ctx ends.
func (p *Pool) watchLoop(ctx context.Context) {
	defer p.wg.Done()
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	checked := false
	for ctx.Err() == nil {
		var err error
		if !checked {
			if err = p.checkBucket(ctx); err == nil {
				checked = true
			} else if errors.Is(err, ErrBucket) {
				p.log.Error().Err(err).Msg("seat pool cannot start")
				p.fail(err)
				return
			}
		}
		if checked {
			var loaded bool
			loaded, err = p.watchOnce(ctx)
			if loaded {
				backoff = minBackoff
			}
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errWatchStale) {
			p.log.Info().Msg("seat picture stale: watching the bucket again")
			continue
		}
		p.log.Warn().Err(err).Dur("retry_in", backoff).Msg("seat bucket watch")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// checkBucket makes sure the bucket can hold this pool's leases.
func (p *Pool) checkBucket(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := p.kv.Status(cctx)
	if err != nil {
		return fmt.Errorf("seat bucket status: %w", err)
	}
	var errs []error
	if st.TTL() != p.cfg.LeaseTTL {
		errs = append(errs, fmt.Errorf("TTL %s, want the lease TTL %s (leases would run out at the wrong time, or never)", st.TTL(), p.cfg.LeaseTTL))
	}
	if st.LimitMarkerTTL() <= 0 {
		errs = append(errs, errors.New("no limit marker TTL (gateways would not see leases run out)"))
	}
	if st.History() != 1 {
		errs = append(errs, fmt.Errorf("history %d, want 1", st.History()))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: bucket %s: %w (create it with seats.BucketConfig)", ErrBucket, st.Bucket(), errors.Join(errs...))
	}
	return nil
}

// fail ends the start for good: Acquire returns err.
func (p *Pool) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startErr = err
	if !p.isReady {
		p.isReady = true
		close(p.ready)
	}
}

// watchOnce runs one watch until it closes, goes stale or ctx ends. loaded
// reports whether it delivered the bucket's current values.
func (p *Pool) watchOnce(ctx context.Context) (loaded bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := p.kv.Watch(wctx, keyPrefix+">")
	if err != nil {
		return false, fmt.Errorf("watch: %w", err)
	}
	defer drain(w)
	pass := make([]bool, p.cfg.Seats) // slots heard of in the initial values
	for {
		select {
		case <-ctx.Done():
			return loaded, nil
		case <-p.restart:
			return loaded, errWatchStale
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return loaded, errWatchClosed
			case e == nil:
				if !loaded {
					p.endPass(pass)
					loaded, pass = true, nil
				}
			default:
				p.apply(e, pass)
			}
		}
	}
}

// drain stops a watch and empties its channel until the client closes it,
// so the client's delivery goroutine never blocks on a full channel.
func drain(w jetstream.KeyWatcher) {
	_ = w.Stop()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-timeout.C:
			return
		}
	}
}

// apply brings one watched entry into the picture. During the initial
// values (pass != nil) the entry is taken as the truth; afterwards an entry
// older than what the picture knows (from a local Create or Release) is
// skipped.
func (p *Pool) apply(e jetstream.KeyValueEntry, pass []bool) {
	i, ok := parseSlot(e.Key(), p.cfg.Seats)
	if !ok {
		return
	}
	var lost []string
	p.mu.Lock()
	st := &p.slots[i]
	s := p.held[i]
	rev := e.Revision()
	if pass != nil {
		pass[i] = true
	}
	if (pass == nil && rev < st.rev) || (s != nil && rev < s.rev) {
		// Older than what a local Create, renewal or Release told us.
		p.mu.Unlock()
		return
	}
	if pass != nil {
		st.rev = rev
	} else {
		st.rev = max(st.rev, rev)
	}
	st.seen = time.Now()
	switch e.Operation() {
	case jetstream.KeyValuePut:
		if s != nil && rev > s.rev {
			if p.ours(s, e.Value()) {
				s.rev = rev // a renewal of ours that landed after its timeout
			} else {
				lost = append(lost, p.lostLocked(s, "taken by another holder"))
			}
		}
		p.setTaken(i, true)
	default: // deleted, purged, or run out (the server's marker)
		if s != nil && rev > s.rev {
			lost = append(lost, p.lostLocked(s, "lease deleted or ran out"))
		}
		p.setTaken(i, false)
	}
	p.mu.Unlock()
	p.reportLost(lost)
}

// ours reports whether a slot's value is seat s's lease.
func (p *Pool) ours(s *Seat, value []byte) bool {
	var l lease
	if err := json.Unmarshal(value, &l); err != nil {
		return false
	}
	return l.Holder == p.cfg.Holder && l.Session == s.session
}

// endPass completes the initial values: a slot they did not mention is
// free, unless a local Acquire is creating it or this pool holds it (the
// renewal finds out whether it still does). It makes the picture ready.
func (p *Pool) endPass(pass []bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for i, heard := range pass {
		if !heard && !p.slots[i].inflight && p.held[i] == nil {
			p.slots[i].seen = now
			p.setTaken(i, false)
		}
	}
	if !p.isReady {
		p.isReady = true
		for i := range p.slots {
			p.refresh(i)
		}
		close(p.ready)
		p.log.Info().Int("seats", p.cfg.Seats).Int("in_use", p.taken).Msg("seat pool ready")
	}
}
