package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
)

// EventGroupReset is an event a Session delivers (never a gateway): a
// group could not be resumed after a reconnection, and its sessions are
// sent again in full, as initial data; drop what you hold of it.
const EventGroupReset = "GroupReset"

// Errors of a Session.
var (
	// ErrNotConnected: the session is between connections; try again once
	// it is back (Ready).
	ErrNotConnected = errors.New("session not connected")
	// ErrSessionClosed: Close was called.
	ErrSessionClosed = errors.New("session closed")
)

// SessionConfig configures a Session.
type SessionConfig struct {
	// URL is the gateway's WebSocket URL (typically a load balancer's).
	// Required.
	URL string
	// Format picks the subprotocol. Default protocol.JSON.
	Format protocol.Format
	// LogonID and Password sign in when the gateway requires it. Default
	// none.
	LogonID, Password string
	// Positions asks for queue-position updates. Default false.
	Positions bool
	// TLS configures wss:// connections. Default nil: the system's roots.
	TLS *tls.Config
	// MinBackoff and MaxBackoff bound the wait before each new attempt
	// (dialling, or initializing while the router is down or no license
	// seat is free): it doubles from MinBackoff up to MaxBackoff, each wait
	// drawn at random from its upper half. Default 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// OnEvent, when set, receives every event once the session's mirror
	// has applied it, in order: resumed events as live ones, and
	// EventGroupReset before a group is sent again in full. It runs on the
	// connection's reader goroutine: it must return quickly and must not
	// call the Session's methods that wait for a reply. Default nil.
	OnEvent func(protocol.Message)

	// lose, when set, discards the events for which it returns true, as if
	// the network had lost them: tests of gap detection set it.
	lose func(protocol.Message) bool
}

func (c *SessionConfig) setDefaults() {
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Second, c.MinBackoff)
	}
}

// SessionStats count what a Session went through.
type SessionStats struct {
	// Connects counts connections that initialized; the first is not a
	// reconnection.
	Connects int
	// Resumed counts groups resumed after a reconnection (or a
	// RouterDisconnected) from the Seq the mirror held; Resent those sent
	// again in full (their history was gone, or the view broke).
	Resumed, Resent int
	// RouterDisconnects counts RouterDisconnected events.
	RouterDisconnects int
	// Broken counts events that did not fit the mirror (the group was then
	// subscribed again in full).
	Broken int
	// Gaps counts groups whose Seq in a KeepAlive differed from the
	// mirror's: an event was missed, and the group was resumed from the
	// mirror's Seq (§11).
	Gaps int
}

// Session is a Session Information session that outlives its
// connections: it dials, initializes and follows the groups subscribed
// through it. When a connection ends (a gateway stops, the load balancer
// moves it) or the router disconnects, it initializes again, on a new
// connection if need be (backoff with jitter), and subscribes every group
// again from the Seq its mirror last applied (ResumeFromSeq): the events it
// delivers have no gap, and its mirror stays the group's queue.
type Session struct {
	cfg    SessionConfig
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	mirror   *Mirror
	wanted   map[string]bool             // groups followed, by ServiceGroupID
	asked    map[string]protocol.Request // what each followed group was subscribed with (Statistics, Sessions, MediaTypes)
	tenants  map[string]protocol.Request // tenant-wide subscriptions (§10), by TenantID
	left     map[string]bool             // groups unsubscribed: their late events are not taken for a tenant's new group
	resuming map[string]bool             // groups subscribed again whose reply has not come: their events until it are dropped
	conn     *Client                     // the connection while it has a session
	ready    chan struct{}               // closed while the session is up
	failure  error                       // a refusal that retrying cannot mend
	attempts int                         // failed attempts since the last success
	stats    SessionStats
}

