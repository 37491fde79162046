package sim

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// handle simulates one event.
func (s *Sim) handle(e event) {
	g := s.groups[e.group]
	switch e.kind {
	case evArrival:
		s.onArrival(g)
	case evDispatch:
		g.dispatching = false
		s.dispatch(g)
	case evAgentFree:
		s.onAgentFree(g, e.agent)
	case evAbandon:
		s.leave(g, e, queue.CauseDisconnect)
	case evFail:
		s.leave(g, e, queue.CauseSessionFailed)
	case evOverflow:
		s.onOverflow(g, e)
	case evTransfer:
		s.onTransfer(g)
	case evPriority:
		s.onPriority(g)
	case evHours:
		s.onHours(g)
	case evCampaign:
		s.onCampaign(g)
	case evStaff:
		s.onStaff()
	case evLinkDrop:
		s.onLinkDrop()
	case evLinkUp:
		s.onLinkUp()
	case evRetire:
		s.onRetire()
	case evRestore:
		s.onRestore(g)
	}
}

// onArrival schedules the next candidate arrival and, following the daily
// profile (thinning), lets a session arrive now.
func (s *Sim) onArrival(g *group) {
	s.after(s.expDur(g.interarrival()), event{kind: evArrival, group: g.idx})
	if !g.open || s.rng.Float64() >= dailyProfile(s.local()) {
		return
	}
	m := g.pickMedia(s.rng.IntN(g.mixTotal))
	if m == queue.MediaCampaign && !g.campaignOn {
		return
	}
	s.enqueue(g, s.newCall(g, m))
}

// pickMedia returns the media type at weight w of the mix.
func (g *group) pickMedia(w int) queue.MediaType {
	for _, sh := range g.spec.mix {
		if w < sh.weight {
			return sh.media
		}
		w -= sh.weight
	}
	return g.spec.mix[len(g.spec.mix)-1].media
}

// enqueue puts a session into the group's queue: at the tail, or for Voice
// before the first callback, which wait behind live calls.
func (s *Sim) enqueue(g *group, c *call) {
	pos := 0
	if c.session.MediaType == queue.MediaVoice {
		pos = g.firstCallback()
	}
	s.ids.stint++
	c.stint = s.ids.stint
	c.session.TimeEnteredQueue = s.clock().UTC().Truncate(time.Millisecond)
	c.session.CallID, c.session.ServiceGroupID = c.id, g.info.ServiceGroupID
	if !s.emit(g, queue.Change{Op: queue.OpEnqueue, CallID: c.id, Position: pos, Session: c.session}) {
		return
	}
	g.calls[c.id] = c
	if isCallback(c.session.MediaType) {
		g.callbacks[c.id] = struct{}{}
	}
	s.scheduleFate(g, c)
	s.wantDispatch(g)
}

func isCallback(m queue.MediaType) bool {
	return m == queue.MediaCallback || m == queue.MediaWebCallBack
}

// firstCallback returns the position of the first queued callback, 0 when
// there is none.
func (g *group) firstCallback() int {
	first := 0
	for id := range g.callbacks {
		if p := g.q.Position(id); first == 0 || p < first {
			first = p
		}
	}
	return first
}

// scheduleFate schedules what may end the session's wait other than an
// agent: the customer's patience, the group's maximum wait, a failure.
func (s *Sim) scheduleFate(g *group, c *call) {
	m := c.session.MediaType
	ref := event{group: g.idx, stint: c.stint, call: c.id}
	if mean := patience(m); mean > 0 {
		s.after(10*time.Second+s.expDur(mean), with(ref, evAbandon))
	}
	if g.overflow >= 0 && !c.moved && g.spec.overflowAfter > 0 && (m == queue.MediaVoice || m == queue.MediaChat) {
		s.after(g.spec.overflowAfter, with(ref, evOverflow))
	}
	if s.rng.Float64() < failShare {
		s.after(s.uniform(2*time.Second, 4*time.Minute), with(ref, evFail))
	}
}

// live returns the session an event is about, or nil if the event is stale.
func (g *group) live(e event) *call {
	c := g.calls[e.call]
	if c == nil || c.stint != e.stint {
		return nil
	}
	return c
}

// remove takes a session out of the group's queue.
func (s *Sim) remove(g *group, c *call, cause queue.RemoveCause) bool {
	if !s.emit(g, queue.Change{Op: queue.OpRemove, CallID: c.id, Cause: cause}) {
		return false
	}
	delete(g.calls, c.id)
	delete(g.callbacks, c.id)
	return true
}

// leave removes the session of e, if still waiting, with cause.
func (s *Sim) leave(g *group, e event, cause queue.RemoveCause) {
	if c := g.live(e); c != nil {
		s.remove(g, c, cause)
	}
}

// wantDispatch lets idle agents look at the queue after a short routing
// delay.
func (s *Sim) wantDispatch(g *group) {
	if g.dispatching || len(g.idle) == 0 {
		return
	}
	g.dispatching = true
	s.after(s.uniform(time.Second, 4*time.Second), event{kind: evDispatch, group: g.idx})
}

