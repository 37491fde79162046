package stats

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// Figures are a group's statistics at one change (PROTOCOL.md §9). A
// figure whose count is 0 is absent (null on the wire): Allocated 0 for
// the allocation waits, ServiceLevelBase 0 for ServiceLevel,
// EstimateKnown false for EstimatedWait, Waiting 0 for OldestEnteredQueue.
type Figures struct {
	// At is the router time of the change.
	At time.Time
	// Waiting is how many sessions are queued.
	Waiting int
	// WaitingByMedia counts them by media type (types with none left out).
	WaitingByMedia map[queue.MediaType]int
	// OldestEnteredQueue is the earliest TimeEnteredQueue among them.
	OldestEnteredQueue time.Time
	// Window is the router time the window figures cover, up to At.
	Window time.Duration
	// Entered is how many sessions entered the queue in the window.
	Entered int
	// Removed counts the sessions that left it in the window, by cause
	// (causes with none left out).
	Removed map[queue.RemoveCause]int
	// Allocated is how many left it allocated to an agent in the window.
	Allocated int
	// AverageWaitAllocated and LongestWaitAllocated are their waits.
	AverageWaitAllocated, LongestWaitAllocated time.Duration
	// ServiceLevelThreshold is the wait that counts as served in time.
	ServiceLevelThreshold time.Duration
	// ServiceLevelBase is how many left in the window allocated or by
	// Disconnect; ServiceLevel the fraction of them allocated within the
	// threshold.
	ServiceLevelBase int
	ServiceLevel     float64
	// EstimatedWait is the wait expected for a session entering now
	// (estimate.go); EstimateKnown false while there is too little history.
	EstimatedWait time.Duration
	EstimateKnown bool
}

// Figures returns the statistics as of the latest change.
func (k *Keeper) Figures() Figures {
	f := Figures{At: k.at, Waiting: k.total, Window: k.cfg.Window, ServiceLevelThreshold: k.cfg.ServiceLevelThreshold,
		WaitingByMedia: map[queue.MediaType]int{}, Removed: map[queue.RemoveCause]int{}}
	for m, n := range k.waiting {
		if n > 0 {
			f.WaitingByMedia[queue.MediaType(m)] = n
		}
	}
	if len(k.oldest) > 0 {
		f.OldestEnteredQueue = k.oldest[0].entered
	}
	w := &k.win
	f.Entered = w.entered
	for c, n := range w.removed {
		if n > 0 {
			f.Removed[queue.RemoveCause(c)] = n
		}
	}
	if f.Allocated = w.allocN; f.Allocated > 0 {
		f.AverageWaitAllocated = w.allocSum / time.Duration(w.allocN)
		f.LongestWaitAllocated = w.longest[0].wait
	}
	if f.ServiceLevelBase = w.slBase; f.ServiceLevelBase > 0 {
		f.ServiceLevel = float64(w.served) / float64(w.slBase)
	}
	f.EstimatedWait, f.EstimateKnown = k.estimate()
	return f
}

// estimate is the wait foretold to a session entering now, behind every
// session waiting (estimate.go).
func (k *Keeper) estimate() (time.Duration, bool) { return k.est.estimate(k.total) }
