package bridge

import (
	"context"
	"testing"
	"time"
)

// TestUrgeCutsTheWaitShort: a reply queued on a connection that waits for
// the next delivery round urges the flusher, whose wait between rounds
// then ends at once instead of after the coalescing interval.
func TestUrgeCutsTheWaitShort(t *testing.T) {
	f := newFlusher(time.Hour, true, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan bool, 1)
	go func() { done <- f.pause(ctx, time.Hour) }()
	f.urge()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("pause reported its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("urge did not cut the wait short")
	}
}

// TestSpacing: a round that wrote about one message per connection is
// followed at once; a batched one waits spacingFactor times its length,
// up to the interval; fixed rounds always wait the interval.
func TestSpacing(t *testing.T) {
	const interval = 10 * time.Millisecond
	for _, tc := range []struct {
		name     string
		fixed    bool
		took     time.Duration
		perWrite float64
		want     time.Duration
	}{
		{"one message a write", false, 2 * time.Millisecond, 1.1, 0},
		{"no writes", false, time.Millisecond, 0, 0},
		{"batched, short round", false, time.Millisecond, 3, 4 * time.Millisecond},
		{"batched, long round", false, 5 * time.Millisecond, 3, interval},
		{"at the threshold", false, time.Millisecond, batchedAt, 4 * time.Millisecond},
		{"fixed, one message a write", true, 2 * time.Millisecond, 1, interval},
		{"fixed, batched", true, time.Microsecond, 20, interval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlusher(interval, tc.fixed, 1)
			if got := f.spacing(tc.took, tc.perWrite); got != tc.want {
				t.Errorf("spacing(%s, %.1f) = %s, want %s", tc.took, tc.perWrite, got, tc.want)
			}
		})
	}
}
