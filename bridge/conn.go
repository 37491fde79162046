package bridge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/protocol"
)

// conn is one client connection. Its reader goroutine reads and handles
// requests in order; frames for the client wait in a queue that the
// gateway's flusher writes in its next round, or, while the client does not
// take them as fast, a writer goroutine of the connection's own.
type conn struct {
	srv    *Server
	nc     net.Conn
	raw    syscall.RawConn // nc's descriptor for writes that must not block; nil if none (TLS)
	src    io.Reader
	format protocol.Format
	opcode ws.OpCode

	wmu       sync.Mutex // guards the queue and the close state
	queue     []frame
	spare     []frame
	queued    int // bytes of live frames waiting (they count towards the limit)
	owner     int // ownerNone, ownerFlusher or ownerWriter
	closing   bool
	closeCode ws.StatusCode
	closeWhy  string

	smu  sync.Mutex // guards sess
	sess *session

	lastRequest atomic.Int64 // unix nanos
	keepAliveAt atomic.Int64 // when the next KeepAlive is due
	awaitingHB  atomic.Int64 // when the first unanswered KeepAlive went out; 0 if none
}

// frame is one message for the client.
type frame struct {
	data   []byte
	op     ws.OpCode
	forced bool      // initial data and replies: not counted against the limit
	born   time.Time // oldest router change in it, for the latency histogram
}

var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func newConn(s *Server, nc net.Conn, rw *bufio.ReadWriter, format protocol.Format) *conn {
	c := &conn{srv: s, nc: nc, raw: rawConn(nc), src: nc, format: format, opcode: ws.OpText}
	if format == protocol.Msgpack {
		c.opcode = ws.OpBinary
	}
	if n := rw.Reader.Buffered(); n > 0 { // bytes the client sent right after the handshake
		peek, _ := rw.Reader.Peek(n)
		c.src = io.MultiReader(bytes.NewReader(bytes.Clone(peek)), nc)
	}
	now := time.Now()
	c.lastRequest.Store(now.UnixNano())
	c.keepAliveAt.Store(now.Add(jittered(s.cfg.KeepAlive, 0.5)).UnixNano())
	return c
}

// serve reads requests until the connection ends, then ends the session.
func (c *conn) serve() {
	defer c.finish()
	rd := &wsutil.Reader{Source: c.src, State: ws.StateServerSide, MaxMessageSize: protocol.MaxClientFrame, CheckUTF8: true}
	for {
		hdr, err := rd.NextFrame()
		if errors.Is(err, wsutil.ErrMessageTooLarge) {
			c.closeWith(protocol.CloseTooLarge, "message larger than 64 KiB")
			return
		}
		if err != nil {
			c.closeWith(ws.StatusProtocolError, "")
			return
		}
		if hdr.OpCode.IsControl() {
			if !c.control(hdr, rd) {
				return
			}
			continue
		}
		if !c.message(rd) {
			return
		}
	}
}

// control answers a ping and a close; it reports false when reading ends.
func (c *conn) control(hdr ws.Header, rd io.Reader) bool {
	payload, err := io.ReadAll(io.LimitReader(rd, 125))
	if err != nil {
		return false
	}
	switch hdr.OpCode {
	case ws.OpPing:
		c.send(frame{data: payload, op: ws.OpPong, forced: true})
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(payload)
		if code.Empty() {
			code = ws.StatusNormalClosure
		}
		c.closeWith(code, "")
		return false
	}
	return true
}

