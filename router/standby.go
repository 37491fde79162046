package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/subjects"
)

// Standby is a router adapter waiting for the lease while another adapter
// writes to the bus. It keeps every group current from the events stream
// and the directory (a warm standby), so that taking over needs no
// restore: Await returns an Adapter that continues each group's Seq.
type Standby struct {
	a      *Adapter // bound and restored, not started: the state followed
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	iter      jetstream.MessagesContext // the follower's consumer now
	applied   uint64                    // stream sequence of the last message applied
	holder    subjects.Lease            // the holder last seen
	followErr error                     // why following stopped, if it did
	closeOnce sync.Once
}

// OpenStandby binds to the bus, rebuilds every group as Open does, and
// follows the stream and the directory from there. Cancelling ctx aborts
// the rebuild only; Close stops it.
func OpenStandby(ctx context.Context, js jetstream.JetStream, log zerolog.Logger, cfg Config) (*Standby, error) {
	a, err := newAdapter(ctx, js, log, cfg)
	if err != nil {
		return nil, err
	}
	info, err := a.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("standby: stream %s: %w", subjects.StreamEvents, err)
	}
	if err := a.restore(ctx); err != nil {
		return nil, err
	}
	s := &Standby{a: a, applied: info.State.LastSeq}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.follow(ctx, info.State.LastSeq+1); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// follow starts following the events stream from stream sequence from,
// and the directory.
func (s *Standby) follow(ctx context.Context, from uint64) error {
	it, err := s.openEvents(ctx, from)
	if err != nil {
		return err
	}
	watch, err := subjects.SteadyWatch(s.ctx, s.a.js, s.a.dir)
	if err != nil {
		it.Stop()
		return fmt.Errorf("standby: watch the directory: %w", err)
	}
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.readEvents(it) }()
	go func() { defer s.wg.Done(); s.readDirectory(watch) }()
	go func() { defer s.wg.Done(); s.watchStall() }()
	return nil
}

// openEvents opens an ordered consumer of the events stream from stream
// sequence from. A heartbeat a second: a follower reading through a NATS
// node that died resets onto another within seconds.
func (s *Standby) openEvents(ctx context.Context, from uint64) (jetstream.MessagesContext, error) {
	cons, err := s.a.js.OrderedConsumer(ctx, subjects.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.AllEvents}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return nil, fmt.Errorf("standby: follow the events stream: %w", err)
	}
	it, err := cons.Messages(jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return nil, fmt.Errorf("standby: follow the events stream: %w", err)
	}
	s.mu.Lock()
	s.iter = it
	s.mu.Unlock()
	return it, nil
}

// readEvents applies every message of the stream until the standby stops;
// when its consumer ends (stalled, or failed), it follows again from the
// message after the last applied.
func (s *Standby) readEvents(it jetstream.MessagesContext) {
	stop := context.AfterFunc(s.ctx, func() { s.currentIter().Stop() })
	defer stop()
	for s.ctx.Err() == nil {
		s.consume(it)
		for s.ctx.Err() == nil {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			next, err := s.openEvents(ctx, s.appliedSeq()+1)
			cancel()
			if err == nil {
				it = next
				break
			}
			s.a.rejects.Warn().Err(err).Msg("standby: following the stream again")
			sleepCtx(s.ctx, 500*time.Millisecond)
		}
	}
}

// consume applies messages until the iterator ends.
func (s *Standby) consume(it jetstream.MessagesContext) {
	for {
		m, err := it.Next()
		if err != nil || s.ctx.Err() != nil {
			return
		}
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		s.apply(m.Subject(), m.Data(), md.Sequence.Stream)
	}
}

func (s *Standby) currentIter() jetstream.MessagesContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.iter
}

// watchStall restarts the follower when it stalls (subjects.WatchStall).
func (s *Standby) watchStall() {
	subjects.WatchStall(s.ctx, s.a.stream, s.appliedSeq, func(applied, stored uint64) {
		s.a.log.Warn().Uint64("applied", applied).Uint64("stored", stored).Msg("standby: the stream follower stalled; following again")
		s.currentIter().Stop()
	})
}

