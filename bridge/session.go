package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"golang.org/x/time/rate"
)

// session is one connection's protocol state: the initialized session
// (its login), its subscriptions and license seat, heartbeats, and the
// answers to requests. It only sends; its transport decides how frames
// reach the client.
type session struct {
	srv *Server
	t   *transport

	mu    sync.Mutex // guards the four below and every login's subs and tenants
	gen   uint64     // generation of the newest login
	login *login     // nil before Initialize and after the session ended
	// added are groups added to a followed tenant, to subscribe to; adding
	// while a goroutine does (followAddedGroups)
	added  []addedGroup
	adding bool

	lastRequest atomic.Int64 // unix nanos
	keepAliveAt atomic.Int64 // when the next KeepAlive is due
	awaitingHB  atomic.Int64 // when the first unanswered KeepAlive went out; 0 if none

	remote, addr string        // the client's address, and its host (Limits.PerAddress)
	opened       time.Time     // when the connection opened
	ever         atomic.Bool   // a session was initialized on the connection
	limiter      *rate.Limiter // Limits.RequestRate; nil: none
}

// login is an initialized session: from a successful Initialize to its
// end (close, heartbeat timeout, RouterDisconnected). Its frames carry its
// generation: once it has ended, none of them is written.
type login struct {
	id        string
	gen       uint64
	positions bool
	perSecond int // MaxEventsPerSecond (§12); 0: no cap
	release   func(context.Context) error
	subs      map[string]*sub  // by ServiceGroupID; guarded by session.mu
	tenants   map[string]wants // tenant-wide subscriptions (§10) by TenantID; guarded by session.mu
	ctx       context.Context  // ends with the login: requests in flight give up
	cancel    context.CancelFunc
}

func newSession(s *Server, t *transport, remote, addr string) *session {
	now := time.Now()
	ss := &session{srv: s, t: t, remote: remote, addr: addr, opened: now, limiter: s.newLimiter()}
	ss.lastRequest.Store(now.UnixNano())
	ss.keepAliveAt.Store(now.Add(jittered(s.cfg.KeepAlive, 0.5)).UnixNano())
	return ss
}

// handle answers one request.
func (s *session) handle(data []byte) {
	if s.overRate() {
		return
	}
	s.lastRequest.Store(time.Now().UnixNano())
	req, fault := protocol.DecodeRequest(s.t.format, data)
	if fault == nil {
		fault = s.dispatch(&req)
	}
	if fault != nil {
		s.fault(req.ID, fault)
	}
}

// fault answers a request with a fault; a fault is the connection's, so it
// goes whatever became of the session.
func (s *session) fault(id *int64, f *protocol.Fault) {
	s.srv.metrics.faults.WithLabelValues(string(f.Type)).Inc()
	s.t.send(s.t.event(0, protocol.AppendFault(s.t.format, nil, id, f)))
}

// current returns the login, nil when not initialized.
func (s *session) current() *login {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.login
}

// dispatch runs a decoded request; it sends the reply itself on success.
func (s *session) dispatch(req *protocol.Request) *protocol.Fault {
	if req.Op == protocol.OpInitialize {
		return s.initialize(req)
	}
	l := s.current()
	if l == nil {
		if !knownOp(req.Op) {
			return protocol.Faultf(protocol.InvalidRequestFault, "unknown op %q", req.Op)
		}
		return protocol.Faultf(protocol.InvalidRequestFault, "%s before Initialize", req.Op)
	}
	switch req.Op {
	case protocol.OpSubscribe:
		return s.subscribe(l, req)
	case protocol.OpUnsubscribe:
		return s.unsubscribe(l, req)
	case protocol.OpHeartbeat:
		s.awaitingHB.Store(0)
		return orGone(s.reply(l, req, s.srv.clockResult()))
	}
	return protocol.Faultf(protocol.InvalidRequestFault, "unknown op %q", req.Op)
}

func knownOp(op string) bool {
	switch op {
	case protocol.OpInitialize, protocol.OpSubscribe, protocol.OpUnsubscribe, protocol.OpHeartbeat:
		return true
	}
	return false
}

// clockResult is the result of Initialize and Heartbeat: the router's
// clock.
func (s *Server) clockResult() *protocol.Result {
	at, rate := s.router.clock(time.Now())
	return &protocol.Result{RouterTime: &at, RouterClockRate: &rate}
}

// errEnded: the session ended while a request of it was being answered.
var errEnded = protocol.Faultf(protocol.RouterDisconnectedFault, "the session ended")

// errGone answers a Heartbeat or Unsubscribe whose session ended while it
// was answered: its RouterDisconnected went first, so the request is one
// on a session not initialized (PROTOCOL.md §3), not one the router's
// loss refused.
var errGone = protocol.Faultf(protocol.InvalidRequestFault, "the session ended (RouterDisconnected): Initialize again")

