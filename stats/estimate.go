package stats

import (
	"container/heap"
	"time"
)

// How a Keeper estimates a wait. A session that enters the queue with n
// sessions ahead of it is foretold the mean wait of the sessions that
// were allocated to an agent in the window after entering it with about
// as many ahead (n = 0, 1, 2, 3, then 4-7, 8-15, 16-31, 32 and more): the
// same queue length meets the same staffing, and the queue's own recent
// history says what that meant. With fewer than MinSamples such sessions
// it is foretold n+1 times the mean wait per place ahead of every
// allocated session of the window; with fewer than MinSamples of those,
// nothing. Only sessions that entered the queue within the window count,
// so that a view built from the window alone (Recall) knows them all.

// MinSamples is how many allocated sessions an estimate rests on at
// least.
const MinSamples = 5

// buckets is how many ranges of sessions-ahead the estimator tells apart.
const buckets = 8

func bucketOf(ahead int) int {
	switch {
	case ahead < 4:
		return ahead
	case ahead < 8:
		return 4
	case ahead < 16:
		return 5
	case ahead < 32:
		return 6
	}
	return 7
}

// arrival is what the estimator knows of a session's entry: the router
// time of its enqueue and how many sessions were ahead of it.
type arrival struct {
	at    time.Time
	ahead int
}

// sample is one allocated session the estimate rests on.
type sample struct {
	entered time.Time // router time of its enqueue
	seq     uint64
	bucket  int
	ahead1  int64 // sessions ahead of it, plus itself
	wait    time.Duration
}

type estimator struct {
	arrivals  map[string]arrival
	samples   sampleHeap // by entry, oldest first
	seq       uint64
	count     [buckets]int
	sum       [buckets]time.Duration
	n         int
	sumWait   time.Duration
	sumAhead1 int64
}

func (e *estimator) arrive(callID string, at time.Time, ahead int) {
	if e.arrivals == nil {
		e.arrivals = map[string]arrival{}
	}
	e.arrivals[callID] = arrival{at: at, ahead: max(ahead, 0)}
}

// leave takes a session's removal; an allocation of one that entered
// after from (within the window) becomes a sample.
func (e *estimator) leave(callID string, allocated bool, wait time.Duration, from time.Time) {
	a, ok := e.arrivals[callID]
	delete(e.arrivals, callID)
	if !ok || !allocated || !a.at.After(from) {
		return
	}
	e.seq++
	s := &sample{entered: a.at, seq: e.seq, bucket: bucketOf(a.ahead), ahead1: int64(a.ahead) + 1, wait: wait}
	heap.Push(&e.samples, s)
	e.count[s.bucket]++
	e.sum[s.bucket] += s.wait
	e.n++
	e.sumWait += s.wait
	e.sumAhead1 += s.ahead1
}

// expire drops the samples that entered at or before from.
func (e *estimator) expire(from time.Time) {
	for len(e.samples) > 0 && !e.samples[0].entered.After(from) {
		s := heap.Pop(&e.samples).(*sample)
		e.count[s.bucket]--
		e.sum[s.bucket] -= s.wait
		e.n--
		e.sumWait -= s.wait
		e.sumAhead1 -= s.ahead1
	}
}

// estimate is the wait foretold to a session entering with ahead sessions
// ahead of it.
func (e *estimator) estimate(ahead int) (time.Duration, bool) {
	if b := bucketOf(ahead); e.count[b] >= MinSamples {
		return e.sum[b] / time.Duration(e.count[b]), true
	}
	if e.n < MinSamples || e.sumAhead1 == 0 {
		return 0, false
	}
	return e.sumWait / time.Duration(e.sumAhead1) * time.Duration(ahead+1), true
}

type sampleHeap []*sample

func (h sampleHeap) Len() int { return len(h) }
func (h sampleHeap) Less(i, j int) bool {
	if !h[i].entered.Equal(h[j].entered) {
		return h[i].entered.Before(h[j].entered)
	}
	return h[i].seq < h[j].seq
}
func (h sampleHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *sampleHeap) Push(x any)   { *h = append(*h, x.(*sample)) }
func (h *sampleHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}
