package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// view is the gateway's copy of one group's queue: loaded from the group's
// snapshot and later events, followed live with an ordered consumer, and
// shared by every subscribed session of the gateway. Every change is derived
// into updates and encoded once per kind of subscriber, then queued to each.
type view struct {
	srv     *Server
	group   subjects.Group
	subject string
	ready   chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	// guarded by srv.hub.mu
	refs      int
	idleSince time.Time

	mu        sync.Mutex // guards the state below
	q         *queue.Queue
	seq       uint64
	streamSeq uint64
	subs      []*sub
	kinds     [2][2]int // subscribers by format and by position updates
	d         deriver

	broken bool // a change failed to apply: the view waits for its rebuild

	pmu     sync.Mutex // guards the three below
	pending []event
	queued  bool   // registered with the flusher
	gen     uint64 // grows with each consumer; older consumers' events are dropped
	failed  chan error
}

// event is a decoded event with its stream sequence.
type event struct {
	subjects.Event
	streamSeq uint64
}

// sub is one session's subscription to a view. While holding, live frames
// wait in held: the session is still being sent its initial data.
type sub struct {
	c         *conn
	view      *view
	positions bool
	idx       int
	holding   bool
	held      []frame
}

func newView(s *Server, g subjects.Group) *view {
	v := &view{srv: s, group: g, subject: subjects.Events(g.TenantID, g.ServiceGroupID), ready: make(chan struct{}),
		done: make(chan struct{}), failed: make(chan error, 1)}
	v.ctx, v.cancel = context.WithCancel(s.ctx)
	go v.run()
	return v
}

// run loads the view and follows the group until the view stops; any
// failure (a gap, a lost consumer) rebuilds it from the bus.
func (v *view) run() {
	defer close(v.done)
	log := v.srv.log.With().Str("group", v.group.ServiceGroupID).Logger()
	for backoff := 100 * time.Millisecond; v.ctx.Err() == nil; backoff = min(backoff*2, 5*time.Second) {
		err := v.load()
		if err == nil {
			backoff = 100 * time.Millisecond
			err = v.follow()
		}
		if v.ctx.Err() != nil {
			return
		}
		v.srv.metrics.rebuilds.Inc()
		log.Warn().Err(err).Dur("retry_in", backoff).Msg("group view rebuilds")
		select {
		case <-v.ctx.Done():
		case <-time.After(backoff):
		}
	}
}

