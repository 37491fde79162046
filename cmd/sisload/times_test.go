package main

import (
	"testing"
	"time"
)

// TestAcceptTimesLate: a delivery seen before its change's acceptance time
// is kept aside and timed from the moment it was received once the time
// is known; one whose time never comes stays untimed. Enough are kept to
// fill several blocks of the late list.
func TestAcceptTimesLate(t *testing.T) {
	g := &groupTimes{}
	at := &acceptTimes{groups: map[string]*groupTimes{"g": g}}
	var h histogram
	start := time.Unix(1000, 0)
	g.set(1, start.UnixNano())
	const late = 3*lateBlock + 7
	at.record(&h, g, 1, 1+late, start.Add(5*time.Millisecond)) // 1 known, the rest late
	if n := h.Snapshot().Total(); n != 1 {
		t.Fatalf("%d timed at once, want 1", n)
	}
	for seq := uint64(2); seq <= late; seq++ { // the last stays unknown
		g.set(seq, start.Add(2*time.Millisecond).UnixNano())
	}
	untimed, _ := at.resolve(&h)
	s := h.Snapshot()
	if untimed != 1 || s.Total() != late {
		t.Fatalf("resolve: %d timed, %d untimed, want %d and 1", s.Total(), untimed, late)
	}
	if q := s.Quantile(0.5); q < 2900*time.Microsecond || q > 3100*time.Microsecond {
		t.Errorf("late deliveries timed at %s, want 3ms", q)
	}
}
