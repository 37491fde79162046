package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/stats"
	"github.com/sisbridge/sisbridge/subjects"
)

// view is the gateway's copy of one group's queue, shared by every
// subscribed session of the gateway: loaded from the group's snapshot and
// later events, followed live through a core NATS subscription to the
// group's republished events (follow.go), and repaired from JetStream when
// a sequence number is missing. Every change is derived into updates and
// encoded once per kind of subscriber, then queued to each.
type view struct {
	hub   *hub
	group subjects.Group
	log   zerolog.Logger
	ready chan struct{} // closed once the view is loaded
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup // loads and repairs in progress

	refs      atomic.Int64 // subscriptions and subscribes in progress
	idleSince atomic.Int64 // unix nanos of the last release to 0 refs

	mu        sync.Mutex // guards the state below
	q         *queue.Queue
	seq       uint64 // the group sequence number q reflects
	streamSeq uint64 // stream sequence of the last message applied
	subs      []*sub
	kinds     [2][2]int // subscribers by format and by position updates
	d         deriver
	cur       *version      // the queue as it is now, for initial data
	loadErr   error         // why the view does not follow, while it does not
	broken    time.Time     // since when it does not follow (zero while it does)
	misses    int           // repairs in a row that did not close a gap
	keeper    *stats.Keeper // nil until a subscriber asks for statistics
	st        statsState
	installs  int // loads installed: a statistics build restarts after one

	statsOn    atomic.Bool // statistics asked for once: every load builds them
	statsBuild sync.Mutex  // one statistics build at a time

	pmu     sync.Mutex // guards the state below
	pending []event    // events received, not yet applied
	queued  bool       // registered with the flusher
	paused  bool       // loading, repairing or rebuilding: apply nothing
	nsub    *nats.Subscription
	dropped uint64 // messages the subscription had dropped at the last check
}

// event is a decoded event with its stream sequence.
type event struct {
	subjects.Event
	streamSeq uint64
}

// sub is one session's subscription to a view. While holding, its live
// frames wait in held: the session is still being sent its initial data.
type sub struct {
	// The fields every change reads for every subscriber come first, in
	// one cache line.
	t         *transport
	gen       uint64
	positions bool
	holding   bool
	sessions  bool      // SessionsUpdated wanted (Subscribe's Sessions)
	media     mediaSet  // the media types whose sessions it is sent
	capped    *capped   // the rate cap's state (§12); nil without a cap
	mark      *groupSeq // its entry in its connection's KeepAlive Seqs

	view      *view
	idx       int
	held      []frame
	full      *fullProducer // its initial data, until resumed instead
	stream    *stream
	tenant    string // the tenant-wide subscription that made it; "" for none
	stats     bool   // QueueStatistics wanted (Subscribe's Statistics)
	statsDue  bool   // figures changed since the last sent
	statsSent time.Time
	// initialStats is the QueueStatistics sent before InitialDataComplete
	// (nil without statistics); the producer takes it.
	initialStats []byte
}

func newView(h *hub, g subjects.Group) *view {
	v := &view{hub: h, group: g, ready: make(chan struct{}), paused: true, cur: &version{},
		log: h.srv.log.With().Str("group", g.ServiceGroupID).Logger()}
	v.ctx, v.stop = context.WithCancel(h.srv.ctx)
	return v
}

// applyPending applies the events received since the last time; the
// flusher calls it, from any of its workers (v.mu keeps the batches in
// order).
func (v *view) applyPending() {
	v.mu.Lock()
	defer v.mu.Unlock()
	batch := v.take()
	if len(batch) == 0 || v.ctx.Err() != nil {
		return
	}
	rest, trouble := v.apply(batch)
	if trouble != nil {
		v.pause(rest)
		v.repair(trouble)
	}
}

