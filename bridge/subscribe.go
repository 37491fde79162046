package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// resolve finds the group a Subscribe names.
func (s *session) resolve(req *protocol.Request) (subjects.Group, *protocol.Fault) {
	if req.ServiceGroupID != "" {
		if !subjects.ValidID(req.ServiceGroupID) {
			return subjects.Group{}, protocol.Faultf(protocol.InvalidServiceGroupFault, "malformed ServiceGroupID %q", req.ServiceGroupID)
		}
		g, ok := s.srv.dir.byID(req.ServiceGroupID)
		if !ok {
			return g, protocol.Faultf(protocol.InvalidServiceGroupFault, "no service group %q", req.ServiceGroupID)
		}
		return g, nil
	}
	if !subjects.ValidID(req.TenantID) || strings.TrimSpace(req.ServiceGroupName) == "" {
		return subjects.Group{}, protocol.Faultf(protocol.InvalidServiceGroupFault, "give ServiceGroupID, or a well-formed TenantID and a ServiceGroupName")
	}
	g, ok := s.srv.dir.byName(req.TenantID, req.ServiceGroupName)
	if !ok {
		return g, protocol.Faultf(protocol.InvalidServiceGroupFault, "no service group %q in tenant %q", req.ServiceGroupName, req.TenantID)
	}
	return g, nil
}

// wantsOf is what a Subscribe asks for: sessions unless Sessions is
// false, statistics when Statistics is true, the sessions of the media
// types MediaTypes lists (every one without it).
func wantsOf(l *login, req *protocol.Request) (wants, *protocol.Fault) {
	w := wants{positions: l.positions, sessions: req.Sessions == nil || *req.Sessions, stats: req.Statistics != nil && *req.Statistics,
		perSecond: l.perSecond}
	if !w.sessions && !w.stats {
		return w, protocol.Faultf(protocol.InvalidRequestFault, "Sessions false without Statistics true asks for nothing")
	}
	var fault *protocol.Fault
	w.media, fault = mediaSetOf(req.MediaTypes)
	return w, fault
}

func (s *session) subscribe(l *login, req *protocol.Request) *protocol.Fault {
	if req.AllGroups != nil && *req.AllGroups {
		return s.subscribeTenant(l, req)
	}
	w, fault := wantsOf(l, req)
	if fault != nil {
		return fault
	}
	if !s.srv.router.connected() {
		return s.srv.router.downFault()
	}
	g, fault := s.resolve(req)
	if fault != nil {
		return fault
	}
	s.mu.Lock()
	_, already := l.subs[g.ServiceGroupID]
	subs := len(l.subs)
	s.mu.Unlock()
	if already {
		no := false
		return s.reply(l, req, &protocol.Result{Succeeded: &no, ServiceGroupID: g.ServiceGroupID})
	}
	if fault := s.subscriptionLimit(subs); fault != nil {
		return fault
	}
	ctx, cancel := context.WithTimeout(l.ctx, s.srv.cfg.SubscribeTimeout)
	defer cancel()
	v, err := s.srv.hub.acquire(ctx, g)
	if err == nil && w.stats {
		if err = v.ensureStats(ctx); err != nil {
			v.release()
		}
	}
	if err != nil {
		if l.ctx.Err() != nil {
			return errEnded
		}
		return protocol.Faultf(protocol.RouterDisconnectedFault, "service group %s cannot be followed now: %v", g.ServiceGroupID, err)
	}
	return s.attach(ctx, l, v, req, w)
}

// attach registers the subscription with the view, answers, and queues
// the initial data (or the resumed changes) and InitialDataComplete; the
// live updates that arrive meanwhile follow them.
func (s *session) attach(ctx context.Context, l *login, v *view, req *protocol.Request, w wants) *protocol.Fault {
	j, fault := s.join(ctx, l, v, req, w, "")
	if fault != nil {
		return fault
	}
	yes := true
	res := &protocol.Result{Succeeded: &yes, ServiceGroupID: v.group.ServiceGroupID}
	if j == nil { // subscribed meanwhile (a tenant-wide subscription took it)
		no := false
		res.Succeeded = &no
		return s.reply(l, req, res)
	}
	if req.ResumeFromSeq != nil {
		res.Resumed = &j.resumed
	}
	if f := s.reply(l, req, res); f != nil {
		j.p.cancel()
		return f
	}
	s.begin(l, j)
	return nil
}