// orGone turns errEnded into errGone.
func orGone(f *protocol.Fault) *protocol.Fault {
	if f == errEnded {
		return errGone
	}
	return f
}

// reply answers a request of login l. A login that has ended gets no
// reply: the request is answered with a fault instead (returned).
func (s *session) reply(l *login, req *protocol.Request, r *protocol.Result) *protocol.Fault {
	if s.t.send(s.t.event(l.gen, protocol.AppendReply(s.t.format, nil, req.ID, r))) {
		return nil
	}
	return errEnded
}

// initialize checks, in the protocol's order: credentials, router, seat.
func (s *session) initialize(req *protocol.Request) *protocol.Fault {
	switch {
	case s.current() != nil:
		return protocol.Faultf(protocol.InvalidRequestFault, "the session is already initialized")
	case req.SendQueuePositionUpdates == nil:
		return protocol.Faultf(protocol.InvalidRequestFault, "SendQueuePositionUpdates is required")
	case req.MaxEventsPerSecond != nil && (*req.MaxEventsPerSecond < protocol.MinEventsPerSecond || *req.MaxEventsPerSecond > protocol.MaxEventsPerSecond):
		return protocol.Faultf(protocol.InvalidRequestFault, "MaxEventsPerSecond %d: want %d to %d", *req.MaxEventsPerSecond,
			protocol.MinEventsPerSecond, protocol.MaxEventsPerSecond)
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, 10*time.Second)
	defer cancel()
	if s.srv.cfg.Auth && !s.srv.signIn(ctx, req.LogonID, req.Password, s.remote, "initialize") {
		return protocol.Faultf(protocol.InvalidUserFault, "not a host administrator, or wrong password")
	}
	if !s.srv.router.connected() {
		return s.srv.router.downFault()
	}
	id := fmt.Sprintf("%s-%d", s.srv.router.instance, s.srv.nextID.Add(1))
	release, err := s.srv.seats.Acquire(ctx, id)
	if err != nil {
		s.srv.audit.Warn().Str("event", "no_seat").Str("logon", logged(req.LogonID)).Str("remote", s.remote).Err(err).Msg("audit")
		return protocol.Faultf(protocol.NoLicenseFault, "no SessionInformation license seat free: %v", err)
	}
	return s.start(req, id, release)
}

// start makes the new login current and answers Initialize. A router that
// went down meanwhile ends it at once.
func (s *session) start(req *protocol.Request, id string, release func(context.Context) error) *protocol.Fault {
	l := &login{id: id, positions: *req.SendQueuePositionUpdates, release: release, subs: map[string]*sub{}, tenants: map[string]wants{}}
	if req.MaxEventsPerSecond != nil {
		l.perSecond = *req.MaxEventsPerSecond
	}
	l.ctx, l.cancel = context.WithCancel(s.srv.ctx)
	s.mu.Lock()
	s.gen++
	l.gen = s.gen
	s.login = l
	s.ever.Store(true)
	s.mu.Unlock()
	s.srv.setSession(id, s)
	s.srv.metrics.sessions.Inc()
	fault := s.reply(l, req, s.srv.clockResult())
	if !s.srv.router.connected() {
		s.end(l, true)
	}
	return fault
}

// endSession ends the current login, if any: see end.
func (s *session) endSession(notify bool) {
	if l := s.current(); l != nil {
		s.end(l, notify)
	}
}

// end ends login l: nothing of it is written from now on, its
// subscriptions and seat are freed, and with notify the client is told
// RouterDisconnected. The connection stays.
func (s *session) end(l *login, notify bool) {
	s.mu.Lock()
	if s.login != l {
		s.mu.Unlock()
		return
	}
	s.login = nil
	subs := l.subs
	l.subs, l.tenants = nil, nil
	// RouterDisconnected is queued before the lock goes: an Initialize
	// answered after it cannot have its reply written before it.
	s.t.endGeneration(l.gen)
	if notify {
		s.t.send(s.t.event(0, protocol.AppendEvent(s.t.format, nil, protocol.EventRouterDisconnected)))
	}
	s.mu.Unlock()
	l.cancel()
	for _, sb := range subs {
		s.drop(sb)
	}
	s.srv.setSession(l.id, nil)
	s.srv.metrics.sessions.Dec()
	s.awaitingHB.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.release(ctx); err != nil && !errors.Is(err, context.Canceled) {
		s.srv.log.Warn().Err(err).Str("session", l.id).Msg("release license seat")
	}
}

// finish runs when the connection's reading ends.
func (s *session) finish() {
	s.endSession(false)
	s.srv.removeSession(s)
	s.srv.release(s.addr)
	s.srv.metrics.connections.Dec()
	s.srv.wg.Done()
}

func (s *session) subscriptionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login == nil {
		return 0
	}
	return len(s.login.subs)
}
