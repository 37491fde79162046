package sim

import "time"

// kind is what a simulated event does.
type kind uint8

const (
	evArrival   kind = iota + 1 // a session may arrive in the group
	evDispatch                  // idle agents of the group look for work
	evAgentFree                 // an agent finished a session
	evAbandon                   // a waiting caller gives up
	evOverflow                  // a session reached its maximum wait
	evFail                      // a session breaks
	evTransfer                  // a supervisor transfers a waiting session
	evPriority                  // a waiting session is moved towards the front
	evHours                     // the group opens or closes
	evCampaign                  // the group's campaign pauses or resumes
	evStaff                     // shifts change: agents on duty follow the load
	evLinkDrop                  // the router link drops
	evLinkUp                    // the router link comes back
	evRetire                    // a group closes down for good (GroupChurn)
	evRestore                   // a retired group is set up again
)

// event is one scheduled happening. Events about a session name it by call
// and stint; a stale one (the session left, or moved on) does nothing.
type event struct {
	at    time.Duration // simulated time since the origin
	seq   uint64        // insertion order: breaks ties of at
	kind  kind
	group int
	agent int
	stint uint64
	call  string
}

func (e *event) before(o *event) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

// agenda is a binary min-heap of events by time, then insertion order.
type agenda struct {
	items []event
	seq   uint64
}

func (a *agenda) push(e event) {
	a.seq++
	e.seq = a.seq
	a.items = append(a.items, e)
	for i := len(a.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !a.items[i].before(&a.items[p]) {
			break
		}
		a.items[i], a.items[p] = a.items[p], a.items[i]
		i = p
	}
}

// next returns the time of the earliest event; ok is false when there is none.
func (a *agenda) next() (at time.Duration, ok bool) {
	if len(a.items) == 0 {
		return 0, false
	}
	return a.items[0].at, true
}

func (a *agenda) pop() event {
	top := a.items[0]
	last := len(a.items) - 1
	a.items[0] = a.items[last]
	a.items[last] = event{}
	a.items = a.items[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < last && a.items[l].before(&a.items[small]) {
			small = l
		}
		if r := l + 1; r < last && a.items[r].before(&a.items[small]) {
			small = r
		}
		if small == i {
			break
		}
		a.items[i], a.items[small] = a.items[small], a.items[i]
		i = small
	}
	return top
}