// Connect starts a session and waits until it is up (initialized) or ctx
// ends; the session goes on reconnecting until Close.
func Connect(ctx context.Context, cfg SessionConfig) (*Session, error) {
	if cfg.URL == "" {
		return nil, errors.New("session: no URL")
	}
	cfg.setDefaults()
	s := &Session{cfg: cfg, done: make(chan struct{}), mirror: NewMirror(cfg.Positions), wanted: map[string]bool{},
		asked: map[string]protocol.Request{}, tenants: map[string]protocol.Request{}, left: map[string]bool{}, resuming: map[string]bool{}, ready: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	if err := s.Ready(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Ready waits until the session is up, ctx ends, or a refusal that
// retrying cannot mend (InvalidUserFault) ends the session.
func (s *Session) Ready(ctx context.Context) error {
	for {
		s.mu.Lock()
		ready, failure := s.ready, s.failure
		s.mu.Unlock()
		if failure != nil {
			return failure
		}
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			if s.failed() {
				continue // a refusal ended it: say which
			}
			return ErrSessionClosed
		case <-time.After(100 * time.Millisecond): // a failure wakes no one
		}
	}
}

// Close ends the session; it returns once its goroutine has ended. Safe
// twice.
func (s *Session) Close() {
	s.cancel()
	<-s.done
}

// Stats returns what the session went through so far.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// View returns a copy of a group's queue as the mirror holds it, the Seq
// it is at, and whether it is complete (initial data done).
func (s *Session) View(group string) (seq uint64, sessions []protocol.SessionInfo, complete bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mirror.Seq[group], slices.Clone(s.mirror.Groups[group]), s.mirror.Complete[group]
}

// Groups returns the groups the session follows.
func (s *Session) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.wanted))
}

// Subscribe subscribes to a group (by ServiceGroupID, or TenantID and
// ServiceGroupName), or with AllGroups to every group of a tenant, now and
// later (§10), and follows them from then on, across reconnections, with
// the same Statistics, Sessions and MediaTypes. A group removed from the
// directory is delivered as ServiceGroupRemoved and no longer followed.
// While the session is between connections it returns ErrNotConnected.
func (s *Session) Subscribe(ctx context.Context, req protocol.Request) (*protocol.Result, error) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return nil, ErrNotConnected
	}
	req.Op, req.ResumeFromSeq = protocol.OpSubscribe, nil
	type reply struct {
		res *protocol.Result
		err error
	}
	ch := make(chan reply, 1)
	err := c.Send(req, func(m protocol.Message, ok bool) {
		res, err := replyOf(m, ok)
		if err == nil && res != nil {
			s.mu.Lock()
			s.followLocked(req, res)
			s.mu.Unlock()
		}
		ch <- reply{res, err}
	})
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// followLocked records what a Subscribe answered: the groups it follows
// and what it asked for them. s.mu is held.
func (s *Session) followLocked(req protocol.Request, res *protocol.Result) {
	opts := protocol.Request{Statistics: req.Statistics, Sessions: req.Sessions, MediaTypes: req.MediaTypes}
	if req.AllGroups != nil && *req.AllGroups {
		s.tenants[req.TenantID] = opts
	}
	groups := res.ServiceGroupIDs
	if res.ServiceGroupID != "" {
		groups = append(groups, res.ServiceGroupID)
	}
	for _, g := range groups {
		delete(s.left, g)
		if !s.wanted[g] {
			s.wanted[g], s.asked[g] = true, opts
			s.mirror.filter(g, opts.MediaTypes != nil)
		}
	}
}

// adoptLocked follows a group the gateway subscribed the session to by
// itself (added to a tenant followed with AllGroups), with the options of
// a tenant-wide subscription (the first tenant's: an event does not say
// its tenant); false when there is none. s.mu is held.
func (s *Session) adoptLocked(g string) bool {
	if len(s.tenants) == 0 {
		return false
	}
	opts := s.tenants[slices.Min(slices.Collect(maps.Keys(s.tenants)))]
	s.wanted[g], s.asked[g] = true, opts
	s.mirror.filter(g, opts.MediaTypes != nil)
	return true
}

// UnsubscribeTenant ends a tenant-wide subscription and the subscriptions
// it made; groups subscribed by themselves go on.
func (s *Session) UnsubscribeTenant(ctx context.Context, tenant string) error {
	s.mu.Lock()
	delete(s.tenants, tenant)
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	yes := true
	_, err := c.Do(ctx, protocol.Request{Op: protocol.OpUnsubscribe, TenantID: tenant, AllGroups: &yes})
	return err
}

// Unsubscribe stops following a group. Nothing of it is delivered after
// Unsubscribe returns.
func (s *Session) Unsubscribe(ctx context.Context, group string) error {
	s.mu.Lock()
	delete(s.wanted, group)
	delete(s.asked, group)
	s.left[group] = true
	s.mirror.Drop(group)
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return nil // the next connection does not subscribe to it
	}
	_, err := c.Do(ctx, protocol.Request{Op: protocol.OpUnsubscribe, ServiceGroupID: group})
	return err
}

