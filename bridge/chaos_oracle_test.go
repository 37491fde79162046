package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// The oracle of TestChaos: what each chaos client holds, checked against
// every event and reply it gets, and at the end against the stream's
// history.

// check names a property of the protocol the oracle checks; findings are
// grouped by it.
type check string

// The checks.
const (
	checkAfterRD   check = "nothing of a session after its RouterDisconnected"
	checkPositions check = "positions 1..n after every event"
	checkSeq       check = "Seq continuity"
	checkUpdates   check = "updates fit what the client holds"
	checkHistory   check = "the client's view equals the stream's history"
	checkResume    check = "resume"
	checkReplies   check = "one reply or fault per request"
	checkFaults    check = "replies and faults as the protocol says"
	checkClose     check = "close codes"
	checkCatchUp   check = "every event delivered (caught up at the end)"
	checkSeats     check = "seats freed"
	checkMemory    check = "memory bounded"
	checkReplay    check = "the stream's history replays at the end"
	checkFresh     check = "a new client gets every group after the chaos"
)

// knownBugs says what each check found in an earlier gateway (fixed, with
// a test each in edges_test.go): a hint where a failure may come from.
var knownBugs = map[check]string{
	checkAfterRD:   "once found: a Subscribe in flight when the router link drops still gets its reply, initial data and InitialDataComplete after RouterDisconnected",
	checkPositions: "once found (in a resumed event): resumed history is cut into events every 500 updates even inside one change",
	checkMemory:    "once found: initial data is queued without bound outside the outbound limit",
}

// findings collects what the checks found, from every goroutine.
type findings struct {
	mu    sync.Mutex
	count map[check]int
	first map[check][]string
}

// newFindings returns an empty collection of findings.
func newFindings() *findings {
	return &findings{count: map[check]int{}, first: map[check][]string{}}
}

// add records one finding; the first few of each check keep their message.
func (f *findings) add(c check, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count[c]++
	if len(f.first[c]) < 4 {
		f.first[c] = append(f.first[c], fmt.Sprintf(format, args...))
	}
}

// report fails t once per check that found something, with the seed and a
// command that runs it again.
func (f *findings) report(t *testing.T, seed uint64, dur time.Duration) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	checks := make([]check, 0, len(f.count))
	for c := range f.count {
		checks = append(checks, c)
	}
	slices.Sort(checks)
	for _, c := range checks {
		msg := fmt.Sprintf("seed %d: check %q failed %d times:\n    %s", seed, c, f.count[c], strings.Join(f.first[c], "\n    "))
		if bug, ok := knownBugs[c]; ok {
			msg += "\n    (" + bug + ")"
		}
		t.Error(msg)
	}
	if len(checks) > 0 {
		t.Errorf("seed %d failed; reproduce with: SIS_CHAOS_SEEDS=%d SIS_CHAOS_DURATION=%s go test -race -count=1 -timeout 0 -run '^TestChaos$' ./bridge",
			seed, seed, dur)
	}
}

// sessionPrint hashes one session of a client's view: its CallID and, for
// a client with position updates, its position. A view's fingerprint is the
// sum over its sessions, so that it follows every update in O(1).
func sessionPrint(id string, pos int) uint64 {
	x := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		x ^= uint64(id[i])
		x *= 1099511628211
	}
	x += uint64(pos) * 0x9E3779B97F4A7C15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// queuePrint is the fingerprint of a queue as a client with or without
// position updates holds it.
func queuePrint(q *queue.Queue, positions bool) uint64 {
	var sum uint64
	for _, s := range q.Sessions() {
		sum += sessionPrint(s.CallID, b2pos(positions, s.QueuePosition))
	}
	return sum
}

// b2pos is the position a client with or without position updates
// fingerprints: pos, or 0.
func b2pos(positions bool, pos int) int {
	if positions {
		return pos
	}
	return 0
}

// groupView is what a client holds of one group in one subscription.
type groupView struct {
	id         string
	pos        map[string]int // CallID → QueuePosition as last told
	print      uint64
	complete   bool   // InitialDataComplete came
	resumed    bool   // Resumed: the events before InitialDataComplete apply to a complete view
	resumeFrom uint64 // the ResumeFromSeq of a resumed subscription
	initSeq    uint64 // the Seq of the initial-data events
	hasInit    bool
	lastSeq    uint64
	broken     bool // an update did not fit: nothing more is checked
}

