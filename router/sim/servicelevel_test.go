package sim_test

import (
	"sort"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router/sim"
	"github.com/sisbridge/sisbridge/stats"
)

// TestServiceLevelsOfANormalDay: on a normal simulated day the groups'
// service levels (stats, 15-minute window, 20 s threshold) are those of a
// contact center a supervisor would recognise: sampled every half hour of
// the groups' busy hours, between 0.5 and 0.95 in most samples, neither
// everyone served at once nor nobody; and every remove cause and media
// type shows in the figures.
func TestServiceLevelsOfANormalDay(t *testing.T) {
	s := newSim(t, sim.Config{Seed: 11, MaxChanges: 10000})
	r := newRecorder()
	ks := keepers{}
	removed := map[queue.RemoveCause]int{}
	media := map[queue.MediaType]int{}
	var samples []float64
	next := start.Add(2 * time.Hour) // 08:00, the business hours of every group
	end := start.Add(12 * time.Hour) // 18:00
	r.onApply = func(_ *recorder, group string, c queue.Change) {
		now := s.Now()
		k := ks.of(group)
		k.Apply(now, c)
		if c.Op == queue.OpRemove {
			removed[c.Cause]++
		} else if c.Op == queue.OpEnqueue {
			media[c.Session.MediaType]++
		}
		if now.Before(next) || !next.Before(end) {
			return
		}
		next = next.Add(30 * time.Minute) // a sample of every group each half hour
		for _, k := range ks {
			if f := k.Figures(); f.ServiceLevelBase >= 20 {
				samples = append(samples, f.ServiceLevel)
			}
		}
	}
	for runs := 0; s.Now().Before(end); runs++ {
		if runs == 200 {
			t.Fatalf("ten simulated hours take more than %d runs", runs)
		}
		run(t, s, r)
	}
	if len(samples) < 50 {
		t.Fatalf("%d service-level samples with 20 sessions or more in the window: too few to judge", len(samples))
	}
	sort.Float64s(samples)
	in := 0
	for _, sl := range samples {
		if sl >= 0.5 && sl <= 0.95 {
			in++
		}
	}
	median := samples[len(samples)/2]
	t.Logf("%d samples; service level min %.2f, p10 %.2f, median %.2f, p90 %.2f, max %.2f; %d%% within 0.5-0.95",
		len(samples), samples[0], samples[len(samples)/10], median, samples[len(samples)*9/10], samples[len(samples)-1], 100*in/len(samples))
	if median < 0.5 || median > 0.95 || in*10 < len(samples)*7 {
		t.Errorf("service levels not those of a normal day: median %.2f, %d of %d samples within 0.5-0.95 (want the median within and 70%% of them)", median, in, len(samples))
	}
	for _, c := range queue.RemoveCauses[1:] {
		if removed[c] == 0 {
			t.Errorf("no %s in ten busy hours", c)
		}
	}
	for _, m := range queue.MediaTypes[1:] {
		if media[m] == 0 {
			t.Errorf("no %s session in ten busy hours", m)
		}
	}
}

// keepers are the statistics of each group, with the default settings.
type keepers map[string]*stats.Keeper

// of returns group's, made on first use.
func (ks keepers) of(group string) *stats.Keeper {
	k := ks[group]
	if k == nil {
		k = stats.New(stats.Config{})
		ks[group] = k
	}
	return k
}