// stopped records why following stopped.
func (s *Standby) stopped(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.followErr == nil {
		s.followErr = err
	}
}

// apply applies one stored message to the group it belongs to.
func (s *Standby) apply(subject string, data []byte, streamSeq uint64) {
	a := s.a
	tenant, id, ok := subjects.ParseEvents(subject)
	events, err := subjects.DecodeEvents(data)
	a.mu.Lock()
	defer a.mu.Unlock()
	defer s.setApplied(streamSeq)
	if !ok || err != nil {
		a.log.Error().Err(err).Str("subject", subject).Uint64("stream_seq", streamSeq).Msg("standby: a message of the events stream does not decode; skipped")
		return
	}
	g := a.groups[id]
	if g == nil {
		g = a.removed[id] // the last events of a removed group
	}
	if g == nil {
		g = newGroup(subjects.Group{ServiceGroupID: id, TenantID: tenant})
		a.groups[id] = g
	}
	for i := range events {
		ev := &events[i]
		if ev.Seq <= g.seq {
			continue
		}
		if _, err := g.q.Apply(ev.Change); ev.Seq != g.seq+1 || err != nil {
			s.reloadLocked(g, fmt.Sprintf("event %d after %d (%v)", ev.Seq, g.seq, err))
			return
		}
		g.seq = ev.Seq
	}
	g.setAcked(g.seq, streamSeq)
}

// reloadLocked rebuilds a group from the bus after an event that did not
// follow (retention dropped events, or the standby missed some).
func (s *Standby) reloadLocked(g *group, why string) {
	a := s.a
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	fresh, err := a.loadGroup(ctx, g.info)
	if err != nil {
		a.log.Error().Err(err).Str("group", g.info.ServiceGroupID).Msg("standby: group not reloaded; taking over reloads it")
		s.stopped(err)
		return
	}
	a.log.Warn().Str("group", g.info.ServiceGroupID).Str("why", why).Msg("standby: group reloaded from the bus")
	if a.removed[g.info.ServiceGroupID] == g {
		a.removed[g.info.ServiceGroupID] = fresh
		return
	}
	a.groups[g.info.ServiceGroupID] = fresh
}

func (s *Standby) setApplied(streamSeq uint64) {
	s.mu.Lock()
	s.applied = max(s.applied, streamSeq)
	s.mu.Unlock()
}

// readDirectory keeps tenants and groups as the directory says.
func (s *Standby) readDirectory(w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-s.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				s.directoryEntry(e.Key(), e.Value())
			}
		}
	}
}

// directoryEntry applies one directory entry.
func (s *Standby) directoryEntry(key string, value []byte) {
	a := s.a
	kind, _, _ := subjects.ParseDirectoryKey(key)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch kind {
	case "tenant":
		if t, err := subjects.DecodeTenant(value); err == nil {
			a.tenants[t.TenantID] = t
		}
	case "group":
		if info, err := subjects.DecodeGroup(value); err == nil {
			switch g := a.groups[info.ServiceGroupID]; {
			case g != nil:
				g.info = info
			case a.removed[info.ServiceGroupID] != nil: // added again
				a.groups[info.ServiceGroupID] = a.removed[info.ServiceGroupID]
				delete(a.removed, info.ServiceGroupID)
				a.groups[info.ServiceGroupID].info = info
			default:
				a.groups[info.ServiceGroupID] = newGroup(info)
			}
		}
	case "removed":
		if info, err := subjects.DecodeGroup(value); err == nil {
			if g := a.groups[info.ServiceGroupID]; g != nil {
				a.removed[info.ServiceGroupID] = g
				delete(a.groups, info.ServiceGroupID)
			} else if a.removed[info.ServiceGroupID] == nil {
				a.removed[info.ServiceGroupID] = newGroup(info)
			}
		}
	}
}

// Holder returns the adapter that held the lease when last seen (zero
// before Await has looked).
func (s *Standby) Holder() subjects.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holder
}