// take empties the queue of events and the view's registration; nothing
// while the view is paused.
func (v *view) take() []event {
	v.pmu.Lock()
	defer v.pmu.Unlock()
	v.queued = false
	if v.paused {
		return nil
	}
	batch := v.pending
	v.pending = nil
	return batch
}

// apply applies a batch of events and fans the updates out as one
// SessionsUpdated per kind of subscriber; v.mu is held. At a gap or a
// renumbered history it stops: it returns the events not applied and why.
func (v *view) apply(batch []event) ([]event, error) {
	v.beforeChange()
	v.d.reset(v.kinds[0][1]+v.kinds[1][1] > 0)
	var born time.Time
	for i := range batch {
		e := &batch[i]
		skip, err := v.check(e)
		if err != nil {
			v.fanout(born)
			return batch[i:], err
		}
		if skip {
			continue
		}
		if err := v.d.apply(v.q, e.Change); err != nil {
			v.fanout(born)
			return batch[i:], errRebuild{err}
		}
		v.keep(e)
		v.seq, v.streamSeq = e.Seq, e.streamSeq
		v.misses, v.broken, v.loadErr = 0, time.Time{}, nil // it follows again
		v.hub.srv.metrics.eventsIn.Inc()
		v.hub.srv.metrics.toView.Observe(time.Since(e.Time).Seconds())
		if born.IsZero() {
			born = e.Time
		}
	}
	v.fanout(born)
	return nil, nil
}

// check says whether an event is one the view already has (skip), the
// next one, or neither (a gap, or a history renumbered by an adapter that
// restarted on a stream that had lost its tail); v.mu is held.
func (v *view) check(e *event) (skip bool, err error) {
	switch {
	case e.Seq <= v.seq && e.streamSeq <= v.streamSeq:
		return true, nil
	case e.Seq <= v.seq:
		return false, errRebuild{errRenumbered{have: v.seq, got: e.Seq}}
	case e.Seq != v.seq+1:
		return false, errGap{have: v.seq, got: e.Seq, streamSeq: e.streamSeq}
	}
	return false, nil
}

// fanout queues the derived updates to every subscriber, encoded once
// per kind of subscriber; v.mu is held.
func (v *view) fanout(born time.Time) {
	v.cur.seq = v.seq
	var enc encodings
	for _, s := range v.subs {
		list := v.d.list(s.positions)
		if len(list) == 0 || !s.sessions {
			continue
		}
		data := enc.of(s, v.group.ServiceGroupID, v.seq, list)
		switch {
		case s.capped != nil:
			v.deliverCapped(s, list, data, born)
		case data != nil:
			v.deliver(s, frame{data: data, op: s.t.opcode, gen: s.gen, born: born, mark: s.mark, seq: v.seq})
		}
	}
	v.offerStats(time.Now())
}

// deliver queues a live frame for s, or holds it while s gets its initial
// data; v.mu is held.
func (v *view) deliver(s *sub, f frame) {
	if !s.holding {
		s.t.sendLive(f)
		return
	}
	if s.t.hold(s.gen, len(f.data)) {
		s.held = append(s.held, f)
	}
}

// initial is where a new subscriber starts.
type initial struct {
	seq, streamSeq uint64
	size           int // sessions in the queue
}

// wants is what a subscriber asked for.
type wants struct {
	positions, sessions, stats bool
	media                      mediaSet
	perSecond                  int // the session's MaxEventsPerSecond; 0: no cap
}

