package bridge

import (
	"fmt"
	"math"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/stats"
	"github.com/sisbridge/sisbridge/subjects"
)

// How a view keeps its group's statistics (PROTOCOL.md §9): a
// stats.Keeper fed every change the view applies. A view loaded from a
// snapshot reads back the events of the window before it from the stream
// (recallWindow), so its figures are those of a view that saw them live:
// every gateway sends the same figures for the same Seq. A subscriber
// that asked for them gets them once before InitialDataComplete, then,
// after a change that alters a figure, the latest ones at most once a
// second.

// statsEvery is the least time between two QueueStatistics to one
// subscriber for one group.
const statsEvery = time.Second

// readbackMargin widens the read-back of a window for the difference
// between the adapter's clock and the NATS server's.
const readbackMargin = time.Minute

// recallWindow builds the statistics of a loaded state: the events of the
// window before its last one are read back and recalled, then the queue
// is seeded. The read-back starts a window before the last event by the
// wall clock, longer when the router's clock runs slower than it (its
// rate as the router status says now; a rate that changed within the
// window, as when a simulator restarts at another speed, makes the
// figures of that window inexact).
func (v *view) recallWindow(st subjects.GroupState) (*stats.Keeper, error) {
	cfg := v.hub.srv.cfg.Statistics
	k := stats.New(cfg)
	if st.StreamSeq == 0 {
		k.Seed(st.Queue.Sessions())
		return k, nil
	}
	subject := subjects.Events(v.group.TenantID, v.group.ServiceGroupID)
	var lastTime time.Time
	if err := v.hub.srv.hist.Walk(v.ctx, subject, st.StreamSeq, st.StreamSeq, func(e *subjects.Event, _ uint64) error {
		lastTime = e.Time
		return nil
	}); err != nil {
		return nil, fmt.Errorf("statistics of %s: %w", v.group.ServiceGroupID, err)
	}
	from := uint64(1)
	if !lastTime.IsZero() {
		_, rate := v.hub.srv.router.clock(time.Now())
		if rate <= 0 || math.IsNaN(rate) {
			rate = 1
		}
		back := time.Duration(float64(cfg.Window)/min(rate, 1)) + readbackMargin
		seq, found, err := v.hub.srv.hist.SeqAt(v.ctx, subject, lastTime.Add(-back))
		if err != nil {
			return nil, fmt.Errorf("statistics of %s: %w", v.group.ServiceGroupID, err)
		}
		if found {
			from = seq
		}
	}
	err := v.hub.srv.hist.Walk(v.ctx, subject, from, st.StreamSeq, func(e *subjects.Event, _ uint64) error {
		if e.Seq > st.Seq {
			return nil
		}
		k.Recall(e.RouterAt(), e.Change)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("statistics of %s: %w", v.group.ServiceGroupID, err)
	}
	k.Seed(st.Queue.Sessions())
	return k, nil
}

// keep feeds one applied event to the statistics; v.mu is held.
func (v *view) keep(e *event) {
	if v.keeper == nil {
		return
	}
	v.keeper.Apply(e.RouterAt(), e.Change)
}

// statsState is a view's statistics as last sent; guarded by v.mu.
type statsState struct {
	subs    int       // subscribers that asked for statistics
	printed string    // the figures last offered, At left out
	frames  [2][]byte // the latest QueueStatistics, per format (made on demand)
	timer   *time.Timer
}

// offerStats offers the latest figures to the statistics subscribers after
// a change, when a figure other than At changed; v.mu is held.
func (v *view) offerStats(now time.Time) {
	if v.st.subs == 0 || v.keeper == nil {
		return
	}
	f := v.keeper.Figures()
	if p := fingerprint(f); p != v.st.printed {
		v.st.printed, v.st.frames = p, [2][]byte{}
		for _, s := range v.subs {
			if s.stats {
				s.statsDue = true
			}
		}
	}
	v.sendDueStats(now)
}

// sendDueStats sends the latest figures to every subscriber due them that
// had none for statsEvery, and sets a timer for the others; v.mu is held.
func (v *view) sendDueStats(now time.Time) {
	wait := time.Duration(-1)
	for _, s := range v.subs {
		if !s.statsDue {
			continue
		}
		if left := statsEvery - now.Sub(s.statsSent); left > 0 {
			if wait < 0 || left < wait {
				wait = left
			}
			continue
		}
		s.statsDue, s.statsSent = false, now
		v.deliver(s, frame{data: v.statsFrame(s.t.format), op: s.t.opcode, gen: s.gen})
	}
	if wait > 0 && v.st.timer == nil {
		v.st.timer = time.AfterFunc(wait, v.statsTimer)
	}
}

// statsTimer sends the figures that waited for statsEvery to pass.
func (v *view) statsTimer() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.st.timer = nil
	if v.ctx.Err() == nil && v.keeper != nil {
		v.sendDueStats(time.Now())
	}
}

// statsFrame returns the latest QueueStatistics in a format; v.mu is held.
func (v *view) statsFrame(f protocol.Format) []byte {
	if v.st.frames[f] == nil {
		st := WireStatistics(v.keeper.Figures())
		v.st.frames[f] = protocol.AppendQueueStatistics(f, nil, v.group.ServiceGroupID, v.seq, &st)
	}
	return v.st.frames[f]
}

// fingerprint identifies the figures apart from At.
func fingerprint(f stats.Figures) string {
	f.At = time.Time{}
	return fmt.Sprintf("%+v", f)
}

// WireStatistics are figures as the gateway puts them on the wire: seconds to the
// millisecond, enumerations by name, nulls for figures without a value.
func WireStatistics(f stats.Figures) protocol.Statistics {
	st := protocol.Statistics{At: f.At.UTC(), Waiting: f.Waiting, WaitingByMedia: map[string]int{}, Window: seconds(f.Window),
		Entered: f.Entered, Removed: map[string]int{}, ServiceLevelThreshold: seconds(f.ServiceLevelThreshold)}
	for m, n := range f.WaitingByMedia {
		st.WaitingByMedia[m.String()] = n
	}
	for c, n := range f.Removed {
		st.Removed[c.String()] = n
	}
	if f.Waiting > 0 {
		t := f.OldestEnteredQueue.UTC()
		st.OldestEnteredQueue = &t
	}
	if f.Allocated > 0 {
		st.AverageWaitAllocated, st.LongestWaitAllocated = ptr(seconds(f.AverageWaitAllocated)), ptr(seconds(f.LongestWaitAllocated))
	}
	if f.ServiceLevelBase > 0 {
		st.ServiceLevel = ptr(math.Round(f.ServiceLevel*1e4) / 1e4)
	}
	if f.EstimateKnown {
		st.EstimatedWait = ptr(seconds(f.EstimatedWait))
	}
	return st
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1e3) / 1e3 }

func ptr[T any](v T) *T { return &v }