// newGroupView returns the empty view a subscription starts from.
func newGroupView(id string) *groupView { return &groupView{id: id, pos: map[string]int{}} }

// update applies one SessionUpdate.
func (gv *groupView) update(u *protocol.SessionUpdate, positions bool) error {
	id, p := u.Session.CallID, u.Session.QueuePosition
	old, held := gv.pos[id]
	if u.Session.ServiceGroupID != gv.id {
		return fmt.Errorf("%s of %s names group %q", u.UpdateType, id, u.Session.ServiceGroupID)
	}
	switch {
	case u.UpdateType == "Add" && !held:
		gv.print += sessionPrint(id, b2pos(positions, p))
	case u.UpdateType == "Remove" && held:
		gv.print -= sessionPrint(id, b2pos(positions, old))
		delete(gv.pos, id)
		return nil
	case u.UpdateType == "Modify" && held && positions:
		gv.print += sessionPrint(id, p) - sessionPrint(id, old)
	default:
		return fmt.Errorf("%s of %s (held %v, client with positions %v)", u.UpdateType, id, held, positions)
	}
	gv.pos[id] = p
	return nil
}

// checkPositions reports whether the positions held run 1..n; seen is
// scratch space.
func (gv *groupView) checkPositions(seen []bool) ([]bool, error) {
	n := len(gv.pos)
	seen = slices.Grow(seen[:0], n+1)[:n+1]
	clear(seen)
	for id, p := range gv.pos {
		if p < 1 || p > n || seen[p] {
			return seen, fmt.Errorf("%s holds position %d among %d sessions", id, p, n)
		}
		seen[p] = true
	}
	return seen, nil
}

// pendingSub is a Subscribe sent and not yet answered: the group's events
// wait until the reply says what they apply to.
type pendingSub struct {
	buf []protocol.Message
}

// clientView is what one chaos client holds, as the events and replies of
// its connections tell; OnEvent (the reader goroutine) and the client's
// actor both update it.
type clientView struct {
	name      string
	positions bool
	f         *findings
	obs       *observations
	stats     *runStats

	mu        sync.Mutex
	conn      string // the client and its connection, in findings
	session   bool   // an Initialize succeeded, and no RouterDisconnected since
	rd        bool   // a RouterDisconnected ended the last session
	gen       int    // sessions' ends (RouterDisconnected, connection ends)
	quiet     string // why no group event may come now ("" when they may)
	groups    map[string]*groupView
	pending   map[string]*pendingSub
	dead      map[string]bool       // groups of the session RouterDisconnected ended
	retained  map[string]*groupView // complete views of ended subscriptions, to resume from
	keepAlive bool                  // a KeepAlive waits for its Heartbeat
	awaitRD   time.Time             // a RouterDisconnected must come by then (see noSession)
	doubt     bool                  // an Initialize succeeded with a RouterDisconnected seen meanwhile: whether the session is on is not known yet
	seen      []bool
}

// newClientView returns the view of a client that has no connection yet.
func newClientView(name string, positions bool, f *findings, obs *observations, stats *runStats) *clientView {
	return &clientView{name: name, positions: positions, f: f, obs: obs, stats: stats, groups: map[string]*groupView{},
		pending: map[string]*pendingSub{}, dead: map[string]bool{}, retained: map[string]*groupView{}}
}

// who names the client and its connection in findings.
func (v *clientView) who() string { return v.conn }

// newConnection starts the view of the client's n-th connection: no
// session, no subscription; what the old one held stays retained.
func (v *clientView) newConnection(n int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.endSession("on a connection before its first Subscribe")
	clear(v.dead)
	v.rd = false
	v.conn = fmt.Sprintf("%s#%d", v.name, n)
	v.keepAlive = false
}

// endSession forgets the session: complete views are retained.
func (v *clientView) endSession(quiet string) {
	for g, gv := range v.groups {
		v.retain(gv)
		v.dead[g] = true
	}
	for g := range v.pending {
		v.dead[g] = true
	}
	clear(v.groups)
	clear(v.pending)
	v.gen++
	v.session, v.quiet, v.awaitRD, v.doubt = false, quiet, time.Time{}, false
}

