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