// joined is a subscription registered with its view, its initial data
// made and not yet queued.
type joined struct {
	v       *view
	sb      *sub
	p       producer
	seq     uint64 // the Seq of its InitialDataComplete
	resumed bool
}

// join registers a subscription of v for l (tenant: the tenant-wide
// subscription that makes it, "" for none) and picks its initial data.
// It returns nil (the view released) when l is already subscribed to the
// group, and errEnded when l has ended.
func (s *session) join(ctx context.Context, l *login, v *view, req *protocol.Request, w wants, tenant string) (*joined, *protocol.Fault) {
	s.mu.Lock()
	if s.login != l { // ended while the view loaded
		s.mu.Unlock()
		v.release()
		return nil, errEnded
	}
	if _, already := l.subs[v.group.ServiceGroupID]; already {
		s.mu.Unlock()
		v.release()
		return nil, nil
	}
	sb, start := v.subscribe(s.t, l.gen, w)
	sb.tenant = tenant
	l.subs[v.group.ServiceGroupID] = sb
	s.mu.Unlock()
	s.srv.metrics.subscriptions.Inc()
	p, resumed := s.initialData(ctx, l, v, sb, start, req)
	return &joined{v: v, sb: sb, p: p, seq: start.seq, resumed: resumed}, nil
}

// begin queues a joined subscription's initial data, after its reply.
func (s *session) begin(l *login, j *joined) {
	st := &stream{gen: l.gen, p: j.p, mark: j.sb.mark, seq: j.seq}
	if j.v.setStream(j.sb, st) {
		s.t.stream(st)
	}
}

// initialData picks what a new subscriber is sent: the changes after
// ResumeFromSeq when they can be had and are not more than the whole
// queue, else the whole queue.
func (s *session) initialData(ctx context.Context, l *login, v *view, sb *sub, start initial, req *protocol.Request) (producer, bool) {
	if req != nil && req.ResumeFromSeq != nil && sb.sessions { // statistics only: nothing to resume
		events, err := s.resume(ctx, l, v.group, start, *req.ResumeFromSeq, sb.media)
		if err == nil {
			v.dropVersion(sb)
			return &resumedProducer{format: s.t.format, group: v.group.ServiceGroupID, seq: start.seq, events: events,
				stats: sb.initialStats, done: func() { v.unhold(sb) }}, true
		}
		s.srv.log.Debug().Err(err).Str("group", v.group.ServiceGroupID).Msg("resume not possible; sending full initial data")
	}
	return sb.full, false
}

func (s *session) unsubscribe(l *login, req *protocol.Request) *protocol.Fault {
	if req.AllGroups != nil && *req.AllGroups {
		return s.unsubscribeTenant(l, req)
	}
	s.mu.Lock()
	sb, ok := l.subs[req.ServiceGroupID]
	if ok {
		delete(l.subs, req.ServiceGroupID)
	}
	s.mu.Unlock()
	if !ok {
		return protocol.Faultf(protocol.InvalidServiceGroupFault, "not subscribed to %q", req.ServiceGroupID)
	}
	s.drop(sb)
	return orGone(s.reply(l, req, nil))
}

// drop ends a subscription: its initial data stops, its held frames go,
// and nothing more is queued for it.
func (s *session) drop(sb *sub) {
	if st := sb.view.unsubscribe(sb); st != nil {
		s.t.cancelStream(st)
	}
	s.t.forget(sb.view.group.ServiceGroupID)
	s.srv.metrics.subscriptions.Dec()
}

// errNoResume: the changes a resume needs cannot be served.
var errNoResume = errors.New("changes after that sequence cannot be served")

// prepared is one resumed SessionsUpdated: its updates and the Seq after
// its last change.
type prepared struct {
	seq     uint64
	updates []protocol.Update
}