// retain keeps a complete view of an ended subscription to resume from.
func (v *clientView) retain(gv *groupView) {
	if gv.complete && !gv.broken {
		v.retained[gv.id] = gv
	}
}

// onEvent checks and applies one event.
func (v *clientView) onEvent(ev protocol.Message) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats.events.Add(1)
	switch ev.Event {
	case protocol.EventKeepAlive:
		v.keepAlive = true
	case protocol.EventRouterDisconnected:
		v.stats.disconnects.Add(1)
		v.endSession("after RouterDisconnected, before a new Initialize and Subscribe")
		v.rd = true
	case protocol.EventSessionsUpdated, protocol.EventInitialDataComplete:
		v.groupEvent(ev)
	}
}

// groupEvent routes an event of a group: to its pending Subscribe, to its
// view, or to a finding.
func (v *clientView) groupEvent(ev protocol.Message) {
	g := ev.ServiceGroupID
	gv, p := v.groups[g], v.pending[g]
	switch {
	case v.quiet != "" && v.dead[g]:
		v.f.add(checkAfterRD, "%s: %s of %s (Seq %d, %d updates) %s", v.who(), ev.Event, g, ev.Seq, len(ev.SessionUpdates), v.quiet)
	case v.quiet != "":
		v.f.add(checkUpdates, "%s: %s of %s (Seq %d) %s", v.who(), ev.Event, g, ev.Seq, v.quiet)
	case p != nil:
		p.buf = append(p.buf, ev)
	case gv == nil:
		v.f.add(checkUpdates, "%s: %s of %s (Seq %d), a group it is not subscribed to", v.who(), ev.Event, g, ev.Seq)
	case !gv.broken:
		v.apply(gv, ev)
	}
}

// apply checks and applies an event to the group's view.
func (v *clientView) apply(gv *groupView, ev protocol.Message) {
	if ev.Event == protocol.EventInitialDataComplete {
		v.initialDataComplete(gv, ev)
		return
	}
	v.checkSeq(gv, ev)
	for i := range ev.SessionUpdates {
		if err := gv.update(&ev.SessionUpdates[i], v.positions); err != nil {
			v.f.add(checkUpdates, "%s: %s Seq %d (update %d of %d, complete %v, resumed %v): %v", v.who(), gv.id, ev.Seq, i+1,
				len(ev.SessionUpdates), gv.complete, gv.resumed, err)
			gv.broken = true
			return
		}
	}
	if v.positions && (gv.complete || gv.resumed) {
		v.checkPositions(gv, ev.Seq, len(ev.SessionUpdates))
	}
	if gv.complete || gv.resumed { // a resumed event leaves the view at its Seq, as a live one does
		gv.lastSeq = ev.Seq
		v.obs.add(gv.id, ev.Seq, v.positions, gv.print, v.who())
	}
}

// checkSeq: live Seqs strictly increase from InitialDataComplete's on, and
// resumed ones from ResumeFromSeq on (each the Seq of its last change);
// the events of full initial data all carry one Seq.
func (v *clientView) checkSeq(gv *groupView, ev protocol.Message) {
	switch {
	case gv.complete && ev.Seq <= gv.lastSeq:
		v.f.add(checkSeq, "%s: live SessionsUpdated of %s with Seq %d after Seq %d", v.who(), gv.id, ev.Seq, gv.lastSeq)
	case gv.complete:
	case gv.resumed && ev.Seq <= max(gv.lastSeq, gv.resumeFrom):
		v.f.add(checkSeq, "%s: resumed SessionsUpdated of %s with Seq %d after Seq %d", v.who(), gv.id, ev.Seq, max(gv.lastSeq, gv.resumeFrom))
	case gv.resumed:
	case gv.hasInit && ev.Seq != gv.initSeq:
		v.f.add(checkSeq, "%s: initial-data events of %s with Seq %d and then %d", v.who(), gv.id, gv.initSeq, ev.Seq)
	default:
		gv.initSeq, gv.hasInit = ev.Seq, true
	}
}

