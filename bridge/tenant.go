package bridge

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// Tenant-wide subscriptions (§10): a Subscribe with TenantID and AllGroups
// subscribes the session to every group of the tenant, each with its own
// initial data, and to the groups added to it later; a group removed from
// the directory ends every subscription to it with ServiceGroupRemoved.

// tenantLoads bounds the views one tenant-wide Subscribe acquires at once
// (each waits its turn among the gateway's loads as well).
const tenantLoads = 16

// subscribeTenant answers a tenant-wide Subscribe.
func (s *session) subscribeTenant(l *login, req *protocol.Request) *protocol.Fault {
	w, fault := s.tenantWants(l, req)
	if fault != nil {
		return fault
	}
	groups, ok := s.srv.dir.ofTenant(req.TenantID)
	if !ok {
		return protocol.Faultf(protocol.InvalidServiceGroupFault, "no tenant %q", req.TenantID)
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ServiceGroupID
	}
	fresh, already, fault := s.claimTenant(l, req.TenantID, w, groups)
	switch {
	case fault != nil:
		return fault
	case already:
		no := false
		return s.reply(l, req, &protocol.Result{Succeeded: &no, ServiceGroupIDs: ids})
	}
	joins, err := s.joinAll(l, fresh, w, req.TenantID)
	if err != nil {
		s.mu.Lock()
		if l.tenants != nil {
			delete(l.tenants, req.TenantID)
		}
		s.mu.Unlock()
		if l.ctx.Err() != nil {
			return errEnded
		}
		return protocol.Faultf(protocol.RouterDisconnectedFault, "tenant %s cannot be followed now: %v", req.TenantID, err)
	}
	yes := true
	if f := s.reply(l, req, &protocol.Result{Succeeded: &yes, ServiceGroupIDs: ids}); f != nil {
		for _, j := range joins {
			j.p.cancel()
		}
		return f
	}
	for _, j := range joins {
		s.begin(l, j)
	}
	return nil
}

// tenantWants checks a tenant-wide Subscribe and says what it asks for.
func (s *session) tenantWants(l *login, req *protocol.Request) (wants, *protocol.Fault) {
	w, fault := wantsOf(l, req)
	switch {
	case fault != nil:
		return w, fault
	case req.ServiceGroupID != "" || req.ServiceGroupName != "":
		return w, protocol.Faultf(protocol.InvalidRequestFault, "AllGroups subscribes to a tenant's groups: give TenantID alone")
	case req.ResumeFromSeq != nil:
		return w, protocol.Faultf(protocol.InvalidRequestFault, "ResumeFromSeq is a group's: a tenant-wide Subscribe takes none")
	case !subjects.ValidID(req.TenantID):
		return w, protocol.Faultf(protocol.InvalidServiceGroupFault, "malformed TenantID %q", req.TenantID)
	case !s.srv.router.connected():
		return w, s.srv.router.downFault()
	}
	return w, nil
}

// claimTenant records a tenant-wide subscription and returns the tenant's
// groups the session does not follow yet; already when the tenant was
// subscribed before. Past the session's bound on groups, nothing is
// recorded and the Subscribe is refused.
func (s *session) claimTenant(l *login, tenant string, w wants, groups []subjects.Group) (fresh []subjects.Group, already bool, fault *protocol.Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login != l {
		return nil, false, errEnded
	}
	if _, ok := l.tenants[tenant]; ok {
		return nil, true, nil
	}
	for _, g := range groups {
		if _, ok := l.subs[g.ServiceGroupID]; !ok {
			fresh = append(fresh, g)
		}
	}
	if max := s.srv.cfg.Limits.Subscriptions; max >= 0 && len(l.subs)+len(fresh) > max {
		s.srv.hit(limitSubscriptions, s.remote)
		return nil, false, protocol.Faultf(protocol.InvalidRequestFault,
			"subscription limit: tenant %s has %d groups this session does not follow, %d more than the %d groups a session may follow",
			tenant, len(fresh), len(l.subs)+len(fresh)-max, max)
	}
	l.tenants[tenant] = w
	return fresh, false, nil
}

// joinAll acquires the views of groups, a few at a time, and joins each;
// on a failure it undoes every join. Groups the session came to follow
// meanwhile are left out.
func (s *session) joinAll(l *login, groups []subjects.Group, w wants, tenant string) ([]*joined, error) {
	// as long as the groups would take a Subscribe each, tenantLoads at a time
	ctx, cancel := context.WithTimeout(l.ctx, s.srv.cfg.SubscribeTimeout*time.Duration(1+len(groups)/tenantLoads))
	defer cancel()
	joins := make([]*joined, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	turn := make(chan struct{}, tenantLoads)
	for i, g := range groups {
		wg.Add(1)
		turn <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-turn }()
			joins[i], errs[i] = s.follow(ctx, l, g, w, tenant)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, j := range joins {
			if j != nil {
				s.undo(l, j)
			}
		}
		return nil, err
	}
	return slices.DeleteFunc(joins, func(j *joined) bool { return j == nil }), nil
}

