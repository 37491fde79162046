package sim_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router/sim"
)

// estimateErrors runs the simulator for hours of simulated time from
// 08:00 and, for every session allocated to an agent, compares the wait
// the statistics foretold when it entered the queue (EstimatedWait, and
// the naive foretelling, AverageWaitAllocated, as the figures stood just
// before its enqueue) with the wait it had. It returns both estimators'
// absolute errors, in seconds, for the sessions both had an estimate for.
func estimateErrors(tb testing.TB, seed uint64, hours int) (method, naive []float64) {
	tb.Helper()
	s := newSim(tb, sim.Config{Seed: seed, MaxChanges: 10000})
	r := newRecorder()
	ks := keepers{}
	type foretold struct {
		method, naive time.Duration
		entered       time.Time
	}
	pending := map[string]foretold{} // group/CallID → what was foretold
	from := start.Add(2 * time.Hour)
	end := from.Add(time.Duration(hours) * time.Hour)
	r.onApply = func(_ *recorder, group string, c queue.Change) {
		now := s.Now()
		k := ks.of(group)
		key := group + "/" + c.CallID
		switch c.Op {
		case queue.OpEnqueue:
			if f := k.Figures(); now.After(from) && f.EstimateKnown && f.Allocated > 0 {
				pending[key] = foretold{f.EstimatedWait, f.AverageWaitAllocated, c.Session.TimeEnteredQueue}
			}
		case queue.OpRemove:
			if p, ok := pending[key]; ok {
				delete(pending, key)
				if c.Cause == queue.CauseSessionAllocatedToAgent {
					wait := now.Sub(p.entered)
					method = append(method, (p.method - wait).Abs().Seconds())
					naive = append(naive, (p.naive - wait).Abs().Seconds())
				}
			}
		}
		k.Apply(now, c)
	}
	for runs := 0; s.Now().Before(end); runs++ {
		if runs == 1000 {
			tb.Fatalf("%d simulated hours take more than %d runs", hours, runs)
		}
		run(tb, s, r)
	}
	return method, naive
}

// quantile returns the q-quantile of xs (sorted in place).
func quantile(xs []float64, q float64) float64 {
	slices.Sort(xs)
	return xs[int(q*float64(len(xs)-1))]
}

// TestEstimateBeatsTheAverage: over four simulated business hours, the
// gateway's EstimatedWait foretells the wait of allocated sessions better
// than the window's AverageWaitAllocated would, at the median and at the
// 90th percentile of the absolute error.
func TestEstimateBeatsTheAverage(t *testing.T) {
	method, naive := estimateErrors(t, 21, 4)
	if len(method) < 1000 {
		t.Fatalf("%d allocated sessions with an estimate: too few to judge", len(method))
	}
	m50, m90, n50, n90 := quantile(method, 0.5), quantile(method, 0.9), quantile(naive, 0.5), quantile(naive, 0.9)
	t.Logf("%d sessions: EstimatedWait abs error median %.1f s, p90 %.1f s; AverageWaitAllocated median %.1f s, p90 %.1f s", len(method), m50, m90, n50, n90)
	if m50 >= n50 || m90 >= n90 {
		t.Errorf("EstimatedWait does not beat the naive estimate on both: median %.1f vs %.1f, p90 %.1f vs %.1f", m50, n50, m90, n90)
	}
}

// BenchmarkEstimatedWait reports, for eight simulated hours from 08:00,
// the absolute error of EstimatedWait and of the naive estimate
// (AverageWaitAllocated) for every allocated session, at the median and
// the 90th percentile: go test -run '^$' -bench EstimatedWait ./router/sim
func BenchmarkEstimatedWait(b *testing.B) {
	for range b.N {
		method, naive := estimateErrors(b, 21, 8)
		b.ReportMetric(float64(len(method)), "sessions")
		b.ReportMetric(quantile(method, 0.5), "est-p50-s")
		b.ReportMetric(quantile(method, 0.9), "est-p90-s")
		b.ReportMetric(quantile(naive, 0.5), "naive-p50-s")
		b.ReportMetric(quantile(naive, 0.9), "naive-p90-s")
	}
}