// checkPositions checks the positions a client holds run 1..n after an
// event.
func (v *clientView) checkPositions(gv *groupView, seq uint64, updates int) {
	var err error
	if v.seen, err = gv.checkPositions(v.seen); err != nil {
		phase := "live"
		if !gv.complete {
			phase = fmt.Sprintf("resumed from Seq %d", gv.resumeFrom)
		}
		v.f.add(checkPositions, "%s: %s after the event of Seq %d (%s, %d updates): %v", v.who(), gv.id, seq, phase, updates, err)
	}
}

// initialDataComplete checks InitialDataComplete against the events before
// it, and completes the view.
func (v *clientView) initialDataComplete(gv *groupView, ev protocol.Message) {
	switch {
	case gv.complete:
		v.f.add(checkSeq, "%s: a second InitialDataComplete of %s (Seq %d)", v.who(), gv.id, ev.Seq)
		return
	case gv.resumed && ev.Seq < max(gv.lastSeq, gv.resumeFrom):
		v.f.add(checkSeq, "%s: %s resumed to Seq %d, InitialDataComplete %d", v.who(), gv.id, max(gv.lastSeq, gv.resumeFrom), ev.Seq)
	case !gv.resumed && gv.hasInit && ev.Seq != gv.initSeq:
		v.f.add(checkSeq, "%s: initial-data events of %s carry Seq %d, InitialDataComplete %d", v.who(), gv.id, gv.initSeq, ev.Seq)
	case gv.resumed && ev.Seq < gv.resumeFrom:
		v.f.add(checkResume, "%s: %s resumed from Seq %d to Seq %d", v.who(), gv.id, gv.resumeFrom, ev.Seq)
	}
	gv.complete, gv.lastSeq = true, ev.Seq
	if v.positions {
		v.checkPositions(gv, ev.Seq, 0)
	}
	v.obs.add(gv.id, ev.Seq, v.positions, gv.print, v.who())
}

// token is what a client knew when it sent a request.
type token struct {
	gen     int
	session bool
	doubt   bool // whether the session is on is not known (see clientView.doubt)
	rd      bool // no session, as a RouterDisconnected said
	pending bool // a Subscribe of a group not subscribed: its events wait
}

// sending notes a request about to go; a Subscribe (group "" for others)
// in a session allows group events again, and one of a group not
// subscribed makes its events wait for the reply.
func (v *clientView) sending(subscribe bool, group string) token {
	v.mu.Lock()
	defer v.mu.Unlock()
	tok := token{gen: v.gen, session: v.session, rd: v.rd, doubt: v.doubt}
	if subscribe && v.session {
		v.quiet = ""
	}
	if subscribe && group != "" && v.groups[group] == nil && v.pending[group] == nil {
		v.pending[group] = &pendingSub{}
		tok.pending = true
	}
	return tok
}

// resumePoint returns the Seq of a retained view of the group.
func (v *clientView) resumePoint(group string) (uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	gv := v.retained[group]
	if gv == nil {
		return 0, false
	}
	return gv.lastSeq, true
}

// faultOf returns the fault type of a request's error; ok false when the
// request got no reply at all.
func faultOf(err error) (protocol.FaultType, bool) {
	var f *protocol.Fault
	if errors.As(err, &f) {
		return f.Type, true
	}
	return "", false
}

// noReply judges a request that got no reply: fine when the connection
// ended, a finding when the reply is overdue.
func (v *clientView) noReply(op string, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		v.f.add(checkReplies, "%s: no reply to %s within %s", v.who(), op, replyTimeout)
	}
}

// afterInitialize judges an Initialize's reply.
func (v *clientView) afterInitialize(tok token, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	same := tok.gen == v.gen
	ft, replied := faultOf(err)
	switch {
	case err == nil && same && tok.session && !tok.doubt:
		v.f.add(checkFaults, "%s: a second Initialize on a session succeeded: the gateway had ended the session "+
			"with no RouterDisconnected after the reply that started it", v.who())
	case err == nil:
		// The client package hands a reply to its caller while its reader
		// goes on with the events after it: a RouterDisconnected seen
		// since the request went may have come before this reply (the
		// session is on) or after it (the session is over).
		v.session, v.rd, v.doubt = true, false, !same
	case !replied:
		v.noReply("Initialize", err)
	case ft == protocol.RouterDisconnectedFault:
	case ft == protocol.InvalidRequestFault && (tok.session || tok.doubt):
		v.doubt = false // already initialized: the session is on
	default:
		v.f.add(checkFaults, "%s: Initialize (session %v): %v", v.who(), tok.session, err)
	}
}