// replyOf turns a reply into a result or an error.
func replyOf(m protocol.Message, ok bool) (*protocol.Result, error) {
	switch {
	case !ok:
		return nil, ErrClosed
	case m.Fault != nil:
		return nil, m.Fault
	}
	return m.Result, nil
}

// run dials and serves connections until Close.
func (s *Session) run() {
	defer close(s.done)
	for s.ctx.Err() == nil {
		c, err := Dial(s.ctx, s.cfg.URL, Options{Format: s.cfg.Format, TLS: s.cfg.TLS, OnEvent: s.onEvent})
		if err == nil {
			s.serve(c)
		}
		if s.failed() {
			return
		}
		s.backoff()
	}
}

// failed says a refusal ended the session.
func (s *Session) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure != nil
}

// backoff waits before the next attempt: up to twice as long as the last,
// at most MaxBackoff, drawn from the upper half.
func (s *Session) backoff() {
	s.mu.Lock()
	s.attempts++
	n := s.attempts
	s.mu.Unlock()
	d := s.cfg.MinBackoff << min(n-1, 20)
	d = min(d, s.cfg.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
	case <-t.C:
	}
}

// serve initializes on c and follows its events until it ends.
func (s *Session) serve(c *Client) {
	s.initialize(c)
	select {
	case <-c.Done():
	case <-s.ctx.Done():
	}
	_ = c.Close()
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
		s.ready = make(chan struct{})
	}
	s.mu.Unlock()
}

// initialize sends Initialize on c; the reply (on c's reader) subscribes
// again to every group, or retries after a backoff while the router is
// down or no seat is free.
func (s *Session) initialize(c *Client) {
	positions := s.cfg.Positions
	req := protocol.Request{Op: protocol.OpInitialize, LogonID: s.cfg.LogonID, Password: s.cfg.Password, SendQueuePositionUpdates: &positions}
	err := c.Send(req, func(m protocol.Message, ok bool) {
		if !ok {
			return
		}
		if m.Fault != nil {
			s.refused(c, m.Fault)
			return
		}
		s.up(c)
	})
	if err != nil {
		_ = c.Close()
	}
}

// refused handles a fault answering Initialize: a bad sign-in ends the
// session; anything else is tried again after a backoff.
func (s *Session) refused(c *Client, f *protocol.Fault) {
	if f.Type == protocol.InvalidUserFault {
		s.mu.Lock()
		s.failure = fmt.Errorf("session: %w", f)
		s.mu.Unlock()
		// This runs on c's reader, which Close waits for: close it from
		// elsewhere (serve, waiting on c, then ends the session).
		go func() { _ = c.Close() }()
		return
	}
	go func() {
		s.backoff()
		if s.ctx.Err() == nil {
			s.initialize(c)
		}
	}()
}

// up marks the session up on c and subscribes again to every group it
// follows, resuming each complete one from the Seq its mirror holds.
// It runs on c's reader, before any event that follows the reply.
func (s *Session) up(c *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn, s.attempts = c, 0
	s.stats.Connects++
	close(s.ready)
	for _, g := range slices.Sorted(maps.Keys(s.wanted)) {
		s.resubscribeLocked(c, g)
	}
	// then the tenants, answered after the groups: only groups added
	// meanwhile come of them
	yes := true
	for _, t := range slices.Sorted(maps.Keys(s.tenants)) {
		req := s.tenants[t]
		req.Op, req.TenantID, req.AllGroups = protocol.OpSubscribe, t, &yes
		_ = c.Send(req, func(protocol.Message, bool) {})
	}
}

// resubscribeLocked subscribes to g again: resuming after the mirror's Seq
// when its view is complete, in full otherwise. s.mu is held.
func (s *Session) resubscribeLocked(c *Client, g string) {
	req := s.asked[g]
	req.Op, req.ServiceGroupID = protocol.OpSubscribe, g
	if s.mirror.Complete[g] {
		seq := s.mirror.Seq[g]
		req.ResumeFromSeq = &seq
	} else {
		s.mirror.Drop(g)
	}
	// Events of g still on their way (sent before the gateway takes an
	// Unsubscribe sent first) are not applied: the resume starts here.
	s.resuming[g] = true
	_ = c.Send(req, func(m protocol.Message, ok bool) { s.resubscribed(g, m, ok) })
}

