// Package sim is a contact-centre router simulator: a router.Source whose
// tenants, service groups and queues are made up, plausibly and
// reproducibly. Sessions of every media type arrive following a daily
// profile, wait, and leave: allocated to an agent, abandoned, overflowed to
// another group, transferred, failed, flushed when the group closes or when
// its campaign pauses.
//
// The simulation is a discrete-event one on simulated time, driven by a PCG
// generator seeded from Config.Seed: the same Seed and Start give the same
// sequence of Handler calls. Wall-clock time only paces it (Config.Speed).
// Each group's queue is a queue.Queue, so every change the simulator reports
// is valid by construction.
package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// ErrRunning is returned by Run when another Run of the same Sim is active.
var ErrRunning = errors.New("sim: already running")

var _ router.Source = (*Sim)(nil)

// pcgStream is the second PCG seed word: fixed, so that Seed alone picks the
// sequence.
const pcgStream = 0x5eed_5e55_10f0_b41d

// Sim is a simulated router. Create it with New; Run reports to a Handler.
// State and Now are safe to call while Run runs.
type Sim struct {
	cfg     Config
	running atomic.Bool

	mu      sync.Mutex // guards everything below
	origin  time.Time  // simulated time 0: Start - Warmup
	now     time.Duration
	rng     *rand.Rand
	agenda  agenda
	people  *people
	tenants []subjects.Tenant
	groups  []*group
	byID    map[string]*group
	ids     counters
	// link is whether the router link is up; reporting is false during the
	// warmup. Changes are reported only when both hold.
	link, reporting bool
	out             []report
	err             error
	// paceWall is the wall-clock time of simulated time paceSim while Run
	// paces the simulation (pacing).
	paceWall time.Time
	paceSim  time.Duration
	pacing   bool
}

// counters number calls, stints (one per stay in a queue) and agents.
type counters struct {
	call, stint uint64
	agent       int
}

// reportKind is what a report tells the Handler.
type reportKind uint8

const (
	repChange reportKind = iota + 1
	repLinkDown
	repLinkUp
	repRemoveGroup
	repPutGroup
)

// report is one Handler call, built while simulating an event and made after.
type report struct {
	kind   reportKind
	group  string
	change queue.Change
	reason string
	state  *router.State
}

// New builds the simulated contact centre and runs the warmup.
func New(cfg Config) (*Sim, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:    cfg,
		origin: cfg.Start.Add(-cfg.Warmup),
		rng:    rand.New(rand.NewPCG(cfg.Seed, pcgStream)),
		people: newPeople(),
	}
	s.build()
	s.scheduleStart()
	s.advance(cfg.Warmup)
	if s.err != nil {
		return nil, s.err
	}
	s.reporting = true
	if cfg.LinkDrops {
		s.after(s.expDur(linkDropMean), event{kind: evLinkDrop})
	}
	if cfg.GroupChurn {
		s.after(s.expDur(groupChurnMean), event{kind: evRetire})
	}
	return s, nil
}

// advance simulates every event up to and including simulated time until,
// then sets the clock to it. Nothing is reported.
func (s *Sim) advance(until time.Duration) {
	for {
		at, ok := s.agenda.next()
		if !ok || at > until || s.err != nil {
			break
		}
		s.step()
	}
	s.now = until
	s.out = s.out[:0]
}

// step simulates the next event and returns the reports it produced, which
// stay valid until the next step.
func (s *Sim) step() []report {
	s.out = s.out[:0]
	e := s.agenda.pop()
	s.now = e.at
	s.handle(e)
	return s.out
}

// Now returns the simulated time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock()
}

// RouterClock returns the simulated time now and how many simulated
// seconds pass per second (router.Clock): between events, while Run paces
// the simulation, the time runs on at Speed; unpaced, it is the last
// event's and the rate is 0.
func (s *Sim) RouterClock() (time.Time, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pacing {
		return s.clock(), 0
	}
	at := s.paceSim + time.Duration(float64(time.Since(s.paceWall))*s.cfg.Speed)
	return s.origin.Add(max(at, s.now)), s.cfg.Speed
}

// State returns a copy of the simulated router's whole directory and queues;
// Queues holds every group, empty ones too. While Run runs, State may be one
// simulated event ahead of what the Handler has been told.
func (s *Sim) State() *router.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateLocked()
}