// afterHeartbeat judges a Heartbeat's reply.
func (v *clientView) afterHeartbeat(tok token, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ft, replied := faultOf(err)
	switch {
	case !replied && err != nil:
		v.noReply("Heartbeat", err)
	case err == nil && !tok.session && tok.gen == v.gen:
		v.f.add(checkFaults, "%s: Heartbeat without a session succeeded", v.who())
	case err == nil:
		v.doubt = v.doubt && tok.gen != v.gen // answered: the session is on
	case ft == protocol.InvalidRequestFault:
		v.noSession(tok)
	default:
		v.f.add(checkFaults, "%s: Heartbeat (session %v): %v", v.who(), tok.session, err)
	}
}

// afterMalformed judges the reply to a malformed request: it wants one of
// the faults ok, or InvalidRequestFault when the session is gone.
func (v *clientView) afterMalformed(op string, tok token, err error, ok ...protocol.FaultType) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ft, replied := faultOf(err)
	switch {
	case !replied && err != nil:
		v.noReply(op, err)
	case err != nil && slices.Contains(ok, ft):
	case ft == protocol.InvalidRequestFault:
		v.noSession(tok)
	default:
		v.f.add(checkFaults, "%s: %s wants one of %v, got %v", v.who(), op, ok, err)
	}
}

// noSession takes an InvalidRequestFault that says the session is gone:
// fine when the client knew, else a RouterDisconnected must follow soon.
func (v *clientView) noSession(tok token) {
	if tok.doubt && tok.gen == v.gen { // the RouterDisconnected seen came after the reply: no session
		v.endSession("after the RouterDisconnected that came after an Initialize's reply")
		v.doubt = false
		return
	}
	if tok.session && tok.gen == v.gen && v.awaitRD.IsZero() {
		v.awaitRD = time.Now().Add(rdGrace)
	}
}

// overdueRD reports (once) an InvalidRequestFault for a session the client
// held that no RouterDisconnected explained within rdGrace.
func (v *clientView) overdueRD() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.awaitRD.IsZero() && time.Now().After(v.awaitRD) {
		v.f.add(checkFaults, "%s: InvalidRequestFault for the session it holds, and no RouterDisconnected within %s", v.who(), rdGrace)
		v.awaitRD = time.Time{}
	}
}

// afterUnsubscribe judges an Unsubscribe's reply and ends the view.
func (v *clientView) afterUnsubscribe(group string, tok token, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	same := tok.gen == v.gen
	gv := v.groups[group]
	ft, replied := faultOf(err)
	switch {
	case !replied && err != nil:
		v.noReply("Unsubscribe", err)
	case !same:
	case err == nil && gv == nil:
		v.f.add(checkFaults, "%s: Unsubscribe of %s, not subscribed, succeeded", v.who(), group)
	case err == nil:
		v.retain(gv)
		delete(v.groups, group)
	case ft == protocol.InvalidServiceGroupFault && gv == nil:
	case ft == protocol.InvalidRequestFault:
		v.noSession(tok)
	default:
		v.f.add(checkFaults, "%s: Unsubscribe of %s (subscribed %v, session %v): %v", v.who(), group, gv != nil, tok.session, err)
	}
}

// subReq is a Subscribe as the actor meant it.
type subReq struct {
	group  string  // the group it names ("" when it names none that exists)
	resume *uint64 // ResumeFromSeq
	bogus  bool    // the ResumeFromSeq is beyond anything the group reaches
}