// subscribe adds a holding subscriber, with its initial data ready to be
// read from the queue as it is now.
func (v *view) subscribe(t *transport, gen uint64, w wants) (*sub, initial) {
	v.mu.Lock()
	defer v.mu.Unlock()
	positions := w.positions
	withStats := w.stats && v.keeper != nil // ensureStats made the keeper first
	s := &sub{t: t, gen: gen, view: v, positions: positions, idx: len(v.subs), holding: true, sessions: w.sessions, stats: withStats, media: w.media,
		mark: &groupSeq{group: v.group.ServiceGroupID}}
	if w.perSecond > 0 {
		s.capped = &capped{per: w.perSecond}
	}
	if withStats {
		v.st.subs++
		s.statsSent = time.Now()
		s.initialStats = v.statsFrame(t.format)
	}
	s.full = &fullProducer{v: v, sb: s, format: t.format, chunk: v.hub.srv.cfg.InitialChunk, ver: v.cur, pos: 1}
	v.cur.readers = append(v.cur.readers, s.full)
	v.subs = append(v.subs, s)
	v.kinds[t.format][b2i(positions)]++
	return s, initial{seq: v.seq, streamSeq: v.streamSeq, size: v.q.Len()}
}

// dropVersion forgets s's full initial data (it is resumed instead).
func (v *view) dropVersion(s *sub) { s.full.cancel() }

// setStream records the stream of s's initial data; false (and the
// stream cancelled) when s has already been unsubscribed.
func (v *view) setStream(s *sub, st *stream) bool {
	v.mu.Lock()
	ok := s.idx >= 0
	if ok {
		s.stream = st
	}
	v.mu.Unlock()
	if !ok {
		st.p.cancel()
	}
	return ok
}

// unhold queues what arrived while s got its initial data; live from then
// on.
func (v *view) unhold(s *sub) {
	v.mu.Lock()
	defer v.mu.Unlock()
	held := s.held
	s.held, s.holding = nil, false
	s.t.unhold(held)
	if s.capped != nil { // what changed during the initial data, merged
		v.sendMerged(s, time.Now())
	}
}

// unsubscribe removes s; nothing more is queued for it afterwards. It
// returns the stream of s's initial data, for the transport to drop.
func (v *view) unsubscribe(s *sub) *stream {
	v.mu.Lock()
	if s.idx >= 0 && s.idx < len(v.subs) && v.subs[s.idx] == s {
		last := len(v.subs) - 1
		v.subs[s.idx] = v.subs[last]
		v.subs[s.idx].idx = s.idx
		v.subs[last] = nil
		v.subs = v.subs[:last]
		v.kinds[s.t.format][b2i(s.positions)]--
		if s.stats {
			v.st.subs--
		}
		s.idx = -1
	}
	s.t.dropHeld(s.held)
	s.held, s.holding = nil, false
	s.stopCap()
	st := s.stream
	v.mu.Unlock()
	v.release()
	return st
}

// release gives back a reference taken by hub.acquire.
func (v *view) release() {
	if v.refs.Add(-1) == 0 {
		v.idleSince.Store(time.Now().UnixNano())
	}
}

// idleFor says how long the view has had no reference.
func (v *view) idleFor(now time.Time) time.Duration {
	since := v.idleSince.Load()
	if v.refs.Load() > 0 || since == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, since))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// subscribers returns the transports of the view's subscribers.
func (v *view) subscribers() []*transport {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]*transport, len(v.subs))
	for i, s := range v.subs {
		out[i] = s.t
	}
	return out
}

// droppedMore says whether the view's subscription dropped messages since
// the last call.
func (v *view) droppedMore() bool {
	v.pmu.Lock()
	defer v.pmu.Unlock()
	if v.nsub == nil {
		return false
	}
	n, err := v.nsub.Dropped()
	if err != nil || uint64(n) == v.dropped {
		return false
	}
	v.dropped = uint64(n)
	return true
}

// close stops following the group and waits for the view's loads and
// repairs to end. Safe to call twice.
func (v *view) close() {
	v.stop()
	v.mu.Lock()
	if v.st.timer != nil {
		v.st.timer.Stop()
	}
	v.mu.Unlock()
	v.pmu.Lock()
	nsub := v.nsub
	v.nsub = nil
	v.pmu.Unlock()
	if nsub != nil {
		_ = nsub.Unsubscribe()
	}
	v.wg.Wait()
}