// resume rebuilds the group as it was at from, from JetStream (its
// snapshot if not newer, else its whole stored history), and derives the
// changes from there to start: whole changes per event, never cut inside
// one. It gives up (errNoResume) when they come to more updates than the
// whole queue: full data is then cheaper.
func (s *session) resume(ctx context.Context, l *login, g subjects.Group, start initial, from uint64, media mediaSet) ([]prepared, error) {
	switch {
	case from == start.seq:
		return nil, nil
	case from > start.seq:
		return nil, fmt.Errorf("%w: resume from %d: the group is only at %d", errNoResume, from, start.seq)
	}
	st, walkFrom, err := s.resumeBase(ctx, g, from)
	if err != nil {
		return nil, err
	}
	r := &resumer{st: st, from: from, last: start.seq, positions: l.positions, media: media, chunk: s.srv.cfg.InitialChunk,
		limit: 2*start.size + s.srv.cfg.InitialChunk}
	r.d.reset(l.positions)
	release, err := s.srv.hub.loads.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.srv.hist.Walk(ctx, subjects.Events(g.TenantID, g.ServiceGroupID), walkFrom, start.streamSeq, r.step); err != nil {
		return nil, err
	}
	r.cut()
	if r.st.Seq != start.seq || r.err != nil {
		return nil, errors.Join(r.err, fmt.Errorf("%w: history reached %d, want %d", errNoResume, r.st.Seq, start.seq))
	}
	return r.out, nil
}

// resumeBase picks where to rebuild from: the snapshot when it is not
// newer than from, else nothing; it returns the stream sequence to walk
// from.
func (s *session) resumeBase(ctx context.Context, g subjects.Group, from uint64) (subjects.GroupState, uint64, error) {
	snap, found, err := s.srv.hist.Snapshot(ctx, g.TenantID, g.ServiceGroupID)
	if err != nil {
		return subjects.GroupState{}, 0, err
	}
	if !found || snap.Seq > from {
		return subjects.GroupState{Queue: queue.New(g.ServiceGroupID)}, 1, nil
	}
	st, err := subjects.FromSnapshot(&snap)
	return st, snap.StreamSeq + 1, err
}

// resumer applies a group's history: silently up to from, then deriving
// the updates of each change, cut into events between changes.
type resumer struct {
	st         subjects.GroupState
	from, last uint64
	positions  bool
	media      mediaSet // the media types whose sessions are sent
	chunk      int
	limit      int // most updates worth sending instead of full data
	total      int
	d          deriver
	out        []prepared
	err        error
}

func (r *resumer) step(e *subjects.Event, streamSeq uint64) error {
	switch {
	case e.Seq <= r.st.Seq || e.Seq > r.last:
		return nil
	case e.Seq <= r.from:
		return r.st.Apply(e, streamSeq)
	case e.Seq != r.st.Seq+1:
		return fmt.Errorf("%w: %w", errNoResume, errGap{have: r.st.Seq, got: e.Seq})
	}
	if err := r.d.apply(r.st.Queue, e.Change); err != nil {
		return err
	}
	r.st.Seq, r.st.StreamSeq = e.Seq, streamSeq
	if len(r.d.list(r.positions)) >= r.chunk {
		r.cut()
	}
	return r.err
}

// cut ends the event being built after the change just applied; with a
// media filter, an event none of whose updates passes is not sent.
func (r *resumer) cut() {
	list := r.d.list(r.positions)
	if r.media != 0 {
		list = r.media.filter(nil, list)
	}
	if len(list) == 0 {
		r.d.reset(r.positions)
		return
	}
	r.out = append(r.out, prepared{seq: r.st.Seq, updates: slices.Clone(list)})
	r.total += len(list)
	r.d.reset(r.positions)
	if r.total > r.limit {
		r.err = fmt.Errorf("%w: more changes than the whole queue", errNoResume)
	}
}

// resumedProducer sends prepared resumed events, then InitialDataComplete.
type resumedProducer struct {
	format protocol.Format
	group  string
	seq    uint64
	events []prepared
	stats  []byte // QueueStatistics before InitialDataComplete; nil without
	done   func()
}

func (p *resumedProducer) next() ([]byte, bool) {
	if len(p.events) == 0 {
		if st := p.stats; st != nil {
			p.stats = nil
			return append(newInitialBuf(), st...), false // the view's encoding is shared; produced buffers are reused
		}
		return protocol.AppendInitialDataComplete(p.format, nil, p.group, p.seq), true
	}
	e := p.events[0]
	p.events[0] = prepared{}
	p.events = p.events[1:]
	return protocol.AppendSessionsUpdated(p.format, nil, p.group, e.seq, e.updates), false
}

func (p *resumedProducer) finish() { p.done() }
func (p *resumedProducer) cancel() {}