// afterSubscribe judges a Subscribe's reply; on success the group's view
// starts (from the retained view when resumed) and the events that waited
// apply.
func (v *clientView) afterSubscribe(s subReq, tok token, res *protocol.Result, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pending[s.group]
	if tok.pending {
		delete(v.pending, s.group)
	}
	if tok.gen != v.gen {
		return // the session ended meanwhile: what came after that is checked as it came
	}
	if err != nil {
		v.subscribeFault(s, tok, p, err)
		return
	}
	ok := res.Succeeded != nil && *res.Succeeded
	switch {
	case !tok.session && tok.rd:
		v.f.add(checkAfterRD, "%s: Subscribe of %q sent after RouterDisconnected (and no Initialize since) succeeded", v.who(), s.group)
	case !tok.session:
		v.f.add(checkFaults, "%s: Subscribe without a session succeeded", v.who())
	case s.group == "":
		v.f.add(checkFaults, "%s: Subscribe of a group that does not exist succeeded (%s)", v.who(), res.ServiceGroupID)
	case res.ServiceGroupID != s.group:
		v.f.add(checkFaults, "%s: Subscribe of %s answered for %q", v.who(), s.group, res.ServiceGroupID)
	case ok != tok.pending:
		v.f.add(checkFaults, "%s: Subscribe of %s: Succeeded %v, already subscribed %v", v.who(), s.group, ok, !tok.pending)
	case ok:
		gv := v.startView(s, res)
		v.groups[s.group] = gv
		for _, ev := range p.buf {
			if !gv.broken {
				v.apply(gv, ev)
			}
		}
	}
}

// subscribeFault judges a Subscribe that failed.
func (v *clientView) subscribeFault(s subReq, tok token, p *pendingSub, err error) {
	ft, replied := faultOf(err)
	switch {
	case !replied:
		v.noReply("Subscribe", err)
	case p != nil && len(p.buf) > 0:
		v.f.add(checkUpdates, "%s: %d events of %s came for a Subscribe that failed: %v", v.who(), len(p.buf), s.group, err)
	case ft == protocol.RouterDisconnectedFault:
	case ft == protocol.InvalidRequestFault:
		v.noSession(tok)
	case ft == protocol.InvalidServiceGroupFault && s.group == "":
	default:
		v.f.add(checkFaults, "%s: Subscribe of %q (session %v): %v", v.who(), s.group, tok.session, err)
	}
}

// startView makes the view a successful Subscribe starts: empty, or the
// retained view it resumes.
func (v *clientView) startView(s subReq, res *protocol.Result) *groupView {
	gv := newGroupView(s.group)
	if s.resume == nil {
		return gv
	}
	switch {
	case res.Resumed == nil:
		v.f.add(checkResume, "%s: Subscribe of %s with ResumeFromSeq: no Resumed in the reply", v.who(), s.group)
		gv.broken = true
	case !*res.Resumed:
		v.stats.fullData.Add(1)
	case s.bogus:
		v.f.add(checkResume, "%s: %s resumed from Seq %d, which it never reached", v.who(), s.group, *s.resume)
		gv.broken = true
	case *s.resume == 0:
		gv.resumed = true
		v.stats.resumed.Add(1)
	default:
		base := v.retained[s.group]
		if base == nil || base.lastSeq != *s.resume {
			gv.broken = true // the actor resumes only from a Seq it holds
			return gv
		}
		delete(v.retained, s.group)
		gv.pos, gv.print, gv.resumed, gv.resumeFrom = base.pos, base.print, true, *s.resume
		v.stats.resumed.Add(1)
	}
	return gv
}

// takeKeepAlive reports (once) that a KeepAlive came.
func (v *clientView) takeKeepAlive() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	ka := v.keepAlive
	v.keepAlive = false
	return ka
}

// hasSession reports whether the client holds a session.
func (v *clientView) hasSession() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.session
}

// subscribed lists the groups the client holds a view of.
func (v *clientView) subscribed() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for g := range v.groups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// lagging lists the groups whose view has not reached its final Seq (see
// finalSeqs).
func (v *clientView) lagging(final map[string][2]uint64) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	kind := b2pos(v.positions, 1)
	var out []string
	for g, gv := range v.groups {
		if want := final[g][kind]; !gv.broken && (!gv.complete || gv.lastSeq < want) {
			out = append(out, fmt.Sprintf("%s of %s at Seq %d (complete %v), router at %d", v.who(), g, gv.lastSeq, gv.complete, want))
		}
	}
	return out
}

// observations are the fingerprints clients held at each Seq of a group,
// checked against the stream's history at the end.
type observations struct {
	mu    sync.Mutex
	first map[obsKey]obsVal
	other []obsEntry // observations that differ from the first of their key
	n     int
}

type obsKey struct {
	group     string
	seq       uint64
	positions bool
}

type obsVal struct {
	print uint64
	who   string
}