// load reads the group's state from the bus and installs it: the first time
// as is, later as the difference to what the subscribers hold.
func (v *view) load() error {
	st, err := v.srv.hist.Load(v.ctx, v.group.TenantID, v.group.ServiceGroupID)
	if err != nil && !errors.Is(err, subjects.ErrGap) {
		return err
	}
	v.pmu.Lock()
	v.pending = nil
	v.gen++
	v.pmu.Unlock()
	select {
	case <-v.failed:
	default:
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.broken = false
	if v.q == nil {
		v.q, v.seq, v.streamSeq = st.Queue, st.Seq, st.StreamSeq
		close(v.ready)
		return nil
	}
	v.rebuild(st)
	return err
}

// rebuild moves the view to a state loaded anew, sending subscribers the
// changes from what they hold to it.
func (v *view) rebuild(st subjects.GroupState) {
	old := queue.New(v.group.ServiceGroupID)
	for _, s := range v.q.Sessions() {
		_, _ = old.Apply(queue.Change{Op: queue.OpEnqueue, CallID: s.CallID, Session: s})
	}
	changes, _, err := old.Reconcile(st.Queue.Sessions())
	if err != nil { // the loaded queue repeats a CallID: take it as it is
		v.q = st.Queue
		changes = nil
	}
	v.d.reset(v.kinds[0][1]+v.kinds[1][1] > 0)
	for _, c := range changes {
		_ = v.d.apply(v.q, c) // built from v.q's own state: cannot fail
	}
	v.seq, v.streamSeq = st.Seq, st.StreamSeq
	v.fanout(time.Time{})
}

// follow consumes the group's events after the view's state until an
// error, a gap, or the view stops. The consumer's goroutine queues them; the
// flusher applies them in its rounds.
func (v *view) follow() error {
	v.mu.Lock()
	from := v.streamSeq + 1
	v.mu.Unlock()
	v.pmu.Lock()
	gen := v.gen
	v.pmu.Unlock()
	cons, err := v.srv.js.OrderedConsumer(v.ctx, subjects.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{v.subject}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { v.onMsg(gen, msg) })
	if err != nil {
		return err
	}
	defer cc.Stop()
	select {
	case <-v.ctx.Done():
		return v.ctx.Err()
	case err := <-v.failed:
		return err
	}
}

// onMsg runs on the consumer's goroutine: it decodes, queues, and registers
// the view with the flusher.
func (v *view) onMsg(gen uint64, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	events, err := subjects.DecodeEvents(msg.Data())
	if err != nil {
		v.srv.log.Error().Err(err).Uint64("stream_seq", meta.Sequence.Stream).Msg("undecodable event skipped")
		return
	}
	v.pmu.Lock()
	if gen != v.gen {
		v.pmu.Unlock()
		return
	}
	for _, e := range events {
		v.pending = append(v.pending, event{Event: e, streamSeq: meta.Sequence.Stream})
	}
	register := !v.queued
	v.queued = true
	v.pmu.Unlock()
	if register {
		v.srv.flush.addView(v)
	}
}

// take empties the queue of events and the view's registration.
func (v *view) take() []event {
	v.pmu.Lock()
	defer v.pmu.Unlock()
	batch := v.pending
	v.pending, v.queued = nil, false
	return batch
}

// applyPending applies the events queued since the last time (the
// flusher calls it, from any of its workers: v.mu keeps the batches in
// order). A failure stops the view's consumer; the view is rebuilt from the
// bus and applies nothing until then.
func (v *view) applyPending() {
	v.mu.Lock()
	defer v.mu.Unlock()
	batch := v.take()
	if len(batch) == 0 || v.ctx.Err() != nil || v.broken {
		return
	}
	if err := v.apply(batch); err != nil {
		v.broken = true
		select {
		case v.failed <- err:
		default:
		}
	}
}

// apply applies a batch of events and fans the updates out as one
// SessionsUpdated per kind of subscriber; v.mu is held.
func (v *view) apply(batch []event) error {
	v.d.reset(v.kinds[0][1]+v.kinds[1][1] > 0)
	var born time.Time
	var err error
	for i := range batch {
		e := &batch[i]
		if e.Seq <= v.seq {
			// The consumer delivers only events after the view's; an old
			// number means the group's history was renumbered (an adapter
			// restarted on a stream that had lost its tail).
			err = errRenumbered{have: v.seq, got: e.Seq}
			break
		}
		if e.Seq != v.seq+1 {
			err = errGap{have: v.seq, got: e.Seq}
			break
		}
		if err = v.d.apply(v.q, e.Change); err != nil {
			break
		}
		v.seq, v.streamSeq = e.Seq, e.streamSeq
		v.srv.metrics.eventsIn.Inc()
		v.srv.metrics.toView.Observe(time.Since(e.Time).Seconds())
		if born.IsZero() {
			born = e.Time
		}
	}
	v.fanout(born)
	return err
}

// fanout queues the derived updates to every subscriber; v.mu is held.
func (v *view) fanout(born time.Time) {
	var encoded [2][2][]byte
	for _, s := range v.subs {
		pi := 0
		if s.positions {
			pi = 1
		}
		list := v.d.list(s.positions)
		if len(list) == 0 {
			continue
		}
		data := encoded[s.c.format][pi]
		if data == nil {
			data = protocol.AppendSessionsUpdated(s.c.format, nil, v.group.ServiceGroupID, v.seq, list)
			encoded[s.c.format][pi] = data
		}
		f := frame{data: data, op: s.c.opcode, born: born}
		if s.holding {
			s.held = append(s.held, f)
		} else {
			s.c.send(f)
		}
	}
}

// initial is what a new subscriber starts from.
type initial struct {
	seq, streamSeq uint64
	sessions       []queue.Session
}

// subscribe adds a holding subscriber and returns the state it starts from.
func (v *view) subscribe(c *conn, positions bool) (*sub, initial) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := &sub{c: c, view: v, positions: positions, idx: len(v.subs), holding: true}
	v.subs = append(v.subs, s)
	v.kinds[c.format][b2i(positions)]++
	return s, initial{seq: v.seq, streamSeq: v.streamSeq, sessions: v.q.Sessions()}
}

// unhold sends what arrived while s got its initial data; live from then on.
func (v *view) unhold(s *sub) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, f := range s.held {
		s.c.send(f)
	}
	s.held, s.holding = nil, false
}

// unsubscribe removes s; nothing more is queued for it afterwards.
func (v *view) unsubscribe(s *sub) {
	v.mu.Lock()
	if s.idx >= 0 && s.idx < len(v.subs) && v.subs[s.idx] == s {
		last := len(v.subs) - 1
		v.subs[s.idx] = v.subs[last]
		v.subs[s.idx].idx = s.idx
		v.subs[last] = nil
		v.subs = v.subs[:last]
		v.kinds[s.c.format][b2i(s.positions)]--
		s.idx = -1
	}
	v.mu.Unlock()
	v.release()
}

// release gives back a reference taken by hub.acquire.
func (v *view) release() {
	h := v.srv.hub
	h.mu.Lock()
	v.refs--
	if v.refs == 0 {
		v.idleSince = time.Now()
	}
	h.mu.Unlock()
}

// idleFor says how long the view has had no reference; hub.mu is held.
func (v *view) idleFor(now time.Time) time.Duration {
	if v.refs > 0 || v.idleSince.IsZero() {
		return 0
	}
	return now.Sub(v.idleSince)
}

func (v *view) stop() {
	v.cancel()
	<-v.done
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
