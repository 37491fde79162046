package sim

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Constants of the model.
const (
	// preferWait is how long a session with a preferred agent waits for that
	// agent before any agent may take it.
	preferWait = 90 * time.Second
	// scanDepth is how far down the queue an agent looks for a session it
	// may take.
	scanDepth = 64
	// staffEvery is how often shifts change.
	staffEvery = 15 * time.Minute
	// transferMean and priorityMean are the mean intervals between
	// transfers, and priority moves, in one group at Rate 1.
	transferMean = 8 * time.Minute
	priorityMean = 6 * time.Minute
	// failShare is the share of sessions that fail while waiting.
	failShare = 0.006
	// campaignRunMean is the mean time a campaign runs between pauses, on
	// top of 30 minutes.
	campaignRunMean = 90 * time.Minute
	// windDown is the share of agents a group with opening hours keeps in
	// its last half hour.
	windDown = 0.6
	// linkDropMean is the mean time between link drops (Config.LinkDrops).
	linkDropMean = 20 * time.Minute
	// groupChurnMean is the mean time between groups closing down for good
	// (Config.GroupChurn).
	groupChurnMean = 15 * time.Minute
)

// group is a simulated service group: its queue, agents and state.
type group struct {
	idx  int
	info subjects.Group
	spec *groupSpec
	uk   bool
	q    *queue.Queue
	// calls holds what the simulator knows of each queued session;
	// callbacks the CallIDs of queued Callback and WebCallBack sessions.
	calls     map[string]*call
	callbacks map[string]struct{}
	agents    []agent
	// idle lists the idle agents by index, longest idle first; agents at
	// onDuty and beyond are off shift and leave it when next looked at.
	idle   []int
	onDuty int
	open   bool
	// retired: removed from the directory (Config.GroupChurn), closed
	// until it is set up again.
	retired bool
	// campaignOn: the group's campaign runs (groups without one: true).
	campaignOn  bool
	dispatching bool // an evDispatch is scheduled
	overflow    int  // the group overflows to, or -1
	siblings    []int
	dialed      [2]string
	peak        float64 // arrivals per simulated second at the busiest time
	mixTotal    int
}

// agentState is what an agent is doing.
type agentState uint8

const (
	agentOff agentState = iota
	agentIdle
	agentBusy
)

type agent struct {
	id    int
	state agentState
}

// call is a queued session as the simulator knows it.
type call struct {
	id      string
	stint   uint64 // which stay in a queue this is; events of an older one are stale
	session queue.Session
	// moved: the session overflowed or was transferred into this group; it
	// moves no further.
	moved bool
}

// build creates the tenants and groups.
func (s *Sim) build() {
	tspecs, gspecs := tenantSpecs(), groupSpecs()
	per := s.cfg.GroupsPerTenant
	s.byID = make(map[string]*group, s.cfg.Tenants*per)
	for t := range s.cfg.Tenants {
		ts := tspecs[t%len(tspecs)]
		tenant := subjects.Tenant{TenantID: ts.id, Name: ts.name}
		if round := t / len(tspecs); round > 0 {
			tenant.TenantID += strconv.Itoa(round + 1)
			tenant.Name += " " + strconv.Itoa(round+1)
		}
		s.tenants = append(s.tenants, tenant)
		first, seen := len(s.groups), map[string]int{}
		for k := range per {
			s.addGroup(tenant, ts.uk, &gspecs[(t*per+k)%len(gspecs)], seen)
		}
		s.linkSiblings(s.groups[first:])
	}
}

func (s *Sim) addGroup(tenant subjects.Tenant, uk bool, spec *groupSpec, seen map[string]int) {
	seen[spec.key]++
	id, name := tenant.TenantID+"-"+spec.key, spec.name
	if n := seen[spec.key]; n > 1 {
		id, name = id+strconv.Itoa(n), name+" "+strconv.Itoa(n)
	}
	g := &group{
		idx:       len(s.groups),
		info:      subjects.Group{ServiceGroupID: id, TenantID: tenant.TenantID, Name: name},
		spec:      spec,
		uk:        uk,
		q:         queue.New(id),
		calls:     map[string]*call{},
		callbacks: map[string]struct{}{},
		overflow:  -1,
		peak:      spec.perHour * s.cfg.Rate / 3600,
	}
	for _, sh := range spec.mix {
		g.mixTotal += sh.weight
	}
	n := int(math.Ceil(g.peak*spec.aht.Seconds()/spec.occupancy)) + 1
	for range n {
		s.ids.agent++
		g.agents = append(g.agents, agent{id: 1000 + s.ids.agent})
	}
	g.dialed = dialedNumbers(uk, g.idx)
	s.groups = append(s.groups, g)
	s.byID[id] = g
}

// linkSiblings tells each group of a tenant about the others, and picks the
// overflow target of those that overflow: the next group taking voice.
func (s *Sim) linkSiblings(groups []*group) {
	for i, g := range groups {
		for k := 1; k < len(groups); k++ {
			o := groups[(i+k)%len(groups)]
			g.siblings = append(g.siblings, o.idx)
			if g.spec.overflowAfter > 0 && g.overflow < 0 && o.accepts(queue.MediaVoice) {
				g.overflow = o.idx
			}
		}
	}
}