// follow acquires a group's view (with statistics when asked) and joins
// it; nil when the session follows the group already.
func (s *session) follow(ctx context.Context, l *login, g subjects.Group, w wants, tenant string) (*joined, error) {
	v, err := s.srv.hub.acquire(ctx, g)
	if err == nil && w.stats {
		if err = v.ensureStats(ctx); err != nil {
			v.release()
		}
	}
	if err != nil {
		return nil, err
	}
	j, fault := s.join(ctx, l, v, nil, w, tenant)
	if fault != nil {
		return nil, fault
	}
	return j, nil
}

// undo takes back a joined subscription whose initial data was never
// queued.
func (s *session) undo(l *login, j *joined) {
	j.p.cancel()
	s.mu.Lock()
	if l.subs != nil && l.subs[j.v.group.ServiceGroupID] == j.sb {
		delete(l.subs, j.v.group.ServiceGroupID)
	}
	s.mu.Unlock()
	s.drop(j.sb)
}

// unsubscribeTenant ends a tenant-wide subscription and the subscriptions
// it made (groups subscribed by themselves stay).
func (s *session) unsubscribeTenant(l *login, req *protocol.Request) *protocol.Fault {
	s.mu.Lock()
	if _, ok := l.tenants[req.TenantID]; !ok {
		s.mu.Unlock()
		return protocol.Faultf(protocol.InvalidServiceGroupFault, "not subscribed to tenant %q with AllGroups", req.TenantID)
	}
	delete(l.tenants, req.TenantID)
	var gone []*sub
	for id, sb := range l.subs {
		if sb.tenant == req.TenantID {
			gone = append(gone, sb)
			delete(l.subs, id)
		}
	}
	s.mu.Unlock()
	for _, sb := range gone {
		s.drop(sb)
	}
	return orGone(s.reply(l, req, nil))
}

// groupAdded subscribes the sessions with a tenant-wide subscription of
// its tenant to a group added to the directory: initial data, then live.
// Each session takes its added groups one after another, in a goroutine
// of its own while it has some: a directory that gains thousands of groups
// at once costs a goroutine per session, not one per session and group.
func (s *Server) groupAdded(g subjects.Group) {
	s.eachSession(func(ss *session) {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		l := ss.login
		if l == nil || l.tenants == nil {
			return
		}
		w, follows := l.tenants[g.TenantID]
		if _, already := l.subs[g.ServiceGroupID]; !follows || already {
			return
		}
		ss.added = append(ss.added, addedGroup{l: l, g: g, w: w})
		if ss.adding {
			return
		}
		ss.adding = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ss.followAddedGroups()
		}()
	})
}

// addedGroup is a group added to a tenant a session follows, waiting to be
// subscribed.
type addedGroup struct {
	l *login
	g subjects.Group
	w wants
}

// followAddedGroups subscribes the session to the groups added to its
// tenants, one at a time, until none waits.
func (s *session) followAddedGroups() {
	for {
		s.mu.Lock()
		if len(s.added) == 0 {
			s.adding = false
			s.mu.Unlock()
			return
		}
		a := s.added[0]
		s.added = s.added[1:]
		s.mu.Unlock()
		s.followAdded(a.l, a.g, a.w)
	}
}

// followAdded subscribes a tenant-wide subscriber to a group added later.
// Past the session's bound it is left out (logged); a group that cannot
// be followed closes the connection with 4010, saying which.
func (s *session) followAdded(l *login, g subjects.Group, w wants) {
	s.mu.Lock()
	n := len(l.subs)
	s.mu.Unlock()
	if max := s.srv.cfg.Limits.Subscriptions; max >= 0 && n >= max {
		s.srv.hit(limitSubscriptions, s.remote)
		s.srv.log.Warn().Str("group", g.ServiceGroupID).Str("remote", s.remote).Int("limit", max).
			Msg("a group added to a tenant is not subscribed: the session follows as many groups as it may")
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, s.srv.cfg.SubscribeTimeout)
	defer cancel()
	j, err := s.follow(ctx, l, g, w, g.TenantID)
	switch {
	case errors.Is(err, errEnded) || l.ctx.Err() != nil:
		return
	case err != nil:
		s.t.closeWith(protocol.CloseGroupUnavailable, "service group "+g.ServiceGroupID+" added to tenant "+g.TenantID+" cannot be followed now")
		return
	case j != nil:
		s.begin(l, j)
	}
}

// groupRemoved ends every subscription to a group removed from the
// directory with ServiceGroupRemoved.
func (s *Server) groupRemoved(id string) {
	s.eachSession(func(ss *session) {
		ss.mu.Lock()
		l := ss.login
		var sb *sub
		if l != nil && l.subs != nil {
			if sb = l.subs[id]; sb != nil {
				delete(l.subs, id)
			}
		}
		ss.mu.Unlock()
		if sb == nil {
			return
		}
		ss.drop(sb)
		ss.t.send(ss.t.event(l.gen, protocol.AppendServiceGroupRemoved(ss.t.format, nil, id)))
	})
}
