package sim_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router/sim"
	"github.com/sisbridge/sisbridge/subjects"
)

// Fictional numbers and addresses only: Ofcom drama ranges, North American
// 555-01xx, example domains.
var (
	phonePat   = `(\+44(2079460|1614960|1134960)\d{3}|\+447700900\d{3}|\+1\d{3}55501\d{2})`
	phoneRE    = regexp.MustCompile(`^` + phonePat + `$`)
	emailRE    = regexp.MustCompile(`^[a-z0-9._]+@example\.(com|org|net)$`)
	dialedRE   = regexp.MustCompile(`^(\+448081570\d{3}|\+1(800|888|877|866|855|844|833)55501\d{2})$`)
	openRE     = regexp.MustCompile(`^(whatsapp:` + phonePat + `|messenger:[a-z]+\.[a-z]+\.\d+|x:@[a-z]+\d+)$`)
	hoursOf    = map[string][2]int{"acme-billing": {8, 18}, "globex-webchat": {7, 22}}
	customerRE = map[queue.MediaType]*regexp.Regexp{
		queue.MediaVoice: phoneRE, queue.MediaCallback: phoneRE, queue.MediaWebCallBack: phoneRE,
		queue.MediaCampaign: phoneRE, queue.MediaSMS: phoneRE, queue.MediaEmail: emailRE,
		queue.MediaChat: emailRE, queue.MediaOpenMedia: openRE,
	}
)

// dayStats is what a simulated day did.
type dayStats struct {
	media       map[queue.MediaType]int
	causes      map[queue.RemoveCause]int
	perHour     [24]int // arrivals by hour of TimeEnteredQueue
	moves       int
	inserted    int // enqueues before the tail
	preferred   int
	transferred int // transfers enqueued elsewhere
}

// TestSimulatedDay runs a day of simulated time in several Runs and checks
// that the model shows everything it should, plausibly.
func TestSimulatedDay(t *testing.T) {
	s := newSim(t, sim.Config{Seed: 5, LinkDrops: true, MaxChanges: 10000})
	r := newRecorder()
	end := start.Add(24 * time.Hour)
	for runs := 0; s.Now().Before(end); runs++ {
		if runs == 100 {
			t.Fatalf("a simulated day takes more than %d runs", runs)
		}
		run(t, s, r)
	}
	r.checkMatches(t, s.State())
	st := dayStatsOf(t, r, s)
	for _, m := range queue.MediaTypes[1:] {
		if st.media[m] == 0 {
			t.Errorf("no %s session in a day", m)
		}
	}
	for _, c := range queue.RemoveCauses[1:] {
		if st.causes[c] == 0 {
			t.Errorf("no %s removal in a day", c)
		}
	}
	if st.moves == 0 || st.inserted == 0 || st.preferred == 0 || st.transferred == 0 {
		t.Errorf("moves %d, voice before callbacks %d, preferred agents %d, transfers enqueued elsewhere %d: want some of each",
			st.moves, st.inserted, st.preferred, st.transferred)
	}
	busy, quiet := st.perHour[10], st.perHour[3]
	if busy < 1500 || quiet*3 > busy {
		t.Errorf("%d arrivals 10:00-11:00, %d 03:00-04:00: want a busy morning and a quiet night", busy, quiet)
	}
	t.Logf("arrivals by hour %v; media %v; causes %v", st.perHour, st.media, st.causes)
}

func dayStatsOf(t *testing.T, r *recorder, s *sim.Sim) dayStats {
	t.Helper()
	tenantOf := map[string]string{}
	for _, g := range s.State().Groups {
		tenantOf[g.ServiceGroupID] = g.TenantID
	}
	st := dayStats{media: map[queue.MediaType]int{}, causes: map[queue.RemoveCause]int{}}
	calls, _ := r.snapshot()
	for i, c := range calls {
		if c.Kind != "apply" {
			continue
		}
		switch ch := c.Change; ch.Op {
		case queue.OpEnqueue:
			checkSession(t, c.Group, ch)
			st.media[ch.Session.MediaType]++
			st.perHour[ch.Session.TimeEnteredQueue.Hour()]++
			st.inserted += min(ch.Position, 1)
			st.preferred += min(ch.Session.PreferredAgentID, 1)
		case queue.OpMove:
			st.moves++
		case queue.OpRemove:
			st.causes[ch.Cause]++
			moved := i+1 < len(calls) && calls[i+1].Kind == "apply" && calls[i+1].Change.Op == queue.OpEnqueue &&
				calls[i+1].Change.CallID == ch.CallID && calls[i+1].Group != c.Group && tenantOf[calls[i+1].Group] == tenantOf[c.Group]
			if ch.Cause == queue.CauseOverflow && !moved {
				t.Errorf("overflow of %s from %s is not followed by its enqueue in another group of the tenant", ch.CallID, c.Group)
			}
			if ch.Cause == queue.CauseCallTransferred && moved {
				st.transferred++
			}
		}
	}
	return st
}

// checkSession checks an enqueued session's details.
func checkSession(t *testing.T, group string, c queue.Change) {
	t.Helper()
	ss := c.Session
	at := ss.TimeEnteredQueue
	switch {
	case !subjects.ValidID(c.CallID):
		t.Errorf("malformed CallID %q", c.CallID)
	case at.Location() != time.UTC || at.Nanosecond()%int(time.Millisecond) != 0:
		t.Errorf("%s: TimeEnteredQueue %s not UTC milliseconds", c.CallID, at)
	case at.Before(start.Add(-10*time.Minute)) || at.After(start.Add(48*time.Hour)):
		t.Errorf("%s: TimeEnteredQueue %s outside the simulated day", c.CallID, at)
	case !customerRE[ss.MediaType].MatchString(ss.CustomerInformation):
		t.Errorf("%s: %s customer %q", c.CallID, ss.MediaType, ss.CustomerInformation)
	case (ss.MediaType == queue.MediaVoice) != (ss.DialedNumber != ""),
		ss.DialedNumber != "" && !dialedRE.MatchString(ss.DialedNumber):
		t.Errorf("%s: %s dialed %q", c.CallID, ss.MediaType, ss.DialedNumber)
	case ss.MediaType == queue.MediaVoice && (len(ss.IVRInformation) == 0 || ss.IVRInformation[0].Label != "Language"):
		t.Errorf("%s: voice IVR %+v", c.CallID, ss.IVRInformation)
	}
	if h, ok := hoursOf[group]; ok && (at.Hour() < h[0] || at.Hour() >= h[1]) {
		t.Errorf("%s: enqueued in %s at %s, outside its hours %v", c.CallID, group, at, h)
	}
}
