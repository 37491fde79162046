package stats

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// kind is what a window event records.
type kind uint8

const (
	kindEnter kind = iota + 1
	kindRemove
)

// event is one entry or removal in the window.
type event struct {
	at    time.Time
	kind  kind
	cause queue.RemoveCause
	wait  time.Duration // removals: router time from entering to leaving
	seq   uint64        // order of arrival in the window
	// unknownWait: a removal whose wait is not known (see removal).
	unknownWait bool
}

// causes bounds the remove causes a window counts.
const causes = int(queue.CauseCampaignNotRunning) + 1

// window holds the events of the last Window of router time, oldest first,
// and running totals over them: each event is added once and taken off
// once, so keeping the figures costs O(1) per change (amortized).
type window struct {
	threshold time.Duration // service level threshold

	events []event // events[head:] are in the window
	head   int
	seq    uint64

	entered  int
	removed  [causes]int
	allocN   int
	allocSum time.Duration // whole nanoseconds: exact, order-independent
	served   int           // allocated within the threshold
	slBase   int           // allocated or Disconnect
	longest  []event       // allocations in the window, waits decreasing
}

func (w *window) push(e event) {
	w.seq++
	e.seq = w.seq
	w.events = append(w.events, e)
	w.count(e, 1)
	if allocated(e) {
		for n := len(w.longest); n > 0 && w.longest[n-1].wait <= e.wait; n-- {
			w.longest = w.longest[:n-1]
		}
		w.longest = append(w.longest, e)
	}
}

// expire takes off every event at or before from: the window is
// (from, end].
func (w *window) expire(from time.Time) {
	for w.head < len(w.events) && !w.events[w.head].at.After(from) {
		e := w.events[w.head]
		w.count(e, -1)
		if len(w.longest) > 0 && w.longest[0].seq == e.seq {
			w.longest = w.longest[1:]
		}
		w.events[w.head] = event{}
		w.head++
	}
	if w.head > 64 && w.head*2 > len(w.events) {
		n := copy(w.events, w.events[w.head:])
		clear(w.events[n:])
		w.events, w.head = w.events[:n], 0
	}
}

// count adds (d = 1) or takes off (d = -1) an event's part of the totals.
func (w *window) count(e event, d int) {
	if e.kind == kindEnter {
		w.entered += d
		return
	}
	if int(e.cause) < causes {
		w.removed[e.cause] += d
	}
	if allocated(e) {
		w.allocN += d
		w.allocSum += time.Duration(d) * e.wait
		if e.wait <= w.threshold {
			w.served += d
		}
	}
	if allocated(e) || e.cause == queue.CauseDisconnect {
		w.slBase += d
	}
}

// allocated says e is an allocation to an agent whose wait is known.
func allocated(e event) bool {
	return e.kind == kindRemove && e.cause == queue.CauseSessionAllocatedToAgent && !e.unknownWait
}
