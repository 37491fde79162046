// Package stats keeps a service group's queue statistics (PROTOCOL.md §9)
// as its changes are applied, one change at a time and without rescanning
// anything: the queue's make-up now, and what entered and left it in a
// sliding window of router time.
//
// The figures after a change are a function of the group's history up to
// that change alone: times are router times, sums are kept in whole
// nanoseconds (no rounding that depends on how long a Keeper has run), and
// the window ends at the change's own time. A Keeper fed the same changes,
// from the same start, gives the same figures, whichever process runs it.
package stats

import (
	"container/heap"
	"errors"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// Config sets a Keeper's window and service level.
type Config struct {
	// Window is how much router time the window figures cover, up to the
	// time of the latest change. Default 15 min.
	Window time.Duration
	// ServiceLevelThreshold is the wait within which an allocation counts
	// as served in time. Default 20 s.
	ServiceLevelThreshold time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Window == 0 {
		c.Window = 15 * time.Minute
	}
	if c.ServiceLevelThreshold == 0 {
		c.ServiceLevelThreshold = 20 * time.Second
	}
	return c
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Window < time.Second {
		errs = append(errs, fmt.Errorf("statistics window %s: at least 1s", c.Window))
	}
	if c.ServiceLevelThreshold < time.Second {
		errs = append(errs, fmt.Errorf("service level threshold %s: at least 1s", c.ServiceLevelThreshold))
	}
	return errors.Join(errs...)
}

// Keeper keeps one group's statistics. It is not safe for concurrent use.
type Keeper struct {
	cfg     Config
	at      time.Time // router time of the latest change
	waiting [len(mediaIndex)]int
	total   int
	oldest  entryHeap         // waiting sessions by TimeEnteredQueue
	queued  map[string]*entry // CallID → its heap entry
	win     window
	est     estimator
}

// entry is a waiting session in the oldest-first heap.
type entry struct {
	callID  string
	entered time.Time
	media   int
	index   int
}

// mediaIndex bounds the media types a Keeper counts.
var mediaIndex = [queue.MediaOpenMedia + 1]struct{}{}

// New returns a Keeper for an empty queue.
func New(cfg Config) *Keeper {
	cfg = cfg.WithDefaults()
	return &Keeper{cfg: cfg, queued: map[string]*entry{}, win: window{threshold: cfg.ServiceLevelThreshold}}
}

// Enqueue takes a session that entered the queue, at its tail, at router
// time at.
func (k *Keeper) Enqueue(at time.Time, s queue.Session) { k.enqueue(at, s, k.total) }

// enqueue takes a session that entered with ahead sessions ahead of it.
func (k *Keeper) enqueue(at time.Time, s queue.Session, ahead int) {
	k.advance(at)
	if _, dup := k.queued[s.CallID]; dup {
		return // the queue refuses a duplicate; so does the Keeper
	}
	e := &entry{callID: s.CallID, entered: s.TimeEnteredQueue, media: mediaOf(s.MediaType)}
	heap.Push(&k.oldest, e)
	k.queued[s.CallID] = e
	k.waiting[e.media]++
	k.total++
	k.win.push(event{at: k.at, kind: kindEnter})
	k.est.arrive(s.CallID, k.at, ahead)
}

// Move takes a change of position at router time at: it alters no figure
// but the time the window ends.
func (k *Keeper) Move(at time.Time) { k.advance(at) }

// Remove takes the session callID that left the queue at router time at,
// for cause. Its wait runs from its TimeEnteredQueue to at.
func (k *Keeper) Remove(at time.Time, callID string, cause queue.RemoveCause) {
	k.advance(at)
	e, ok := k.queued[callID]
	if !ok {
		return
	}
	heap.Remove(&k.oldest, e.index)
	delete(k.queued, callID)
	k.waiting[e.media]--
	k.total--
	wait := max(k.at.Sub(e.entered), 0)
	k.win.push(event{at: k.at, kind: kindRemove, cause: cause, wait: wait})
	k.est.leave(callID, cause == queue.CauseSessionAllocatedToAgent, wait, k.windowStart())
}

// Apply takes one change of the group at router time at, as the bus
// carries it: an enqueue at its resolved Position (the sessions ahead of
// it are Position-1; at the tail when 0), a removal's wait from the
// Keeper's own record of the session, else from the TimeEnteredQueue the
// event carries.
func (k *Keeper) Apply(at time.Time, c queue.Change) {
	switch c.Op {
	case queue.OpEnqueue:
		s := c.Session
		s.CallID = c.CallID
		k.enqueue(at, s, aheadOf(c, k.total))
	case queue.OpMove:
		k.Move(at)
	case queue.OpRemove:
		if _, ok := k.queued[c.CallID]; !ok {
			k.advance(at)
			k.recallRemoval(c)
			return
		}
		k.Remove(at, c.CallID, c.Cause)
	}
}

// aheadOf is how many sessions an enqueue put ahead of its session.
func aheadOf(c queue.Change, tail int) int {
	if c.Position > 0 {
		return c.Position - 1
	}
	return tail
}

// Recall takes a change from before the state the Keeper was seeded with
// (Seed): it enters the window, if recent enough, and changes nothing of
// the queue's make-up. A view built from a snapshot recalls the changes of
// the window before it, so that its window figures are those of a Keeper
// that saw them live.
func (k *Keeper) Recall(at time.Time, c queue.Change) {
	k.advance(at)
	switch c.Op {
	case queue.OpEnqueue:
		k.win.push(event{at: k.at, kind: kindEnter})
		k.est.arrive(c.CallID, k.at, aheadOf(c, 0))
	case queue.OpRemove:
		k.recallRemoval(c)
	}
}

// recallRemoval takes a removal known only from its event; k.at is its
// time.
func (k *Keeper) recallRemoval(c queue.Change) {
	e := removal(k.at, c)
	k.win.push(e)
	k.est.leave(c.CallID, allocated(e), e.wait, k.windowStart())
}

// windowStart is the end of what is out of the window: changes at or
// before it are.
func (k *Keeper) windowStart() time.Time { return k.at.Add(-k.cfg.Window) }

// Seed sets the queue's make-up: the sessions waiting now (a snapshot's).
func (k *Keeper) Seed(sessions []queue.Session) {
	k.oldest, k.queued, k.total = nil, map[string]*entry{}, 0
	clear(k.waiting[:])
	for _, s := range sessions {
		e := &entry{callID: s.CallID, entered: s.TimeEnteredQueue, media: mediaOf(s.MediaType)}
		heap.Push(&k.oldest, e)
		k.queued[s.CallID] = e
		k.waiting[e.media]++
		k.total++
	}
}

// removal is the window event of a removal known only from its event: its
// wait from the TimeEnteredQueue the event carries. An event without one
// (written before events carried it) counts among the removals by cause,
// not in the allocations' waits or the service level.
func removal(at time.Time, c queue.Change) event {
	e := event{at: at, kind: kindRemove, cause: c.Cause, unknownWait: c.Session.TimeEnteredQueue.IsZero()}
	if !e.unknownWait {
		e.wait = max(at.Sub(c.Session.TimeEnteredQueue), 0)
	}
	return e
}

// advance moves the end of the window to at; router time never goes back
// (a change stamped earlier than the last counts as at the last).
func (k *Keeper) advance(at time.Time) {
	if at.After(k.at) {
		k.at = at
	}
	k.win.expire(k.windowStart())
	k.est.expire(k.windowStart())
}

func mediaOf(m queue.MediaType) int {
	if int(m) >= len(mediaIndex) {
		return int(queue.MediaNone)
	}
	return int(m)
}

// entryHeap orders waiting sessions by TimeEnteredQueue, then CallID.
type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if !h[i].entered.Equal(h[j].entered) {
		return h[i].entered.Before(h[j].entered)
	}
	return h[i].callID < h[j].callID
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
