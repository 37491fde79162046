package bridge

import (
	"sync"
)

// stream is one subscription's initial data (or resumed changes), made a
// frame at a time by the connection's writer as the client takes them.
type stream struct {
	gen uint64 // session generation the subscription belongs to
	p   producer
}

// producer makes a subscription's initial data one frame at a time. next
// is called by one goroutine at a time; cancel may come from another one,
// at any moment, and only once.
type producer interface {
	// next returns the next frame's payload; last says it was the final one
	// (InitialDataComplete). A cancelled producer returns nil.
	next() (data []byte, last bool)
	// finish runs once, after the last frame is queued: the live frames
	// the subscription held meanwhile follow it.
	finish()
	// cancel releases what the producer holds; nothing more is produced.
	cancel()
}

// lowWater is how many bytes may wait in a connection's queue before its
// writer stops producing initial data for it; at most the outbound limit's
// half.
func (t *transport) lowWater() int { return min(256<<10, t.srv.cfg.OutboundLimit/2) }

// produce makes initial data while the connection's queue is short and
// the gateway's budget has room; the writer calls it.
func (t *transport) produce() {
	for {
		t.mu.Lock()
		if t.closing || len(t.streams) == 0 || t.budgetWait || t.queued >= t.lowWater() {
			t.mu.Unlock()
			return
		}
		s := t.streams[0]
		t.mu.Unlock()
		if !t.srv.budget.reserve(t) {
			return
		}
		data, last := s.p.next()
		queued := t.queueProduced(s, data, last)
		t.srv.budget.settle(len(data), queued)
		if queued && last {
			s.p.finish()
		}
	}
}

// queueProduced queues a produced frame if its stream is still wanted.
func (t *transport) queueProduced(s *stream, data []byte, last bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.streams) == 0 || t.streams[0] != s || !t.acceptsLocked(s.gen) {
		return false
	}
	if data == nil { // the producer was cancelled
		t.streams = t.streams[1:]
		return false
	}
	t.queue = append(t.queue, frame{data: data, op: t.opcode, gen: s.gen, initial: true})
	t.queued += len(data)
	if last {
		t.streams = t.streams[1:]
	}
	return true
}

// budget bounds the initial data produced and not yet written, across
// every connection of the gateway: a herd of clients subscribing to deep
// groups at once is served in turn instead of being encoded at once.
// Connections that find it full wait in line and are woken, first come
// first served, as written bytes free it.
type budget struct {
	mu      sync.Mutex
	max     int
	used    int
	waiters []*transport
	peak    int
}

// budgetEstimate is what a frame is assumed to take until it is made.
const budgetEstimate = 64 << 10

func newBudget(max int) *budget { return &budget{max: max} }

// reserve takes room for one frame for t; false when the budget is full,
// and t is then woken (kick) when there is room. Lock order: b.mu, then
// t.mu; nothing calls the budget while holding a transport's lock.
func (b *budget) reserve(t *transport) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used >= b.max {
		t.mu.Lock()
		t.budgetWait = true
		t.mu.Unlock()
		b.waiters = append(b.waiters, t)
		return false
	}
	b.used += budgetEstimate
	b.peak = max(b.peak, b.used)
	return true
}

// settle replaces a reservation by the size of the frame made (0 when it
// was not queued).
func (b *budget) settle(size int, queued bool) {
	if !queued {
		size = 0
	}
	b.adjust(size - budgetEstimate)
}

// release frees n written (or dropped) bytes.
func (b *budget) release(n int) {
	if n > 0 {
		b.adjust(-n)
	}
}

// adjust changes the bytes in use and wakes as many waiters as the room
// left can serve.
func (b *budget) adjust(delta int) {
	b.mu.Lock()
	b.used += delta
	b.peak = max(b.peak, b.used)
	n := min(len(b.waiters), max(0, (b.max-b.used+budgetEstimate-1)/budgetEstimate))
	woken := append([]*transport(nil), b.waiters[:n]...)
	b.waiters = b.waiters[n:]
	b.mu.Unlock()
	for _, t := range woken {
		t.kick()
	}
}

// inUse returns the bytes in use and the most ever in use.
func (b *budget) inUse() (used, peak int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}