// dispatch gives waiting sessions to idle agents, longest idle first.
func (s *Sim) dispatch(g *group) {
	kept := g.idle[:0]
	for i, a := range g.idle {
		if g.q.Len() == 0 {
			kept = append(kept, g.idle[i:]...)
			break
		}
		switch {
		case a >= g.onDuty:
			g.agents[a].state = agentOff
		case !s.allocate(g, a):
			kept = append(kept, a)
		}
	}
	g.idle = kept
}

// allocate gives agent a the first session it may take: one without a
// preferred agent, one preferring a, or one that waited long enough for
// its preferred agent.
func (s *Sim) allocate(g *group, a int) bool {
	ag := &g.agents[a]
	now := s.clock()
	var pick string
	g.q.Range(1, scanDepth, func(ss queue.Session) bool {
		if ss.PreferredAgentID == 0 || ss.PreferredAgentID == ag.id || now.Sub(ss.TimeEnteredQueue) >= preferWait {
			pick = ss.CallID
			return false
		}
		return true
	})
	if pick == "" || !s.remove(g, g.calls[pick], queue.CauseSessionAllocatedToAgent) {
		return false
	}
	ag.state = agentBusy
	s.after(s.handleTime(g), event{kind: evAgentFree, group: g.idx, agent: a})
	return true
}

// onAgentFree: an agent finished a session. On duty, it takes the next one
// it may, or waits; else it goes home.
func (s *Sim) onAgentFree(g *group, a int) {
	switch {
	case a >= g.onDuty:
		g.agents[a].state = agentOff
	case !s.allocate(g, a):
		g.agents[a].state = agentIdle
		g.idle = append(g.idle, a)
	}
}

// onOverflow moves a session that waited too long to the overflow group,
// if that is open and takes its media.
func (s *Sim) onOverflow(g *group, e event) {
	c := g.live(e)
	to := s.groups[g.overflow]
	if c == nil || !to.open || !to.accepts(c.session.MediaType) {
		return
	}
	if s.remove(g, c, queue.CauseOverflow) {
		s.moveTo(to, c)
	}
}

// moveTo enqueues a session that left another group.
func (s *Sim) moveTo(g *group, c *call) {
	c.moved = true
	c.session.PreferredAgentID = 0
	s.enqueue(g, c)
}

// onTransfer: a supervisor transfers a waiting session out of the queue,
// half the time into another open group of the tenant taking its media.
func (s *Sim) onTransfer(g *group) {
	s.after(s.expDur(s.perRate(transferMean)), event{kind: evTransfer, group: g.idx})
	n := g.q.Len()
	if n == 0 {
		return
	}
	ss, _ := g.q.At(1 + s.rng.IntN(n))
	if ss.MediaType == queue.MediaCampaign {
		return
	}
	c := g.calls[ss.CallID]
	if !s.remove(g, c, queue.CauseCallTransferred) || len(g.siblings) == 0 || s.rng.IntN(2) == 0 {
		return
	}
	to := s.groups[g.siblings[s.rng.IntN(len(g.siblings))]]
	if to.open && to.accepts(ss.MediaType) {
		s.moveTo(to, c)
	}
}

// onPriority moves a waiting Voice or Chat session towards the front, as a
// supervisor or a priority rule does.
func (s *Sim) onPriority(g *group) {
	s.after(s.expDur(s.perRate(priorityMean)), event{kind: evPriority, group: g.idx})
	n := g.q.Len()
	if n < 3 {
		return
	}
	p := 3 + s.rng.IntN(n-2)
	ss, _ := g.q.At(p)
	if ss.MediaType != queue.MediaVoice && ss.MediaType != queue.MediaChat {
		return
	}
	s.emit(g, queue.Change{Op: queue.OpMove, CallID: ss.CallID, Position: 1 + s.rng.IntN(p/2)})
}

// onHours opens or closes the group. Closing flushes its queue.
func (s *Sim) onHours(g *group) {
	s.after(s.untilHours(g), event{kind: evHours, group: g.idx})
	open := g.openAt(s.local()) && !g.retired
	if open == g.open {
		return
	}
	g.open = open
	if !open {
		s.flush(g, queue.CauseServiceGroupClosed, func(queue.MediaType) bool { return true })
	}
	s.staff(g)
}

// onCampaign pauses the group's campaign, removing its queued Campaign
// sessions, or resumes it.
func (s *Sim) onCampaign(g *group) {
	ev := event{kind: evCampaign, group: g.idx}
	g.campaignOn = !g.campaignOn
	if g.campaignOn {
		s.after(30*time.Minute+s.expDur(campaignRunMean), ev)
		return
	}
	s.flush(g, queue.CauseCampaignNotRunning, func(m queue.MediaType) bool { return m == queue.MediaCampaign })
	s.after(s.uniform(5*time.Minute, 20*time.Minute), ev)
}

// flush removes every queued session whose media matches, front to back.
func (s *Sim) flush(g *group, cause queue.RemoveCause, match func(queue.MediaType) bool) {
	for _, ss := range g.q.Sessions() {
		if match(ss.MediaType) && !s.remove(g, g.calls[ss.CallID], cause) {
			return
		}
	}
}

// onStaff changes shifts in every group.
func (s *Sim) onStaff() {
	s.after(staffEvery, event{kind: evStaff})
	for _, g := range s.groups {
		s.staff(g)
	}
}
