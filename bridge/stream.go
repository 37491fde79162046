package bridge

import (
	"sync"
)

// stream is one subscription's initial data (or resumed changes), made a
// frame at a time by the connection's writer as the client takes them.
type stream struct {
	gen  uint64 // session generation the subscription belongs to
	p    producer
	mark *groupSeq // the subscription's KeepAlive record (its group)
	seq  uint64    // the Seq of its InitialDataComplete
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
func (t *transport) lowWater() int { return min(512<<10, t.srv.cfg.OutboundLimit/2) }

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
		reserved, ok := t.srv.budget.reserve(t)
		if !ok {
			return
		}
		data, last := s.p.next()
		queued := t.queueProduced(s, data, last)
		t.srv.budget.settle(reserved, len(data), queued)
		if queued && last {
			s.p.finish()
		}
	}
}

// queueProduced queues a produced frame if its stream is still wanted.
func (t *transport) queueProduced(s *stream, data []byte, last bool) bool {
	t.mu.Lock()
	defer t.leaveIfDone()
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
		t.completeLocked(s.mark, s.seq)
	}
	return true
}

// leaveIfDone gives the connection's place in the initial-data budget back
// once it has no stream left to produce.
func (t *transport) leaveIfDone() {
	t.mu.Lock()
	leave := t.served && len(t.streams) == 0
	if leave {
		t.served = false
	}
	t.mu.Unlock()
	if leave {
		t.srv.budget.leave()
	}
}

// budget bounds the initial data in flight across every connection of
// the gateway, two ways: the bytes made and not yet written (InitialBudget)
// and the connections being served at once (InitialConcurrency). A herd of
// clients that subscribe to deep groups at once is so served in turn: a
// connection admitted keeps its place until its initial data is all
// written, the others wait in line, first come first served, and are woken
// as places and bytes free up.
type budget struct {
	mu        sync.Mutex
	max       int // bytes
	used      int
	est       int // expected size of the next frame: a running mean
	peak      int
	slots     int // connections served at once
	active    int
	serving   []*transport // admitted, waiting for bytes
	newcomers []*transport // waiting for a place
}

// budgetEstimate is what a frame is assumed to take before any was made.
const budgetEstimate = 64 << 10

func newBudget(max, slots int) *budget { return &budget{max: max, slots: slots, est: budgetEstimate} }

// reserve takes room for one frame for t, and a place if t has none;
// false when there is no room, and t is then woken (kick) when there is.
// Lock order: b.mu, then t.mu; nothing calls the budget while holding a
// transport's lock.
func (b *budget) reserve(t *transport) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.served && b.active >= b.slots:
		t.budgetWait = true
		b.newcomers = append(b.newcomers, t)
		return 0, false
	case b.used >= b.max:
		t.budgetWait = true
		if t.served {
			b.serving = append(b.serving, t)
		} else {
			b.newcomers = append(b.newcomers, t)
		}
		return 0, false
	}
	if !t.served {
		t.served = true
		b.active++
	}
	b.used += b.est
	b.peak = max(b.peak, b.used)
	return b.est, true
}

// leave gives back a connection's place: its initial data is all made.
func (b *budget) leave() {
	b.mu.Lock()
	b.active--
	b.wakeLocked()
}

// settle replaces a reservation by the size of the frame made (0 when it
// was not queued).
func (b *budget) settle(reserved, size int, queued bool) {
	b.mu.Lock()
	if !queued {
		size = 0
	} else {
		b.est = max(b.est+(size-b.est)/8, 1<<10)
	}
	b.used += size - reserved
	b.peak = max(b.peak, b.used)
	b.wakeLocked()
}

// release frees n written (or dropped) bytes.
func (b *budget) release(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.wakeLocked()
}

// wakeLocked wakes as many waiters as the room left can serve, admitted
// connections first; it unlocks b.mu.
func (b *budget) wakeLocked() {
	n := max(0, (b.max-b.used+b.est-1)/b.est)
	var woken []*transport
	woken, b.serving = takeFirst(woken, b.serving, n)
	woken, b.newcomers = takeFirst(woken, b.newcomers, min(n-len(woken), b.slots-b.active))
	b.mu.Unlock()
	for _, t := range woken {
		t.kick()
	}
}

// takeFirst moves up to n transports from the front of from to to.
func takeFirst(to, from []*transport, n int) ([]*transport, []*transport) {
	n = min(n, len(from))
	if n <= 0 {
		return to, from
	}
	to = append(to, from[:n]...)
	clear(from[:n])
	return to, from[n:]
}

// inUse returns the bytes in use and the most ever in use.
func (b *budget) inUse() (used, peak int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}