type obsEntry struct {
	obsKey
	obsVal
}

// newObservations returns an empty collection of observations.
func newObservations() *observations { return &observations{first: map[obsKey]obsVal{}} }

// add notes the fingerprint a client held for a group at a Seq.
func (o *observations) add(group string, seq uint64, positions bool, print uint64, who string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	k := obsKey{group, seq, positions}
	if first, ok := o.first[k]; !ok {
		o.first[k] = obsVal{print, who}
	} else if first.print != print {
		o.other = append(o.other, obsEntry{k, obsVal{print, who}})
	}
}

// verify replays every group's events from JetStream and compares each
// observation with the queue at its Seq.
func (o *observations) verify(t *testing.T, e *env, f *findings) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	want, lost := map[obsKey]uint64{}, map[string]bool{}
	for _, g := range directoryGroupsFull(t, e) {
		if err := o.replay(e, g, want); err != nil {
			f.add(checkReplay, "%v", err)
			lost[g.ServiceGroupID] = true
		}
	}
	entries := make([]obsEntry, 0, len(o.first)+len(o.other))
	for k, val := range o.first {
		entries = append(entries, obsEntry{k, val})
	}
	for _, en := range append(entries, o.other...) {
		w, ok := want[en.obsKey]
		switch {
		case lost[en.group]:
		case !ok:
			f.add(checkHistory, "%s: %s at Seq %d, which the stream never reached", en.who, en.group, en.seq)
		case w != en.print:
			f.add(checkHistory, "%s: %s at Seq %d (positions %v) differs from the stream's history", en.who, en.group, en.seq, en.positions)
		}
	}
}

// replay fills want with the fingerprints of a group's queue at the Seqs
// observed.
func (o *observations) replay(e *env, g subjects.Group, want map[obsKey]uint64) error {
	q := queue.New(g.ServiceGroupID)
	note := func(seq uint64) {
		for _, pos := range []bool{false, true} {
			if k := (obsKey{g.ServiceGroupID, seq, pos}); o.wanted(k) {
				want[k] = queuePrint(q, pos)
			}
		}
	}
	note(0)
	return replayGroup(e, g, func(ev *subjects.Event) error {
		if _, err := q.Apply(ev.Change); err != nil {
			return err
		}
		note(ev.Seq)
		return nil
	})
}

// replayGroup calls fn for every event of a group in the stream, in order;
// their Seqs must run 1, 2, 3...
func replayGroup(e *env, g subjects.Group, fn func(*subjects.Event) error) error {
	hist, err := subjects.OpenHistory(e.Ctx, e.JS)
	if err == nil {
		var last uint64
		err = hist.Replay(e.Ctx, g.TenantID, g.ServiceGroupID, 1, 0, func(ev *subjects.Event, _ uint64) error {
			if ev.Seq != last+1 {
				return fmt.Errorf("event %d follows %d in the stream", ev.Seq, last)
			}
			last = ev.Seq
			return fn(ev)
		})
	}
	switch {
	case err != nil && strings.Contains(err.Error(), "maximum consumers"):
		return fmt.Errorf("replay of %s: %w (every replay and view leaves an ordered consumer on the events stream "+
			"for its 5-minute inactivity threshold; NATS allows 1,000 a stream)", g.ServiceGroupID, err)
	case err != nil:
		return fmt.Errorf("replay of %s: %w", g.ServiceGroupID, err)
	}
	return nil
}

// finalSeqs says, per group and kind of client, the Seq a client must reach
// at the end: the last, or for a client without position updates the last
// that added or removed a session (a move sends it nothing).
func finalSeqs(t *testing.T, e *env) (map[string][2]uint64, error) {
	t.Helper()
	out := map[string][2]uint64{}
	for _, g := range directoryGroupsFull(t, e) {
		var seqs [2]uint64
		err := replayGroup(e, g, func(ev *subjects.Event) error {
			seqs[1] = ev.Seq
			if ev.Change.Op != queue.OpMove {
				seqs[0] = ev.Seq
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out[g.ServiceGroupID] = seqs
	}
	return out, nil
}

// wanted reports whether a client held a group at the Seq of k.
func (o *observations) wanted(k obsKey) bool {
	_, ok := o.first[k]
	return ok
}