func (s *Sim) stateLocked() *router.State {
	st := &router.State{
		Tenants: slices.Clone(s.tenants),
		Groups:  make([]subjects.Group, 0, len(s.groups)),
		Queues:  make(map[string][]queue.Session, len(s.groups)),
	}
	for _, g := range s.groups {
		if g.retired {
			continue
		}
		st.Groups = append(st.Groups, g.info)
		st.Queues[g.info.ServiceGroupID] = copySessions(g.q)
	}
	return st
}

// groupSessions returns a copy of one group's queue.
func (s *Sim) groupSessions(id string) []queue.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.byID[id]
	if !ok {
		return nil
	}
	return copySessions(g.q)
}

// copySessions returns a queue's sessions, sharing nothing with it.
func copySessions(q *queue.Queue) []queue.Session {
	sessions := q.Sessions()
	for i := range sessions {
		sessions[i].IVRInformation = slices.Clone(sessions[i].IVRInformation)
	}
	return sessions
}

// clock returns the simulated time.
func (s *Sim) clock() time.Time { return s.origin.Add(s.now) }

// after schedules e d after now.
func (s *Sim) after(d time.Duration, e event) {
	e.at = s.now + max(d, 0)
	s.agenda.push(e)
}

// expDur draws an exponentially distributed duration of the given mean.
func (s *Sim) expDur(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

// uniform draws a duration in [lo, hi).
func (s *Sim) uniform(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

// emit applies a change to the group's queue and, when the link is up,
// queues its report. A change the queue rejects is a simulator bug: it stops
// Run with an error.
func (s *Sim) emit(g *group, c queue.Change) bool {
	if _, err := g.q.Apply(c); err != nil {
		if s.err == nil {
			s.err = fmt.Errorf("sim: internal error: built a change its own queue rejects: %w", err)
		}
		return false
	}
	if s.link && s.reporting {
		c.Session.IVRInformation = slices.Clone(c.Session.IVRInformation)
		s.out = append(s.out, report{kind: repChange, group: g.info.ServiceGroupID, change: c})
	}
	return true
}

// onRetire closes a group down for good: its waiting sessions leave with
// ServiceGroupClosed and it leaves the directory; it is set up again a few
// minutes later. One group of each tenant stays.
func (s *Sim) onRetire() {
	s.after(s.expDur(groupChurnMean), event{kind: evRetire})
	g := s.groups[s.rng.IntN(len(s.groups))]
	if g.retired || !s.tenantKeeps(g) {
		return
	}
	g.retired, g.open = true, false
	s.flush(g, queue.CauseServiceGroupClosed, func(queue.MediaType) bool { return true })
	s.staff(g)
	s.report(report{kind: repRemoveGroup, group: g.info.ServiceGroupID})
	s.after(s.uniform(2*time.Minute, 10*time.Minute), event{kind: evRestore, group: g.idx})
}

// tenantKeeps says whether g's tenant has another group in the directory.
func (s *Sim) tenantKeeps(g *group) bool {
	for _, o := range s.groups {
		if o != g && !o.retired && o.info.TenantID == g.info.TenantID {
			return true
		}
	}
	return false
}

// onRestore sets a retired group up again, empty, open if its hours say so.
func (s *Sim) onRestore(g *group) {
	g.retired = false
	g.open = g.openAt(s.local())
	s.staff(g)
	s.report(report{kind: repPutGroup, group: g.info.ServiceGroupID})
}

// report queues a report when the link is up; the next LinkUp's state says
// the same to a Handler that missed it.
func (s *Sim) report(r report) {
	if s.link && s.reporting {
		s.out = append(s.out, r)
	}
}

// onLinkDrop takes the link down for a few seconds.
func (s *Sim) onLinkDrop() {
	reasons := [...]string{"router connection reset", "router heartbeat timeout", "router failover", "connection closed by router"}
	if s.link {
		s.link = false
		s.out = append(s.out, report{kind: repLinkDown, reason: reasons[s.rng.IntN(len(reasons))]})
	}
	s.after(s.uniform(2*time.Second, 12*time.Second), event{kind: evLinkUp})
}

// onLinkUp brings the link back with the full state, unless a new Run
// already did.
func (s *Sim) onLinkUp() {
	if !s.link {
		s.link = true
		s.out = append(s.out, report{kind: repLinkUp, state: s.stateLocked()})
	}
	s.after(s.expDur(linkDropMean), event{kind: evLinkDrop})
}

// groupInfo returns a group's directory entry.
func (s *Sim) groupInfo(id string) subjects.Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id].info
}