// Await stands by until the lease is free, takes it, catches up with every
// event stored before it and returns the adapter, started, continuing
// each group's Seq. Cancelling ctx gives up (the Standby stays usable); a
// standby that stopped following the stream returns why.
func (s *Standby) Await(ctx context.Context) (*Adapter, error) {
	a := s.a
	ttl := a.cfg.Bus.AdapterLeaseTTL
	poll := time.NewTicker(ttl / 10)
	defer poll.Stop()
	var w leaseWatch
	for {
		if err := s.err(); err != nil {
			return nil, err
		}
		l, holder, err := tryLease(ctx, a.leases, ttl, a.cfg.Name, a.writer, &w)
		switch {
		case l != nil:
			return s.takeOver(ctx, l)
		case err != nil && ctx.Err() == nil:
			a.rejects.Warn().Err(err).Msg("standby: the lease cannot be read; retrying")
		case err == nil:
			s.seen(holder)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-poll.C:
		}
	}
}

// err returns why the standby stopped following, if it did.
func (s *Standby) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.followErr
}

// seen notes the lease's holder, logging a change.
func (s *Standby) seen(holder subjects.Lease) {
	s.mu.Lock()
	changed := holder.Instance != s.holder.Instance
	s.holder = holder
	s.mu.Unlock()
	if changed && holder.Adapter != "" {
		s.a.log.Info().Str("active", holder.Adapter).Time("since", holder.Since).Msg("standing by: another adapter holds the lease")
	}
}

// takeOver catches up with the stream as it stood when the lease was
// taken, stops following, and starts the adapter.
func (s *Standby) takeOver(ctx context.Context, l *lease) (*Adapter, error) {
	a, start := s.a, time.Now()
	a.lease = l
	if err := s.catchUp(ctx); err != nil {
		a.releaseLease(ctx)
		return nil, err
	}
	s.Close()
	if err := a.readEpoch(ctx); err != nil {
		a.releaseLease(ctx)
		return nil, err
	}
	a.recount()
	if err := a.start(ctx); err != nil {
		a.releaseLease(ctx)
		return nil, err
	}
	a.log.Info().Int("groups", len(a.groups)).Dur("took", time.Since(start)).Msg("took over: this adapter holds the lease")
	return a, nil
}

// catchUp waits until every message stored before the lease was taken is
// applied; one the standby cannot reach in time has every group restored
// from the bus instead.
func (s *Standby) catchUp(ctx context.Context) error {
	info, err := s.a.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("take over: stream %s: %w", subjects.StreamEvents, err)
	}
	target := info.State.LastSeq
	if s.appliedSeq() < target {
		// Follow again from the last applied: a consumer that stalled (its
		// NATS node went away) would otherwise hold the takeover up.
		s.currentIter().Stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.appliedSeq() < target && s.err() == nil && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if s.appliedSeq() >= target && s.err() == nil {
		return nil
	}
	s.a.log.Warn().Err(s.err()).Uint64("applied", s.appliedSeq()).Uint64("stored", target).Msg("take over: the standby fell behind; restoring every group from the bus")
	s.Close()
	s.a.mu.Lock()
	s.a.groups = map[string]*group{}
	s.a.mu.Unlock()
	return s.a.restore(ctx)
}

func (s *Standby) appliedSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// Close stops following; it is safe twice and returns once the followers
// have ended. A Standby that Await turned into an adapter is closed.
func (s *Standby) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

// readEpoch reads the router link's epoch from the status, so that the
// next link-up counts on from the last adapter's.
func (a *Adapter) readEpoch(ctx context.Context) error {
	_, st, err := subjects.ReadRouterStatus(ctx, a.status)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("take over: %w", err)
	}
	a.link.Epoch = max(a.link.Epoch, st.Epoch)
	return nil
}

// recount sets the group and session counts from the state.
func (a *Adapter) recount() {
	a.mu.Lock()
	defer a.mu.Unlock()
	var queued int64
	for _, g := range a.groups {
		queued += int64(g.q.Len())
	}
	a.stats.groups.Store(int64(len(a.groups)))
	a.stats.queued.Store(queued)
}
