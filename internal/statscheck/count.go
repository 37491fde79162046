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
	var at time.Time
	for i := range events {
		if t := events[i].RouterAt(); t.After(at) {
			at = t
		}
	}
	from := at.Add(-cfg.Window) // changes at or before it are out of the window
	f := stats.Figures{At: at, Window: cfg.Window, ServiceLevelThreshold: cfg.ServiceLevelThreshold,
		WaitingByMedia: map[queue.MediaType]int{}, Removed: map[queue.RemoveCause]int{}}
	waiting := map[string]queue.Session{}
	type arrival struct {
		at    time.Time
		ahead int
	}
	arrivals := map[string]arrival{}
	var samples []sample
	var clock time.Time
	var sum time.Duration
	served := 0
	for i := range events {
		e := &events[i]
		if t := e.RouterAt(); t.After(clock) {
			clock = t // a change stamped earlier counts as at the latest
		}
		in := clock.After(from)
		c := e.Change
		switch c.Op {
		case queue.OpEnqueue:
			ahead := len(waiting)
			if c.Position > 0 {
				ahead = c.Position - 1
			}
			waiting[c.CallID] = c.Session
			arrivals[c.CallID] = arrival{clock, ahead}
			if in {
				f.Entered++
			}
		case queue.OpRemove:
			s, ok := waiting[c.CallID]
			if !ok {
				s = c.Session
			}
			a, arrived := arrivals[c.CallID]
			delete(waiting, c.CallID)
			delete(arrivals, c.CallID)
			if !in {
				continue
			}
			f.Removed[c.Cause]++
			if c.Cause != queue.CauseSessionAllocatedToAgent && c.Cause != queue.CauseDisconnect {
				continue
			}
			f.ServiceLevelBase++
			if c.Cause == queue.CauseDisconnect {
				continue
			}
			wait := max(clock.Sub(s.TimeEnteredQueue), 0)
			f.Allocated++
			sum += wait
			f.LongestWaitAllocated = max(f.LongestWaitAllocated, wait)
			if wait <= cfg.ServiceLevelThreshold {
				served++
			}
			if arrived && a.at.After(from) {
				samples = append(samples, sample{ahead: a.ahead, wait: wait})
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
	f.EstimatedWait, f.EstimateKnown = estimate(samples, f.Waiting)
	return f
}

// sample is an allocated session that entered within the window.
type sample struct {
	ahead int
	wait  time.Duration
}

// rangeOf names the range of sessions-ahead a count falls in: 0, 1, 2,
// 3, 4-7, 8-15, 16-31, 32 and more.
func rangeOf(ahead int) int {
	r := 0
	for _, upper := range []int{1, 2, 3, 4, 8, 16, 32} {
		if ahead >= upper {
			r++
		}
	}
	return r
}

// estimate foretells a session entering behind n others: the mean wait of
// the samples that entered with as many ahead (in the same range), when
// there are MinSamples of them; else n+1 times the mean wait per place of
// all samples, when there are that many; else nothing.
func estimate(samples []sample, n int) (time.Duration, bool) {
	var same, all []sample
	for _, s := range samples {
		all = append(all, s)
		if rangeOf(s.ahead) == rangeOf(n) {
			same = append(same, s)
		}
	}
	if len(same) >= stats.MinSamples {
		var total time.Duration
		for _, s := range same {
			total += s.wait
		}
		return total / time.Duration(len(same)), true
	}
	if len(all) < stats.MinSamples {
		return 0, false
	}
	var total time.Duration
	var places int64
	for _, s := range all {
		total += s.wait
		places += int64(s.ahead) + 1
	}
	return total / time.Duration(places) * time.Duration(n+1), true
}
