package stats_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/stats"
)

// BenchmarkKeeper is the cost of keeping the statistics per change and of
// reading them, with a queue 10,000 deep and a window holding about 9,000
// changes (one every 100 ms of router time, a 15-minute window): an
// enqueue at the tail and an allocation at the head, then Figures.
func BenchmarkKeeper(b *testing.B) {
	k := stats.New(stats.Config{})
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	const depth = 10000
	ids := make([]string, depth+b.N+1)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	for i := range depth {
		k.Enqueue(now, queue.Session{CallID: ids[i], MediaType: queue.MediaVoice, TimeEnteredQueue: now})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now = now.Add(100 * time.Millisecond)
		k.Enqueue(now, queue.Session{CallID: ids[depth+i], MediaType: queue.MediaChat, TimeEnteredQueue: now})
		now = now.Add(100 * time.Millisecond)
		k.Remove(now, ids[i], queue.CauseSessionAllocatedToAgent)
		_ = k.Figures()
	}
}