// message reads one whole data message and handles it.
func (c *conn) message(rd *wsutil.Reader) bool {
	buf := readBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= protocol.MaxClientFrame*2 {
			buf.Reset()
			readBufs.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(rd); err != nil {
		if errors.Is(err, wsutil.ErrMessageTooLarge) {
			c.closeWith(protocol.CloseTooLarge, "message larger than 64 KiB")
		} else {
			c.closeWith(ws.StatusProtocolError, "")
		}
		return false
	}
	c.lastRequest.Store(time.Now().UnixNano())
	c.handle(buf.Bytes())
	return true
}

// Who writes a connection's frames.
const (
	ownerNone    = iota // nothing waits to be written
	ownerFlusher        // registered with the flusher for its next round
	ownerWriter         // a writer goroutine of its own (backlog, close, TLS)
)

// send queues a frame: a live event for the flusher's next round, a reply
// or initial data for a writer goroutine started at once (unless a round or
// a writer already has the connection). A live frame for a client whose backlog is already
// past the limit closes it with 4009 instead: events are never silently
// dropped. (One large frame on an empty queue always goes.)
func (c *conn) send(f frame) {
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return
	}
	if !f.forced && c.queued > c.srv.cfg.OutboundLimit {
		c.wmu.Unlock()
		c.srv.metrics.slowCloses.Inc()
		c.closeWith(protocol.CloseSlowConsumer, "client too slow")
		return
	}
	c.queue = append(c.queue, f)
	if !f.forced {
		c.queued += len(f.data)
	}
	idle := c.owner == ownerNone
	switch {
	case idle && f.forced: // a reply or initial data: no round to wait for
		c.owner = ownerWriter
	case idle:
		c.owner = ownerFlusher
	}
	c.wmu.Unlock()
	switch {
	case idle && f.forced:
		go c.writeLoop(nil, time.Time{})
	case idle && !c.srv.flush.addConn(c):
		c.handOff(nil, time.Time{})
	}
}

// closeWith drops whatever waits, sends a close frame and closes the
// connection; the reader then ends the session. Safe to call often.
func (c *conn) closeWith(code ws.StatusCode, why string) {
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return
	}
	c.closing, c.closeCode, c.closeWhy = true, code, why
	c.queue, c.queued = nil, 0
	start := c.owner == ownerNone // else the flusher hands it off, or its writer sees closing
	if start {
		c.owner = ownerWriter
	}
	c.wmu.Unlock()
	// A write in progress to a client that does not read gives up soon.
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if start {
		go c.writeLoop(nil, time.Time{})
	}
}

// handOff gives the connection's writing to a goroutine of its own, which
// first writes rest (frames the flusher could write only in part, the
// oldest change in them born then).
func (c *conn) handOff(rest []byte, born time.Time) {
	c.wmu.Lock()
	c.owner = ownerWriter
	c.wmu.Unlock()
	go c.writeLoop(rest, born)
}

// flush writes what waits for c in one system call that does not block;
// the flusher calls it, and c.owner is ownerFlusher. What the socket cannot
// take at once goes to a writer of c's own. buf is scratch space, returned
// for reuse.
func (c *conn) flush(buf []byte) []byte {
	c.wmu.Lock()
	if c.closing || c.raw == nil {
		c.wmu.Unlock()
		c.handOff(nil, time.Time{})
		return buf
	}
	frames := c.takeLocked()
	c.wmu.Unlock()
	buf, born := appendFrames(buf, frames), oldestBorn(frames)
	c.recycle(frames)
	c.counted(len(frames))
	n, err := writeNow(c.raw, buf)
	if err != nil {
		c.wmu.Lock()
		c.owner = ownerNone
		c.wmu.Unlock()
		_ = c.nc.Close() // the reader ends the session
		return buf
	}
	if n < len(buf) {
		c.handOff(bytes.Clone(buf[n:]), born)
		return buf
	}
	c.observe(born)
	c.afterFlush()
	return buf
}

// afterFlush registers c for the next round if frames arrived meanwhile.
func (c *conn) afterFlush() {
	c.wmu.Lock()
	switch {
	case c.closing:
		c.wmu.Unlock()
		c.handOff(nil, time.Time{})
	case len(c.queue) > 0:
		c.wmu.Unlock()
		if !c.srv.flush.addConn(c) {
			c.handOff(nil, time.Time{})
		}
	default:
		c.owner = ownerNone
		c.wmu.Unlock()
	}
}

