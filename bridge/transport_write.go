package bridge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/sisbridge/sisbridge/protocol"
)

// outcome is what a flusher's write of a transport left to do; the
// flusher decides the next step from it.
type outcome int

const (
	// outcomeIdle: everything was written and nothing waits.
	outcomeIdle outcome = iota
	// outcomeMore: frames arrived meanwhile; the next round writes them.
	outcomeMore
	// outcomeWriter: the socket took only part, initial data waits to be
	// produced, or the connection is closing: a writer of its own goes on.
	outcomeWriter
	// outcomeFailed: the write failed; the connection must be closed.
	outcomeFailed
)

// flushed is the result of one flush: its outcome and, for outcomeWriter,
// what the socket did not take.
type flushed struct {
	outcome outcome
	rest    []byte
	born    time.Time // oldest change in rest
	initial int       // initial-data bytes in rest, released once written
	frames  int       // messages the write carried
}

// flush writes what waits in one system call that does not block; the
// flusher calls it while it owns the connection. buf is scratch space,
// returned for reuse.
func (t *transport) flush(buf []byte) (flushed, []byte) {
	t.mu.Lock()
	if t.closing || t.raw == nil {
		t.mu.Unlock()
		return flushed{outcome: outcomeWriter}, buf
	}
	frames := t.takeLocked()
	t.mu.Unlock()
	buf, born, initial := appendFrames(buf, frames), oldestBorn(frames), initialBytes(frames)
	reuseInitial(frames)
	t.recycle(frames)
	t.counted(len(frames))
	n, err := writeNow(t.raw, buf)
	switch {
	case err != nil:
		t.srv.budget.release(initial)
		return flushed{outcome: outcomeFailed, frames: len(frames)}, buf
	case n < len(buf):
		return flushed{outcome: outcomeWriter, rest: bytes.Clone(buf[n:]), born: born, initial: initial, frames: len(frames)}, buf
	}
	t.srv.budget.release(initial)
	t.observe(born)
	return flushed{outcome: t.afterFlush(), frames: len(frames)}, buf
}

// afterFlush says what is left once a round wrote everything it took.
func (t *transport) afterFlush() outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closing, len(t.streams) > 0 && !t.budgetWait:
		return outcomeWriter
	case len(t.queue) > 0:
		return outcomeMore
	}
	t.owner = ownerNone
	return outcomeIdle
}

// handOff gives the connection's writing to a goroutine of its own, which
// first writes what a round could not.
func (t *transport) handOff(rest []byte, born time.Time, initial int) {
	t.mu.Lock()
	t.owner = ownerWriter
	t.mu.Unlock()
	go t.writeRest(rest, born, initial)
}

// writeRest writes what a round left, then goes on as writeLoop.
func (t *transport) writeRest(rest []byte, born time.Time, initial int) {
	if len(rest) > 0 {
		err := t.writeSliced(t.nc, rest)
		t.srv.budget.release(initial)
		if err != nil {
			_ = t.nc.Close()
			return
		}
		t.observe(born)
	}
	t.writeLoop()
}

// writeLoop produces initial data and writes the queue until nothing is
// left, blocking as long as the client takes (up to WriteTimeout a write);
// then the connection is idle again.
func (t *transport) writeLoop() {
	bw := writeBufs.Get().(*bufio.Writer)
	bw.Reset(t.nc)
	defer func() {
		bw.Reset(nil)
		writeBufs.Put(bw)
	}()
	for {
		t.produce()
		frames, closing, again := t.take()
		if closing {
			t.cancelStreams()
		}
		if again {
			continue
		}
		if len(frames) == 0 && !closing {
			return
		}
		t.counted(len(frames))
		if err := t.writeFrames(bw, frames, closing); err != nil {
			t.writeFailed(err, closing)
			return
		}
		if closing {
			t.halfClose()
			return
		}
	}
}

// writeFailed ends a connection whose write failed. A write that made no
// progress for WriteTimeout is a client that stopped reading: too slow, as
// one past its outbound limit (counted and logged as a 4009 close; the
// close frame cannot reach a client that does not read, and a frame cut
// short cannot be followed by one).
func (t *transport) writeFailed(err error, closing bool) {
	if errors.Is(err, os.ErrDeadlineExceeded) && !closing {
		t.srv.metrics.slowCloses.Inc()
		t.srv.log.Info().Str("remote", t.nc.RemoteAddr().String()).Dur("stalled", t.srv.cfg.WriteTimeout).
			Msg("client closed as too slow (4009): it stopped reading")
		t.mu.Lock()
		t.closing, t.closeCode, t.closeWhy = true, protocol.CloseSlowConsumer, "client stopped reading"
		t.mu.Unlock()
	}
	_ = t.nc.Close()
}

// cancelStreams cancels the initial data still to produce of a closing
// connection.
func (t *transport) cancelStreams() {
	t.mu.Lock()
	streams := t.streams
	t.streams = nil
	t.mu.Unlock()
	for _, s := range streams {
		s.p.cancel()
	}
	t.leaveIfDone()
}

var writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// writeFrames writes frames (and, closing, the close frame) through bw;
// frames bypass bw's buffer when large (initial data), so they are not
// copied.
func (t *transport) writeFrames(bw *bufio.Writer, frames []frame, closing bool) error {
	var hdr [14]byte
	born, initial := oldestBorn(frames), initialBytes(frames)
	defer t.srv.budget.release(initial)
	for i := range frames {
		f := &frames[i]
		if _, err := bw.Write(appendFrameHeader(hdr[:0], f.op, len(f.data))); err != nil {
			return err
		}
		if err := t.writeSliced(bw, f.data); err != nil {
			return err
		}
	}
	reuseInitial(frames)
	t.recycle(frames)
	if closing {
		t.mu.Lock()
		body := ws.NewCloseFrameBody(t.closeCode, t.closeWhy)
		t.mu.Unlock()
		_, _ = bw.Write(appendFrame(hdr[:0], ws.OpClose, body))
	}
	t.setWriteDeadline()
	if err := bw.Flush(); err != nil {
		return err
	}
	t.observe(born)
	return nil
}

// writeSlice is how much one write carries before its deadline is
// renewed: WriteTimeout bounds a stall, not the time a slow but reading
// client takes for a large write.
const writeSlice = 64 << 10

// writeSliced writes data a slice at a time, each with a fresh deadline.
func (t *transport) writeSliced(w io.Writer, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), writeSlice)
		t.setWriteDeadline()
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// take empties the queue for the writer. With nothing to write it says
// whether initial data can be produced now (again); otherwise it gives the
// connection back.
func (t *transport) take() (frames []frame, closing, again bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	frames = t.takeLocked()
	if len(frames) > 0 || t.closing {
		return frames, t.closing, false
	}
	if len(t.streams) > 0 && !t.budgetWait {
		return nil, false, true
	}
	t.owner = ownerNone
	// The flusher's writes must not meet this writer's deadline.
	_ = t.nc.SetWriteDeadline(time.Time{})
	return nil, false, false
}

// takeLocked empties the queue; t.mu is held.
func (t *transport) takeLocked() []frame {
	frames := t.queue
	t.queue, t.spare = t.spare[:0], nil
	t.queued = 0
	return frames
}

func (t *transport) setWriteDeadline() {
	t.mu.Lock()
	if !t.closing { // closeWith has set a shorter deadline: keep it
		_ = t.nc.SetWriteDeadline(time.Now().Add(t.srv.cfg.WriteTimeout))
	}
	t.mu.Unlock()
}

// counted counts a write of frames, as it starts (a client that has read
// it finds it counted).
func (t *transport) counted(frames int) {
	t.srv.metrics.writes.Inc()
	t.srv.metrics.framesOut.Add(float64(frames))
}

// observe times the oldest change of a write, once it is written.
func (t *transport) observe(born time.Time) {
	if !born.IsZero() {
		t.srv.metrics.latency.Observe(time.Since(born).Seconds())
	}
}

// recycle keeps the drained slice for the next round of the queue.
func (t *transport) recycle(frames []frame) {
	clear(frames)
	t.mu.Lock()
	if t.spare == nil && cap(frames) <= 1024 {
		t.spare = frames[:0]
	}
	t.mu.Unlock()
}

// halfClose ends the sending side after the close frame, so that the client
// reads the close frame before the connection goes; the reader (or a timer,
// if the client never answers) closes it for good.
func (t *transport) halfClose() {
	if tc, ok := t.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	time.AfterFunc(2*time.Second, func() { _ = t.nc.Close() })
}

// appendFrames appends frames as WebSocket frames.
func appendFrames(dst []byte, frames []frame) []byte {
	for i := range frames {
		dst = appendFrame(dst, frames[i].op, frames[i].data)
	}
	return dst
}

// oldestBorn returns the time of the oldest change the frames carry (zero
// if none carries one).
func oldestBorn(frames []frame) time.Time {
	var oldest time.Time
	for i := range frames {
		if b := frames[i].born; !b.IsZero() && (oldest.IsZero() || b.Before(oldest)) {
			oldest = b
		}
	}
	return oldest
}

// initialBufs keeps the buffers of written initial-data frames for the
// next ones: a herd's initial data is made and written again and again.
var initialBufs = sync.Pool{New: func() any { return new([]byte) }}

// newInitialBuf returns an empty buffer for an initial-data frame.
func newInitialBuf() []byte { return (*initialBufs.Get().(*[]byte))[:0] }

// reuseInitial gives the buffers of initial-data frames, written or
// dropped, back for reuse.
func reuseInitial(frames []frame) {
	for i := range frames {
		if f := &frames[i]; f.initial && cap(f.data) <= 1<<20 {
			b := f.data[:0]
			initialBufs.Put(&b)
			f.data = nil
		}
	}
}

// initialBytes counts the initial-data bytes of frames.
func initialBytes(frames []frame) int {
	n := 0
	for i := range frames {
		if frames[i].initial {
			n += len(frames[i].data)
		}
	}
	return n
}

// appendFrame appends one unmasked, final WebSocket frame (RFC 6455 §5.2).
func appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	return append(appendFrameHeader(dst, op, len(payload)), payload...)
}

// appendFrameHeader appends the header of an unmasked, final frame of n
// payload bytes.
func appendFrameHeader(dst []byte, op ws.OpCode, n int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 126, byte(n>>8), byte(n))
	}
	dst = append(dst, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}
