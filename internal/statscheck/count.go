// Package statscheck counts a group's queue statistics (PROTOCOL.md §9)
// from its whole history, by scanning it: a second implementation for
// tests to hold package stats and the gateway to, sharing nothing with
// them but the definitions.
package statscheck

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/stats"
	"github.com/sisbridge/sisbridge/subjects"
)

// Count returns the figures after the last of events, the group's history
// from its first change (Seq 1) on, as the bus carries it.
func Count(cfg stats.Config, events []subjects.Event) stats.Figures {
	cfg = cfg.WithDefaults()
	var at, since time.Time
	for i := range events {
		t := events[i].RouterAt()
		if i == 0 {
			since = t
		}
		if t.After(at) {
			at = t
		}
	}
	f := stats.Figures{At: at, Window: cfg.Window, ServiceLevelThreshold: cfg.ServiceLevelThreshold,
		WaitingByMedia: map[queue.MediaType]int{}, Removed: map[queue.RemoveCause]int{}}
	waiting := map[string]queue.Session{}
	var clock time.Time
	var sum time.Duration
	served, departures := 0, 0
	for i := range events {
		e := &events[i]
		if t := e.RouterAt(); t.After(clock) {
			clock = t // a change stamped earlier counts as at the latest
		}
		in := clock.After(at.Add(-cfg.Window))
		c := e.Change
		switch c.Op {
		case queue.OpEnqueue:
			waiting[c.CallID] = c.Session
			if in {
				f.Entered++
			}
		case queue.OpRemove:
			s, ok := waiting[c.CallID]
			if !ok {
				s = c.Session
			}
			delete(waiting, c.CallID)
			if !in {
				continue
			}
			departures++
			f.Removed[c.Cause]++
			wait := max(clock.Sub(s.TimeEnteredQueue), 0)
			if c.Cause == queue.CauseSessionAllocatedToAgent {
				f.Allocated++
				sum += wait
				f.LongestWaitAllocated = max(f.LongestWaitAllocated, wait)
				if wait <= cfg.ServiceLevelThreshold {
					served++
				}
			}
			if c.Cause == queue.CauseSessionAllocatedToAgent || c.Cause == queue.CauseDisconnect {
				f.ServiceLevelBase++
			}
		}
	}
	for _, s := range waiting {
		f.Waiting++
		f.WaitingByMedia[s.MediaType]++
		if f.OldestEnteredQueue.IsZero() || s.TimeEnteredQueue.Before(f.OldestEnteredQueue) {
			f.OldestEnteredQueue = s.TimeEnteredQueue
		}
	}
	if f.Allocated > 0 {
		f.AverageWaitAllocated = sum / time.Duration(f.Allocated)
	}
	if f.ServiceLevelBase > 0 {
		f.ServiceLevel = float64(served) / float64(f.ServiceLevelBase)
	}
	if span := min(cfg.Window, at.Sub(since)); departures >= stats.MinDepartures && span > 0 {
		f.EstimatedWait, f.EstimateKnown = span/time.Duration(departures)*time.Duration(f.Waiting+1), true
	}
	return f
}
