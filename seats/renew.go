package seats

import (
	"context"
	"sync"
	"time"
)

// renewLoop rewrites this pool's leases every RenewEvery, gives up those it
// could not renew within LeaseTTL, and watches the picture for staleness,
// until ctx ends.
func (p *Pool) renewLoop(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.renewTick(ctx)
		}
	}
}

func (p *Pool) renewTick(ctx context.Context) {
	now := time.Now()
	var due []*Seat
	var lost []string
	p.mu.Lock()
	for _, s := range p.held {
		age := now.Sub(s.written)
		switch {
		case age >= p.cfg.LeaseTTL:
			// The server has dropped it by now (or will before we can
			// write again): another gateway may hold the slot.
			lost = append(lost, p.lostLocked(s, "not renewed within the lease TTL"))
		case age >= p.cfg.RenewEvery/2:
			due = append(due, s)
		}
	}
	p.checkStale(now)
	p.mu.Unlock()
	p.reportLost(lost)

	sem := make(chan struct{}, renewParallel)
	var wg sync.WaitGroup
	for _, s := range due {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.renew(ctx, s)
		}()
	}
	wg.Wait()
}

// renew rewrites one lease at the revision it last wrote, so it never
// brings back a slot that ran out and was taken by someone else. A lease it
// cannot rewrite before the next try would be too late is given up: the
// server drops a lease LeaseTTL after it stored the last write, and
// s.written is when that write was sent, so the pool gives a seat up no
// later than the server frees it.
func (p *Pool) renew(ctx context.Context, s *Seat) {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.lock }()
	p.mu.Lock()
	if s.state != seatHeld {
		p.mu.Unlock()
		return
	}
	rev := s.rev
	p.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, p.cfg.RenewEvery/2)
	defer cancel()
	sent := time.Now()
	newRev, err := p.kv.Update(cctx, s.key, s.value, rev)
	if conflict(err) {
		// An earlier renewal that timed out may have landed after all:
		// then the latest value is still this seat's lease.
		if cur, ours, gerr := p.current(cctx, s); gerr == nil && ours {
			newRev, err = p.kv.Update(cctx, s.key, s.value, cur)
		}
	}

	var lost []string
	p.mu.Lock()
	switch {
	case s.state != seatHeld:
	case err == nil:
		s.rev, s.written = max(s.rev, newRev), sent
		if st := &p.slots[s.slot]; newRev >= st.rev {
			st.rev, st.seen = newRev, time.Now()
			p.setTaken(s.slot, true)
		}
	case conflict(err):
		lost = append(lost, p.lostLocked(s, "lease changed by someone else"))
	case ctx.Err() != nil:
	case time.Since(s.written)+p.cfg.RenewEvery >= p.cfg.LeaseTTL:
		// The next try would come after the server dropped the lease:
		// give the seat up now rather than overlap with its next holder.
		lost = append(lost, p.lostLocked(s, "renewal failed and the lease runs out before the next try: "+err.Error()))
	default:
		p.log.Warn().Err(err).Str("session", s.session).Int("slot", s.slot).Msg("seat renewal failed; retrying")
	}
	p.mu.Unlock()
	p.reportLost(lost)
}

// checkStale asks the watch to start over when a slot held by someone else
// has not been heard of for longer than a live holder can stay silent
// (LeaseTTL + RenewEvery): its run-out marker was missed, or the watch
// stalled. At most once per LeaseTTL. Lock held.
func (p *Pool) checkStale(now time.Time) {
	if !p.isReady || p.startErr != nil || now.Sub(p.lastRestart) < p.cfg.LeaseTTL {
		return
	}
	limit := p.cfg.LeaseTTL + p.cfg.RenewEvery
	for i := range p.slots {
		st := &p.slots[i]
		if st.taken && !st.inflight && p.held[i] == nil && now.Sub(st.seen) > limit {
			p.lastRestart = now
			select {
			case p.restart <- struct{}{}:
			default:
			}
			return
		}
	}
}

// current reads the slot of seat s: its latest revision, and whether that
// is still s's lease.
func (p *Pool) current(ctx context.Context, s *Seat) (rev uint64, ours bool, err error) {
	e, err := p.kv.Get(ctx, s.key)
	if err != nil {
		return 0, false, err
	}
	return e.Revision(), p.ours(s, e.Value()), nil
}