// resubscribed takes the reply of a resubscription, on the reader: a
// group not resumed is dropped (and EventGroupReset delivered) before its
// initial data, which follows the reply, is applied.
func (s *Session) resubscribed(g string, m protocol.Message, ok bool) {
	s.mu.Lock()
	delete(s.resuming, g)
	s.mu.Unlock()
	if !ok || m.Fault != nil {
		return // the connection ended, or the router is down: RouterDisconnected follows
	}
	s.mu.Lock()
	resumed := m.Result != nil && m.Result.Resumed != nil && *m.Result.Resumed
	had := s.mirror.Complete[g]
	switch {
	case resumed:
		s.stats.Resumed++
	case had:
		s.stats.Resent++
		s.mirror.Drop(g)
	}
	s.mu.Unlock()
	if had && !resumed && s.cfg.OnEvent != nil {
		s.cfg.OnEvent(protocol.Message{Event: EventGroupReset, ServiceGroupID: g})
	}
}

// onEvent applies an event to the mirror, on the reader, and hands it on.
func (s *Session) onEvent(m protocol.Message) {
	if s.cfg.lose != nil && s.cfg.lose(m) {
		return
	}
	switch m.Event {
	case protocol.EventKeepAlive:
		s.checkSeqs(m.Seqs)
		s.heartbeat()
	case protocol.EventRouterDisconnected:
		s.routerDisconnected()
	case protocol.EventServiceGroupRemoved:
		s.mu.Lock()
		delete(s.wanted, m.ServiceGroupID)
		delete(s.asked, m.ServiceGroupID)
		delete(s.left, m.ServiceGroupID) // added again, a tenant's subscription takes it
		s.mirror.Drop(m.ServiceGroupID)
		s.mu.Unlock()
	case protocol.EventSessionsUpdated, protocol.EventInitialDataComplete:
		if !s.apply(m) {
			return
		}
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(m)
	}
}

// apply applies a group's event; an event that does not fit breaks the
// view, and the group is subscribed again in full. It reports whether the
// event was applied.
func (s *Session) apply(m protocol.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.wanted[m.ServiceGroupID] && (s.left[m.ServiceGroupID] || !s.adoptLocked(m.ServiceGroupID)) {
		return false // a group being unsubscribed
	}
	if s.resuming[m.ServiceGroupID] {
		return false // subscribed again: its events come after the reply
	}
	if err := s.mirror.Apply(m); err != nil {
		s.stats.Broken++
		s.mirror.Drop(m.ServiceGroupID)
		if s.conn != nil {
			c := s.conn
			_ = c.Send(protocol.Request{Op: protocol.OpUnsubscribe, ServiceGroupID: m.ServiceGroupID}, func(protocol.Message, bool) {})
			s.resubscribeLocked(c, m.ServiceGroupID)
		}
		return false
	}
	return true
}

// checkSeqs compares a KeepAlive's Seqs with the mirror: a complete group
// whose Seq differs missed an event, and is resumed from the mirror's Seq
// (Unsubscribe, then Subscribe with ResumeFromSeq). It runs on the reader:
// the mirror has applied every event sent before the KeepAlive.
func (s *Session) checkSeqs(seqs map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn
	if c == nil {
		return
	}
	for _, g := range slices.Sorted(maps.Keys(seqs)) {
		if !s.wanted[g] || !s.mirror.Complete[g] || s.mirror.Seq[g] == seqs[g] {
			continue
		}
		s.stats.Gaps++
		_ = c.Send(protocol.Request{Op: protocol.OpUnsubscribe, ServiceGroupID: g}, func(protocol.Message, bool) {})
		s.resubscribeLocked(c, g)
	}
}

// heartbeat answers a KeepAlive.
func (s *Session) heartbeat() {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		_ = c.Send(protocol.Request{Op: protocol.OpHeartbeat}, func(protocol.Message, bool) {})
	}
}

// routerDisconnected: the gateway ended the session; the mirror keeps its
// views (they resume once the router is back), and Initialize is sent
// again, after a backoff, on the same connection.
func (s *Session) routerDisconnected() {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.ready = make(chan struct{})
	s.stats.RouterDisconnects++
	s.mu.Unlock()
	if c == nil {
		return
	}
	go func() {
		s.backoff()
		if s.ctx.Err() == nil {
			s.initialize(c)
		}
	}()
}
