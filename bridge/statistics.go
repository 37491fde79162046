package bridge

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
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

// recallWindow builds the statistics of a state (the queue's sessions at
// seq, whose last event is at stream sequence streamSeq): the events of
// the window before it are read back and recalled, then the queue is
// seeded. The read-back starts a window before the last event by the wall
// clock, longer when the router's clock runs slower than it (its rate as
// the router status says now; a rate that changed within the window, as
// when a simulator restarts at another speed, makes the figures of that
// window inexact).
func (v *view) recallWindow(ctx context.Context, sessions []queue.Session, seq, streamSeq uint64) (*stats.Keeper, error) {
	cfg := v.hub.srv.cfg.Statistics
	k := stats.New(cfg)
	if streamSeq == 0 {
		k.Seed(sessions)
		return k, nil
	}
	subject := subjects.Events(v.group.TenantID, v.group.ServiceGroupID)
	var lastTime time.Time
	if err := v.hub.srv.hist.Walk(ctx, subject, streamSeq, streamSeq, func(e *subjects.Event, _ uint64) error {
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
		at, found, err := v.hub.srv.hist.SeqAt(ctx, subject, lastTime.Add(-back))
		if err != nil {
			return nil, fmt.Errorf("statistics of %s: %w", v.group.ServiceGroupID, err)
		}
		if found {
			from = at
		}
	}
	err := v.hub.srv.hist.Walk(ctx, subject, from, streamSeq, func(e *subjects.Event, _ uint64) error {
		if e.Seq <= seq {
			k.Recall(e.RouterAt(), e.Change)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("statistics of %s: %w", v.group.ServiceGroupID, err)
	}
	k.Seed(sessions)
	return k, nil
}

// ensureStats makes the view keep statistics, the first time a subscriber
// asks for them: built from the view's state as it is, then brought up to
// the changes the view applied meanwhile (read from the stream), and
// installed once it has caught up. Views nobody asks statistics of never
// read their window back; those that are read back take a turn among the
// view loads (--load-concurrency), so a flood of first statistics
// subscriptions reads no more history at once than loads do.
func (v *view) ensureStats(ctx context.Context) error {
	v.statsBuild.Lock()
	defer v.statsBuild.Unlock()
	v.statsOn.Store(true) // every later load builds them too
	v.mu.Lock()
	kept := v.keeper != nil
	v.mu.Unlock()
	if kept {
		return nil
	}
	// A read of history like a load's: --load-concurrency bounds them all.
	release, err := v.hub.loads.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	for range 5 {
		v.mu.Lock()
		if v.keeper != nil {
			v.mu.Unlock()
			return nil
		}
		sessions, seq, streamSeq, installs := v.q.Sessions(), v.seq, v.streamSeq, v.installs
		v.mu.Unlock()
		k, err := v.recallWindow(ctx, sessions, seq, streamSeq)
		if err != nil {
			return err
		}
		if done, err := v.catchUpStats(ctx, k, seq, streamSeq, installs); done || err != nil {
			return err
		}
	}
	return fmt.Errorf("statistics of %s: the view was loaded anew five times while they were built", v.group.ServiceGroupID)
}

// catchUpStats applies to k the group's events after seq (at streamSeq)
// that the view applied meanwhile, and installs k once it is where the
// view is. It gives up (false) when the view was loaded anew meanwhile.
func (v *view) catchUpStats(ctx context.Context, k *stats.Keeper, seq, streamSeq uint64, installs int) (bool, error) {
	subject := subjects.Events(v.group.TenantID, v.group.ServiceGroupID)
	for {
		v.mu.Lock()
		switch {
		case v.installs != installs:
			v.mu.Unlock()
			return false, nil
		case v.streamSeq == streamSeq:
			v.keeper = k
			v.mu.Unlock()
			return true, nil
		}
		to := v.streamSeq
		v.mu.Unlock()
		err := v.hub.srv.hist.Walk(ctx, subject, streamSeq+1, to, func(e *subjects.Event, _ uint64) error {
			if e.Seq == seq+1 {
				k.Apply(e.RouterAt(), e.Change)
				seq = e.Seq
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("statistics of %s: %w", v.group.ServiceGroupID, err)
		}
		streamSeq = to
	}
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
	// the frames are those of this keeper at this Seq: any other (a change
	// applied, a view loaded anew) makes them again
	madeAt uint64
	madeOf *stats.Keeper
	timer  *time.Timer
}

// offerStats offers the latest figures to the statistics subscribers after
// a change, when a figure other than At changed; v.mu is held.
func (v *view) offerStats(now time.Time) {
	if v.st.subs == 0 || v.keeper == nil {
		// nobody was offered these: the next change is news to whoever
		// subscribes meanwhile, even if it goes back to the last offered
		v.st.printed = ""
		return
	}
	f := v.keeper.Figures()
	if p := fingerprint(f); p != v.st.printed {
		v.st.printed = p
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
		v.deliver(s, frame{data: v.statsFrame(s.t.format), op: s.t.opcode, gen: s.gen}) // not in KeepAlive's Seqs: sessions only
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

// statsFrame returns the QueueStatistics of the view's keeper at the
// view's Seq in a format, made once for every subscriber; v.mu is held.
func (v *view) statsFrame(f protocol.Format) []byte {
	if v.st.madeAt != v.seq || v.st.madeOf != v.keeper {
		v.st.frames, v.st.madeAt, v.st.madeOf = [2][]byte{}, v.seq, v.keeper
	}
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