// writeLoop writes rest, then the queue until it is empty, blocking as
// long as the client takes (up to WriteTimeout a write); then the flusher
// writes c again. Frames go through a pooled buffer that large ones (initial
// data) bypass, so they are not copied.
func (c *conn) writeLoop(rest []byte, born time.Time) {
	bw := writeBufs.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	defer func() {
		bw.Reset(nil)
		writeBufs.Put(bw)
	}()
	if len(rest) > 0 {
		c.setWriteDeadline()
		if _, err := c.nc.Write(rest); err != nil {
			_ = c.nc.Close()
			return
		}
		c.observe(born)
	}
	for {
		frames, closing := c.take()
		if len(frames) == 0 && !closing {
			return
		}
		c.setWriteDeadline()
		c.counted(len(frames))
		if err := c.writeFrames(bw, frames, closing); err != nil {
			_ = c.nc.Close()
			return
		}
		if closing {
			c.halfClose()
			return
		}
	}
}

var writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// writeFrames writes frames (and, closing, the close frame) through bw.
func (c *conn) writeFrames(bw *bufio.Writer, frames []frame, closing bool) error {
	var hdr [14]byte
	born := oldestBorn(frames)
	for i := range frames {
		f := &frames[i]
		if _, err := bw.Write(appendFrameHeader(hdr[:0], f.op, len(f.data))); err != nil {
			return err
		}
		if _, err := bw.Write(f.data); err != nil {
			return err
		}
	}
	c.recycle(frames)
	if closing {
		c.wmu.Lock()
		body := ws.NewCloseFrameBody(c.closeCode, c.closeWhy)
		c.wmu.Unlock()
		_, _ = bw.Write(appendFrame(hdr[:0], ws.OpClose, body))
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	c.observe(born)
	return nil
}

// take empties the queue for the writer goroutine; when nothing is left it
// gives the connection back (the flusher writes it next time).
func (c *conn) take() ([]frame, bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	frames := c.takeLocked()
	if len(frames) == 0 && !c.closing {
		c.owner = ownerNone
		// The flusher's writes must not meet this writer's deadline.
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	return frames, c.closing
}

// takeLocked empties the queue; c.wmu is held.
func (c *conn) takeLocked() []frame {
	frames := c.queue
	c.queue, c.spare = c.spare[:0], nil
	c.queued = 0
	return frames
}

func (c *conn) setWriteDeadline() {
	c.wmu.Lock()
	if !c.closing { // closeWith has set a shorter deadline: keep it
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	}
	c.wmu.Unlock()
}

// counted counts a write of frames, as it starts (a client that has read
// it finds it counted).
func (c *conn) counted(frames int) {
	c.srv.metrics.writes.Inc()
	c.srv.metrics.framesOut.Add(float64(frames))
}

// observe times the oldest change of a write, once it is written.
func (c *conn) observe(born time.Time) {
	if !born.IsZero() {
		c.srv.metrics.latency.Observe(time.Since(born).Seconds())
	}
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

// recycle keeps the drained slice for the next round of the queue.
func (c *conn) recycle(frames []frame) {
	clear(frames)
	c.wmu.Lock()
	if c.spare == nil && cap(frames) <= 1024 {
		c.spare = frames[:0]
	}
	c.wmu.Unlock()
}

// halfClose ends the sending side after the close frame, so that the client
// reads the close frame before the connection goes; the reader (or a timer,
// if the client never answers) closes it for good.
func (c *conn) halfClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	time.AfterFunc(2*time.Second, func() { _ = c.nc.Close() })
}

// finish runs when the reader ends: whatever the client still sends is read
// and dropped for a moment (closing a socket with unread data would reset
// it and could lose our close frame), then the connection is closed.
func (c *conn) finish() {
	c.closeWith(ws.StatusNormalClosure, "")
	c.endSession(false)
	c.srv.removeConn(c)
	c.srv.metrics.connections.Dec()
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, c.src)
	_ = c.nc.Close()
	c.srv.wg.Done()
}