// scheduleStart sets each group's initial state and schedules its first
// events.
func (s *Sim) scheduleStart() {
	for _, g := range s.groups {
		g.open = g.openAt(s.local())
		g.campaignOn = true
		s.staff(g)
		ev := event{group: g.idx}
		s.after(s.expDur(g.interarrival()), with(ev, evArrival))
		s.after(s.expDur(s.perRate(transferMean)), with(ev, evTransfer))
		s.after(s.expDur(s.perRate(priorityMean)), with(ev, evPriority))
		if g.spec.opens != g.spec.closes {
			s.after(s.untilHours(g), with(ev, evHours))
		}
		if g.spec.campaign != "" {
			s.after(30*time.Minute+s.expDur(campaignRunMean), with(ev, evCampaign))
		}
	}
	now := s.clock()
	s.after(staffEvery-now.Sub(now.Truncate(staffEvery)), event{kind: evStaff})
}

func with(e event, k kind) event {
	e.kind = k
	return e
}

// perRate scales a mean interval by Config.Rate.
func (s *Sim) perRate(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.cfg.Rate)
}

// local returns the simulated time in the contact centre's time zone.
func (s *Sim) local() time.Time { return s.clock().In(s.cfg.Start.Location()) }

// interarrival is the mean time between arrivals at the busiest time.
func (g *group) interarrival() time.Duration {
	return time.Duration(float64(time.Second) / g.peak)
}

// accepts reports whether the group's media mix holds m.
func (g *group) accepts(m queue.MediaType) bool {
	for _, sh := range g.spec.mix {
		if sh.media == m {
			return true
		}
	}
	return false
}

// openAt reports whether the group is open at local time t.
func (g *group) openAt(t time.Time) bool {
	if g.spec.opens == g.spec.closes {
		return true
	}
	h := t.Hour()
	return h >= g.spec.opens && h < g.spec.closes
}

// untilHours returns the time until the group next opens or closes.
func (s *Sim) untilHours(g *group) time.Duration {
	now := s.local()
	y, m, d := now.Date()
	best := time.Duration(math.MaxInt64)
	for day := range 2 {
		for _, h := range []int{g.spec.opens, g.spec.closes} {
			at := time.Date(y, m, d+day, h, 0, 0, 0, now.Location())
			if dt := at.Sub(now); dt > 0 && dt < best {
				best = dt
			}
		}
	}
	return best
}

// needed returns how many agents the group staffs now. In the last half
// hour before closing, agents start logging off.
func (s *Sim) needed(g *group) int {
	if !g.open {
		return 0
	}
	now := s.local()
	load := g.peak * dailyProfile(now) * g.spec.aht.Seconds() / g.spec.occupancy
	if g.spec.opens != g.spec.closes && now.Hour() == g.spec.closes-1 && now.Minute() >= 30 {
		load *= windDown
	}
	return min(max(int(math.Ceil(load)), 1), len(g.agents))
}

// staff brings the group's agents on duty to what it needs now; agents going
// off shift finish what they are doing first.
func (s *Sim) staff(g *group) {
	n := s.needed(g)
	for i := g.onDuty; i < n; i++ {
		if g.agents[i].state == agentOff {
			g.agents[i].state = agentIdle
			g.idle = append(g.idle, i)
		}
	}
	g.onDuty = n
	s.dispatch(g)
}

// handleTime draws how long an agent spends on a session: log-normal around
// the group's mean, at least 20 seconds.
func (s *Sim) handleTime(g *group) time.Duration {
	const sigma = 0.5
	f := math.Exp(sigma*s.rng.NormFloat64() - sigma*sigma/2)
	return max(time.Duration(f*float64(g.spec.aht)), 20*time.Second)
}

// patience is the mean time a waiting customer of the media gives up after;
// 0: never (Email).
func patience(m queue.MediaType) time.Duration {
	switch m {
	case queue.MediaVoice:
		return 4 * time.Minute
	case queue.MediaCampaign:
		return 75 * time.Second
	case queue.MediaChat:
		return 6 * time.Minute
	case queue.MediaCallback, queue.MediaWebCallBack:
		return 40 * time.Minute
	case queue.MediaSMS, queue.MediaOpenMedia:
		return 30 * time.Minute
	default:
		return 0
	}
}

// dialedNumbers returns a group's two service numbers: UK freephone drama
// numbers (0808 157 0000-0999) or North American toll-free 555-01xx ones.
func dialedNumbers(uk bool, idx int) [2]string {
	var out [2]string
	areas := [...]int{800, 888, 877, 866, 855, 844, 833}
	for k := range out {
		n := 2*idx + k
		if uk {
			out[k] = fmt.Sprintf("+44808157%04d", n%1000)
		} else {
			out[k] = fmt.Sprintf("+1%d55501%02d", areas[(n/100)%len(areas)], n%100)
		}
	}
	return out
}
