package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/protocol"
)

// conn is one client connection. Its reader goroutine reads and handles
// requests in order; frames for the client wait in a queue that a writer
// goroutine, started on demand, drains.
type conn struct {
	srv    *Server
	nc     net.Conn
	src    io.Reader
	format protocol.Format
	opcode ws.OpCode

	wmu       sync.Mutex // guards the queue and the close state
	queue     []frame
	spare     []frame
	queued    int // bytes of live frames waiting (they count towards the limit)
	writing   bool
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
	c := &conn{srv: s, nc: nc, src: nc, format: format, opcode: ws.OpText}
	if format == protocol.Msgpack {
		c.opcode = ws.OpBinary
	}
	if n := rw.Reader.Buffered(); n > 0 { // bytes the client sent right after the handshake
		peek, _ := rw.Reader.Peek(n)
		c.src = io.MultiReader(bytes.NewReader(bytes.Clone(peek)), nc)
	}
	now := time.Now()
	c.lastRequest.Store(now.UnixNano())
	c.keepAliveAt.Store(now.Add(s.cfg.KeepAlive).UnixNano())
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

// send queues a frame. A live frame for a client whose backlog is already
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
	start := !c.writing
	c.writing = true
	c.wmu.Unlock()
	if start {
		go c.writeLoop()
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
	start := !c.writing
	c.writing = true
	c.wmu.Unlock()
	// A write in progress to a client that does not read gives up soon.
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if start {
		go c.writeLoop()
	}
}

var writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// writeLoop writes the queue until it is empty, then ends; closeWith and
// send start it again when needed.
func (c *conn) writeLoop() {
	bw := writeBufs.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	defer func() {
		bw.Reset(nil)
		writeBufs.Put(bw)
	}()
	for {
		if d := c.srv.cfg.WriteDelay; d > 0 {
			time.Sleep(d)
		}
		frames, closing := c.take()
		if len(frames) == 0 && !closing {
			return
		}
		err := c.write(bw, frames, closing)
		switch {
		case err != nil:
			_ = c.nc.Close()
			return
		case closing:
			c.halfClose()
			return
		}
	}
}

// take empties the queue; it clears writing when there is nothing left.
func (c *conn) take() ([]frame, bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	frames := c.queue
	c.queue, c.spare = c.spare[:0], nil
	c.queued = 0
	if len(frames) == 0 && !c.closing {
		c.writing = false
	}
	return frames, c.closing
}

func (c *conn) write(bw *bufio.Writer, frames []frame, closing bool) error {
	c.wmu.Lock()
	if !c.closing { // closeWith has set a shorter deadline: keep it
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	}
	c.wmu.Unlock()
	var oldest time.Time
	for i := range frames {
		f := &frames[i]
		if err := ws.WriteHeader(bw, ws.Header{Fin: true, OpCode: f.op, Length: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := bw.Write(f.data); err != nil {
			return err
		}
		if !f.born.IsZero() && (oldest.IsZero() || f.born.Before(oldest)) {
			oldest = f.born
		}
	}
	if closing {
		c.wmu.Lock()
		body := ws.NewCloseFrameBody(c.closeCode, c.closeWhy)
		c.wmu.Unlock()
		_ = ws.WriteHeader(bw, ws.Header{Fin: true, OpCode: ws.OpClose, Length: int64(len(body))})
		_, _ = bw.Write(body)
	}
	err := bw.Flush()
	c.srv.metrics.framesOut.Add(float64(len(frames)))
	if !oldest.IsZero() && err == nil {
		c.srv.metrics.latency.Observe(time.Since(oldest).Seconds())
	}
	c.recycle(frames)
	return err
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
