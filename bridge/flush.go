package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// flusher runs the gateway's delivery rounds. A view with new changes and a
// connection with frames waiting register with it; a round applies every
// registered view's changes (each view fans them out into its subscribers'
// queues) and then writes every registered connection's queue in one
// system call, without blocking: a connection whose socket is full is
// handed to a goroutine of its own until its backlog is written.
//
// Rounds are spaced by the load. A round that wrote about one message per
// connection (fewer than batchedAt on average) found the clients' changes
// arriving apart: waiting would delay each by the wait and save few
// writes, so the next round starts as soon as there is work. A round whose
// connections had several messages each (the load is high) is followed by
// a pause of spacingFactor times as long as it took, never more than
// interval: the busier the gateway, the more each round carries, and the
// fewer writes and wake-ups per change. (With fixed, rounds run exactly one
// per interval; back to back while work waits when the interval is not
// positive.) One goroutine runs the rounds (a round's writes are
// spread over one worker per CPU, which apply the changes that arrived
// meanwhile between chunks), so a change waits behind no more than one
// round.
type flusher struct {
	interval time.Duration
	fixed    bool

	mu      sync.Mutex
	views   []*view
	conns   []*transport
	stopped bool
	wake    chan struct{}
	// urgent cuts the wait for the next round short: a reply waits on a
	// connection registered for it (replies never wait for a round).
	urgent chan struct{}

	// Used by the flusher's goroutine (and its round's workers) only.
	spareConns []*transport
	bufs       [][]byte // a scratch buffer per worker
}

// tally counts a round's writes that carried messages, and the messages.
type tally struct {
	writes, frames atomic.Int64
}

// perWrite returns the messages per write (0 without writes).
func (c *tally) perWrite() float64 {
	if w := c.writes.Load(); w > 0 {
		return float64(c.frames.Load()) / float64(w)
	}
	return 0
}

// flushChunk is how many connections a round's worker takes at a time.
const flushChunk = 64

// spacingFactor is how many times as long as the last round took the
// flusher waits after a batched round before the next (up to its
// interval): under load, rounds take at most a quarter of the time.
const spacingFactor = 3

// batchedAt is the messages per write, on average over a round, from which
// the round counts as batched and the next waits.
const batchedAt = 1.5

// newFlusher returns a flusher whose rounds write with up to workers
// goroutines at once; fixed spaces them interval apart whatever they take.
func newFlusher(interval time.Duration, fixed bool, workers int) *flusher {
	return &flusher{interval: interval, fixed: fixed, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), bufs: make([][]byte, max(workers, 1))}
}

// spacing is how long after the start of a round the next may start: the
// round took took and wrote perWrite messages per write on average.
func (f *flusher) spacing(took time.Duration, perWrite float64) time.Duration {
	switch {
	case f.fixed:
		return f.interval
	case perWrite < batchedAt:
		return 0
	}
	return min(f.interval, took*(1+spacingFactor))
}

// addView registers a view with new changes; false once the flusher has
// stopped.
func (f *flusher) addView(v *view) bool { return enlist(f, &f.views, v) }

// addTransport registers a connection with frames waiting; false once the
// flusher has stopped (the caller then writes them itself).
func (f *flusher) addTransport(t *transport) bool { return enlist(f, &f.conns, t) }

// enlist appends x to one of f's lists and wakes f; false once f has
// stopped.
func enlist[T any](f *flusher, list *[]T, x T) bool {
	f.mu.Lock()
	ok := !f.stopped
	if ok {
		*list = append(*list, x)
	}
	f.mu.Unlock()
	f.signal()
	return ok
}

// urge has the next round go at once.
func (f *flusher) urge() {
	select {
	case f.urgent <- struct{}{}:
	default:
	}
	f.signal()
}

func (f *flusher) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run runs rounds until ctx ends, then hands every connection still
// registered to a writer of its own.
func (f *flusher) run(ctx context.Context) {
	defer f.stop()
	var last time.Time
	var spacing time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		if wait := time.Until(last.Add(spacing)); f.interval > 0 && wait > 0 {
			if !f.pause(ctx, wait) {
				return
			}
		}
		last = time.Now()
		perWrite := f.round()
		spacing = f.spacing(time.Since(last), perWrite)
	}
}

// round applies the registered views' changes, then writes the registered
// connections' frames. Between chunks of writes it applies the changes that
// arrived meanwhile: a connection not yet written this round still gets
// them in it. It returns the messages per write (0 without writes).
func (f *flusher) round() float64 {
	f.applyViews()
	f.mu.Lock()
	conns := f.conns
	f.conns = f.spareConns[:0]
	f.mu.Unlock()
	var counted tally
	f.writeAll(conns, &counted)
	clear(conns)
	f.spareConns = conns[:0]
	return counted.perWrite()
}

// applyViews applies the changes of every registered view. The round's
// workers call it too, each taking a different set of views.
func (f *flusher) applyViews() {
	f.mu.Lock()
	views := f.views
	f.views = nil
	f.mu.Unlock()
	for _, v := range views {
		v.applyPending()
	}
}

// writeAll flushes conns, spread over the workers in chunks, counting
// into counted.
func (f *flusher) writeAll(conns []*transport, counted *tally) {
	workers := min(len(f.bufs), (len(conns)+flushChunk-1)/flushChunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.work(w, conns, &next, counted)
		}()
	}
	f.work(0, conns, &next, counted)
	wg.Wait()
}

// work flushes chunks of conns until none is left; w is the worker's
// index. A write that carried no message (a TLS record's remainder, a
// closing connection's) is not counted.
func (f *flusher) work(w int, conns []*transport, next *atomic.Int64, counted *tally) {
	buf := f.bufs[w]
	for {
		i := int(next.Add(flushChunk)) - flushChunk
		if i >= len(conns) {
			break
		}
		chunk := conns[i:min(i+flushChunk, len(conns))]
		writes, frames := 0, 0
		for _, t := range chunk {
			var n int
			buf, n = f.flushOne(t, buf[:0])
			if n > 0 {
				writes, frames = writes+1, frames+n
			}
		}
		counted.writes.Add(int64(writes))
		counted.frames.Add(int64(frames))
		f.applyViews()
	}
	if cap(buf) > 1<<20 {
		buf = nil
	}
	f.bufs[w] = buf
}

// stop refuses later registrations and hands the connections still
// registered to writers of their own.
func (f *flusher) stop() {
	f.mu.Lock()
	f.stopped = true
	conns := f.conns
	f.views, f.conns = nil, nil
	f.mu.Unlock()
	for _, t := range conns {
		t.handOff(nil, time.Time{}, 0)
	}
}

// flushOne writes t's frames and takes the next step its outcome calls
// for: the flusher alone decides it. It returns the messages written.
func (f *flusher) flushOne(t *transport, buf []byte) ([]byte, int) {
	res, buf := t.flush(buf)
	switch res.outcome {
	case outcomeMore:
		if !f.addTransport(t) {
			t.handOff(nil, time.Time{}, 0)
		}
	case outcomeWriter:
		t.handOff(res.rest, res.born, res.initial)
	case outcomeFailed:
		_ = t.nc.Close() // the reader ends the session
	}
	return buf, res.frames
}

// pause waits d, or less when urged; false when ctx ends first.
func (f *flusher) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-f.urgent:
	}
	return true
}

// sleep waits d; false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
