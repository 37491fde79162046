package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout: values are nanoseconds. Below 2^histSubBits a value has
// its own bucket; above, each power of two is split into 2^(histSubBits-1)
// buckets, so a bucket's width is at most 1/64 of its lower bound (an
// HDR histogram with about two significant digits).
const (
	histSubBits = 7
	histHalf    = 1 << (histSubBits - 1)
	histBuckets = (64-histSubBits+1)*histHalf + histHalf
)

// histogram is a log-bucketed latency histogram, safe for concurrent use:
// recording is one atomic add, so every client of a run shares one.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
}

// bucketOf returns the bucket index of a value.
func bucketOf(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits
	return shift*histHalf + int(v>>uint(shift))
}

// bucketMid returns a value in the middle of bucket i.
func bucketMid(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	shift := i/histHalf - 1
	low := uint64(i-shift*histHalf) << uint(shift)
	return int64(low + (uint64(1)<<uint(shift))/2)
}

// Record adds one latency; a negative one (clock step) counts as 0.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Snapshot returns the counts, sparse (bucket index → count), and the max:
// what a child process sends its parent.
func (h *histogram) Snapshot() histSnapshot {
	s := histSnapshot{Counts: map[int]uint64{}, Max: h.max.Load()}
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			s.Counts[i] = n
		}
	}
	return s
}

// histSnapshot is a histogram's content, mergeable and JSON-encodable.
type histSnapshot struct {
	Counts map[int]uint64 `json:"counts"`
	Max    int64          `json:"max"`
}

// Merge adds o's counts to s.
func (s *histSnapshot) Merge(o histSnapshot) {
	if s.Counts == nil {
		s.Counts = map[int]uint64{}
	}
	for i, n := range o.Counts {
		s.Counts[i] += n
	}
	s.Max = max(s.Max, o.Max)
}

// Total returns how many values were recorded.
func (s histSnapshot) Total() uint64 {
	var t uint64
	for _, n := range s.Counts {
		t += n
	}
	return t
}

// Quantile returns the value at quantile q (0..1): the middle of the bucket
// holding it, capped at the exact max.
func (s histSnapshot) Quantile(q float64) time.Duration {
	total := s.Total()
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	want = min(max(want, 1), total)
	var seen uint64
	for i := 0; i < histBuckets; i++ {
		seen += s.Counts[i]
		if seen >= want {
			return time.Duration(min(bucketMid(i), s.Max))
		}
	}
	return time.Duration(s.Max)
}

// latencies summarizes a histogram.
type latencies struct {
	Count               uint64
	P50, P99, P999, Max time.Duration
}

// summary returns the quantiles the report prints.
func (s histSnapshot) summary() latencies {
	return latencies{Count: s.Total(), P50: s.Quantile(0.50), P99: s.Quantile(0.99), P999: s.Quantile(0.999), Max: time.Duration(s.Max)}
}
