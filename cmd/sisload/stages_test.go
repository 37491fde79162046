package main

import (
	"testing"
	"time"
)

// TestTimingQuantile: quantiles interpolate within the bucket they fall
// in, past the last bound give that bound, and a window's samples are
// the later counts less the earlier.
func TestTimingQuantile(t *testing.T) {
	h := timing{N: 100, Le: []float64{.001, .002, .005}, Count: []float64{50, 90, 98}}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.25, 500 * time.Microsecond},  // half of the first bucket, from 0
		{0.5, time.Millisecond},         // its top
		{0.7, 1500 * time.Microsecond},  // half of the second
		{0.94, 3500 * time.Microsecond}, // half of the third
		{0.99, 5 * time.Millisecond},    // past the last bound: the bound
	} {
		if got := h.quantile(tc.q); (got - tc.want).Abs() > time.Microsecond {
			t.Errorf("q%.2f = %s, want %s", tc.q, got, tc.want)
		}
	}
	if got := (timing{}).quantile(0.99); got != 0 {
		t.Errorf("empty: %s, want 0", got)
	}
	before := timing{N: 40, Sum: 1, Le: h.Le, Count: []float64{40, 40, 40}}
	w := h.since(before)
	if w.N != 60 || w.Count[0] != 10 || w.Count[2] != 58 || h.Count[0] != 50 {
		t.Errorf("window %+v (and the later counts %v): want N 60, counts 10, 50, 58, the later left alone", w, h.Count)
	}
	if got := w.quantile(0.5); (got - 1500*time.Microsecond).Abs() > time.Microsecond {
		t.Errorf("window median %s, want 1.5ms (30th of 60: 20 into the 40 of the second bucket)", got)
	}
}
