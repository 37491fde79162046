package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// session is an initialized client session.
type session struct {
	id        string
	positions bool
	release   func(context.Context) error
	subs      map[string]*sub // by ServiceGroupID
}

// handle answers one request.
func (c *conn) handle(data []byte) {
	req, fault := protocol.DecodeRequest(c.format, data)
	if fault == nil {
		fault = c.dispatch(&req)
	}
	if fault != nil {
		c.srv.metrics.faults.WithLabelValues(string(fault.Type)).Inc()
		c.send(frame{data: protocol.AppendFault(c.format, nil, req.ID, fault), op: c.opcode, forced: true})
	}
}

// dispatch runs a decoded request; it sends the reply itself on success.
func (c *conn) dispatch(req *protocol.Request) *protocol.Fault {
	if req.Op == protocol.OpInitialize {
		return c.initialize(req)
	}
	c.smu.Lock()
	sess := c.sess
	c.smu.Unlock()
	if sess == nil {
		if !knownOp(req.Op) {
			return protocol.Faultf(protocol.InvalidRequestFault, "unknown op %q", req.Op)
		}
		return protocol.Faultf(protocol.InvalidRequestFault, "%s before Initialize", req.Op)
	}
	switch req.Op {
	case protocol.OpSubscribe:
		return c.subscribe(sess, req)
	case protocol.OpUnsubscribe:
		return c.unsubscribe(sess, req)
	case protocol.OpHeartbeat:
		c.awaitingHB.Store(0)
		c.reply(req, nil)
		return nil
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

func (c *conn) reply(req *protocol.Request, r *protocol.Result) {
	c.send(frame{data: protocol.AppendReply(c.format, nil, req.ID, r), op: c.opcode, forced: true})
}

// initialize checks, in the protocol's order: credentials, router, seat.
func (c *conn) initialize(req *protocol.Request) *protocol.Fault {
	c.smu.Lock()
	initialized := c.sess != nil
	c.smu.Unlock()
	switch {
	case initialized:
		return protocol.Faultf(protocol.InvalidRequestFault, "the session is already initialized")
	case req.SendQueuePositionUpdates == nil:
		return protocol.Faultf(protocol.InvalidRequestFault, "SendQueuePositionUpdates is required")
	}
	ctx, cancel := context.WithTimeout(c.srv.ctx, 10*time.Second)
	defer cancel()
	if c.srv.cfg.Auth {
		if err := c.srv.users.Authenticate(ctx, req.LogonID, req.Password); err != nil {
			c.srv.log.Info().Err(err).Str("logon", req.LogonID).Msg("initialize refused")
			return protocol.Faultf(protocol.InvalidUserFault, "not a host administrator, or wrong password")
		}
	}
	if !c.srv.router.connected() {
		return protocol.Faultf(protocol.RouterDisconnectedFault, "the router is not connected")
	}
	id := fmt.Sprintf("%s-%d", c.srv.router.instance, c.srv.nextID.Add(1))
	release, err := c.srv.seats.Acquire(ctx, id)
	if err != nil {
		return protocol.Faultf(protocol.NoLicenseFault, "no SessionInformation license seat free: %v", err)
	}
	sess := &session{id: id, positions: *req.SendQueuePositionUpdates, release: release, subs: map[string]*sub{}}
	c.smu.Lock()
	c.sess = sess
	c.smu.Unlock()
	c.srv.setSession(id, c)
	c.srv.metrics.sessions.Inc()
	c.reply(req, nil)
	return nil
}

// resolve finds the group a Subscribe names.
func (c *conn) resolve(req *protocol.Request) (subjects.Group, *protocol.Fault) {
	if req.ServiceGroupID != "" {
		if !subjects.ValidID(req.ServiceGroupID) {
			return subjects.Group{}, protocol.Faultf(protocol.InvalidServiceGroupFault, "malformed ServiceGroupID %q", req.ServiceGroupID)
		}
		g, ok := c.srv.dir.byID(req.ServiceGroupID)
		if !ok {
			return g, protocol.Faultf(protocol.InvalidServiceGroupFault, "no service group %q", req.ServiceGroupID)
		}
		return g, nil
	}
	if !subjects.ValidID(req.TenantID) || strings.TrimSpace(req.ServiceGroupName) == "" {
		return subjects.Group{}, protocol.Faultf(protocol.InvalidServiceGroupFault, "give ServiceGroupID, or a well-formed TenantID and a ServiceGroupName")
	}
	g, ok := c.srv.dir.byName(req.TenantID, req.ServiceGroupName)
	if !ok {
		return g, protocol.Faultf(protocol.InvalidServiceGroupFault, "no service group %q in tenant %q", req.ServiceGroupName, req.TenantID)
	}
	return g, nil
}

func (c *conn) subscribe(sess *session, req *protocol.Request) *protocol.Fault {
	if !c.srv.router.connected() {
		return protocol.Faultf(protocol.RouterDisconnectedFault, "the router is not connected")
	}
	g, fault := c.resolve(req)
	if fault != nil {
		return fault
	}
	c.smu.Lock()
	_, already := sess.subs[g.ServiceGroupID]
	c.smu.Unlock()
	if already {
		no := false
		c.reply(req, &protocol.Result{Succeeded: &no, ServiceGroupID: g.ServiceGroupID})
		return nil
	}
	ctx, cancel := context.WithTimeout(c.srv.ctx, c.srv.cfg.SubscribeTimeout)
	defer cancel()
	v, err := c.srv.hub.acquire(ctx, g)
	if err != nil {
		return protocol.Faultf(protocol.RouterDisconnectedFault, "service group %s cannot be loaded: %v", g.ServiceGroupID, err)
	}
	return c.attach(ctx, sess, v, req)
}

// attach registers the session with the view and sends the reply, the
// initial data (or the resumed changes) and InitialDataComplete, then the
// live updates that arrived meanwhile.
func (c *conn) attach(ctx context.Context, sess *session, v *view, req *protocol.Request) *protocol.Fault {
	c.smu.Lock()
	if c.sess != sess { // ended while the view loaded
		c.smu.Unlock()
		v.release()
		return protocol.Faultf(protocol.RouterDisconnectedFault, "the session ended")
	}
	s, start := v.subscribe(c, sess.positions)
	sess.subs[v.group.ServiceGroupID] = s
	c.smu.Unlock()
	c.srv.metrics.subscriptions.Inc()
	resumed := c.initialData(ctx, v, start, req)
	yes := true
	res := &protocol.Result{Succeeded: &yes, ServiceGroupID: v.group.ServiceGroupID}
	if req.ResumeFromSeq != nil {
		res.Resumed = &resumed.ok
	}
	c.reply(req, res)
	for _, f := range resumed.frames {
		c.send(f)
	}
	v.unhold(s)
	return nil
}

func (c *conn) unsubscribe(sess *session, req *protocol.Request) *protocol.Fault {
	c.smu.Lock()
	s, ok := sess.subs[req.ServiceGroupID]
	if ok {
		delete(sess.subs, req.ServiceGroupID)
	}
	c.smu.Unlock()
	if !ok {
		return protocol.Faultf(protocol.InvalidServiceGroupFault, "not subscribed to %q", req.ServiceGroupID)
	}
	s.view.unsubscribe(s)
	c.srv.metrics.subscriptions.Dec()
	c.reply(req, nil)
	return nil
}

// endSession removes the session and its subscriptions and frees its seat.
// With notify, the client is told RouterDisconnected; the connection stays.
func (c *conn) endSession(notify bool) {
	c.smu.Lock()
	sess := c.sess
	c.sess = nil
	if sess != nil {
		for _, s := range sess.subs {
			s.view.unsubscribe(s)
			c.srv.metrics.subscriptions.Dec()
		}
	}
	c.smu.Unlock()
	if sess == nil {
		return
	}
	c.srv.setSession(sess.id, nil)
	c.srv.metrics.sessions.Dec()
	if notify {
		c.send(frame{data: protocol.AppendEvent(c.format, nil, protocol.EventRouterDisconnected), op: c.opcode, forced: true})
	}
	c.awaitingHB.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sess.release(ctx); err != nil && !errors.Is(err, context.Canceled) {
		c.srv.log.Warn().Err(err).Str("session", sess.id).Msg("release license seat")
	}
}

func (c *conn) subscriptionCount() int {
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.sess == nil {
		return 0
	}
	return len(c.sess.subs)
}
