package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/protocol"
)

// transport is one client's WebSocket connection. It owns the frames: it
// reads the client's messages and hands each to its session, and it holds
// everything waiting for the client (replies, events, the initial data
// still to produce, the live events held behind it), counts all of it
// against the outbound limit, and decides who writes: the flusher's next
// round, or a writer goroutine of its own while the client does not take
// frames as fast or initial data is being produced.
//
// Frames belong to a session generation (one per Initialize; 0 for the
// connection itself): once a generation has ended, its frames are refused,
// so nothing of a session can follow its RouterDisconnected.
type transport struct {
	srv *Server
	nc  net.Conn
	raw syscall.RawConn // nc's descriptor for writes that must not block; nil if none (TLS)
	src io.Reader

	// format and opcode are read with mu for every frame queued: they
	// share its cache line.
	format     protocol.Format
	opcode     ws.OpCode
	mu         sync.Mutex // guards the state below
	queue      []frame
	spare      []frame
	queued     int       // bytes of the frames in queue
	held       int       // bytes of live frames held by subscriptions still getting initial data
	streams    []*stream // initial data still to produce, in order
	owner      int       // ownerNone, ownerFlusher or ownerWriter
	budgetWait bool      // registered with the initial-data budget, waiting for room
	served     bool      // holds a place in the initial-data budget
	ended      uint64    // generations up to this one have ended
	// seqs holds, for each group whose InitialDataComplete is queued in
	// the current session, the Seq of the last SessionsUpdated (or the
	// InitialDataComplete) queued: what its KeepAlive says (§11). The
	// queue is written in order, so it is what the client has when it
	// reads the KeepAlive.
	seqs      map[string]*groupSeq
	closing   bool
	closeCode ws.StatusCode
	closeWhy  string
}

// frame is one message for the client.
type frame struct {
	data    []byte
	op      ws.OpCode
	gen     uint64    // session generation; 0: the connection's own
	initial bool      // initial data: its bytes count against the gateway's budget
	born    time.Time // oldest router change in it, for the latency histogram
	mark    *groupSeq // the subscription's KeepAlive record, for an event with a Seq; nil for others
	seq     uint64    // its Seq
}

// groupSeq is one subscription's entry in its connection's KeepAlive: the
// Seq of the last event of the group queued. Its frames point at it, so
// queueing one costs no lookup; t.mu guards it.
type groupSeq struct {
	group  string
	seq    uint64
	listed bool // in the transport's seqs: InitialDataComplete queued, not forgotten since
}

// Who writes a connection's frames.
const (
	ownerNone    = iota // nothing waits to be written
	ownerFlusher        // registered with the flusher for its next round
	ownerWriter         // a writer goroutine of its own
)

func newTransport(s *Server, nc net.Conn, rw *bufio.ReadWriter, format protocol.Format) *transport {
	setSendBuffer(nc, s.cfg.SendBuffer)
	t := &transport{srv: s, nc: nc, raw: rawConn(nc), src: nc, format: format, opcode: ws.OpText}
	if format == protocol.Msgpack {
		t.opcode = ws.OpBinary
	}
	if n := rw.Reader.Buffered(); n > 0 { // bytes the client sent right after the handshake
		peek, _ := rw.Reader.Peek(n)
		t.src = io.MultiReader(bytes.NewReader(bytes.Clone(peek)), nc)
	}
	return t
}

// setSendBuffer sets a connection's kernel send buffer, when n is
// positive and the connection is TCP (beneath TLS or not).
func setSendBuffer(nc net.Conn, n int) {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok && n > 0 {
		_ = tcp.SetWriteBuffer(n)
	}
}

// handler receives what a transport reads.
type handler interface {
	// handle answers one client message.
	handle(data []byte)
	// finish runs once when reading ends.
	finish()
}

var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// serve reads messages until the connection ends, handing each to h.
func (t *transport) serve(h handler) {
	defer t.finish(h)
	rd := &wsutil.Reader{Source: t.src, State: ws.StateServerSide, MaxMessageSize: protocol.MaxClientFrame, CheckUTF8: true}
	rd.OnIntermediate = func(hdr ws.Header, r io.Reader) error { // a control frame between fragments
		if !t.control(hdr, r) {
			return errPeerClosed
		}
		return nil
	}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			t.readFailed(err)
			return
		}
		if hdr.OpCode.IsControl() {
			if !t.control(hdr, rd) {
				return
			}
			continue
		}
		if hdr.OpCode != t.opcode {
			t.closeWith(ws.StatusUnsupportedData, t.wrongOpcode())
			return
		}
		if !t.message(rd, h) {
			return
		}
	}
}

// errPeerClosed: the client sent a close frame in the middle of a message.
var errPeerClosed = errors.New("closed by the client")

// wrongOpcode says which frames the connection's subprotocol takes.
func (t *transport) wrongOpcode() string {
	if t.format == protocol.Msgpack {
		return "sis.v1.msgpack takes binary frames"
	}
	return "sis.v1.json takes text frames"
}

// readFailed closes the connection after a read error, with the code that
// names it.
func (t *transport) readFailed(err error) {
	switch {
	case errors.Is(err, errPeerClosed):
	case errors.Is(err, wsutil.ErrMessageTooLarge):
		t.closeWith(protocol.CloseTooLarge, "message larger than 64 KiB")
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		t.closeWith(ws.StatusInvalidFramePayloadData, "text that is not UTF-8")
	default:
		t.closeWith(ws.StatusProtocolError, "")
	}
}

// control answers a ping and a close; it reports false when reading ends.
func (t *transport) control(hdr ws.Header, rd io.Reader) bool {
	payload, err := io.ReadAll(io.LimitReader(rd, 125))
	if err != nil {
		return false
	}
	switch hdr.OpCode {
	case ws.OpPing:
		t.send(frame{data: payload, op: ws.OpPong})
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(payload)
		if code.Empty() {
			code = ws.StatusNormalClosure
		}
		t.closeWith(code, "")
		return false
	}
	return true
}

// message reads one whole data message and hands it to h.
func (t *transport) message(rd *wsutil.Reader, h handler) bool {
	buf := readBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= protocol.MaxClientFrame*2 {
			buf.Reset()
			readBufs.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(rd); err != nil {
		t.readFailed(err)
		return false
	}
	h.handle(buf.Bytes())
	return true
}

// finish runs when reading ends: whatever the client still sends is read
// and dropped for a moment (closing a socket with unread data would reset
// it and could lose our close frame), then the connection is closed.
func (t *transport) finish(h handler) {
	t.closeWith(ws.StatusNormalClosure, "")
	h.finish()
	_ = t.nc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, t.src)
	_ = t.nc.Close()
}

// event returns a frame of an encoded event or reply for generation gen.
func (t *transport) event(gen uint64, data []byte) frame {
	return frame{data: data, op: t.opcode, gen: gen}
}

// send queues a frame to be written at once (a reply, an event that is not
// a live update); false if it was refused: its generation has ended, the
// connection is closing, or the client is past its outbound limit (it is
// then closed with 4009).
func (t *transport) send(f frame) bool { return t.enqueue(f, false) }

// sendLive queues a live update for the flusher's next round; false as for
// send.
func (t *transport) sendLive(f frame) bool { return t.enqueue(f, true) }

func (t *transport) enqueue(f frame, live bool) bool {
	t.mu.Lock()
	return t.enqueueLocked(f, live)
}

// keepAlive queues a KeepAlive with the Seqs of what is queued before it.
func (t *transport) keepAlive() bool {
	t.mu.Lock()
	seqs := make(map[string]uint64, len(t.seqs))
	for g, m := range t.seqs {
		seqs[g] = m.seq
	}
	return t.enqueueLocked(frame{data: protocol.AppendKeepAlive(t.format, nil, seqs), op: t.opcode}, false)
}

// enqueueLocked is enqueue with t.mu held; it unlocks it.
func (t *transport) enqueueLocked(f frame, live bool) bool {
	if !t.acceptsLocked(f.gen) {
		t.mu.Unlock()
		return false
	}
	if t.overLimitLocked(len(f.data)) {
		t.mu.Unlock()
		t.tooSlow()
		return false
	}
	t.queue = append(t.queue, f)
	t.queued += len(f.data)
	t.noteLocked(&f)
	start := t.claimLocked(live)
	urgent := !live && t.owner == ownerFlusher // a reply behind live updates waiting for a round
	t.mu.Unlock()
	t.start(start)
	if urgent {
		t.srv.flush.urge()
	}
	return true
}

// noteLocked records the Seq of a queued event of a group whose
// InitialDataComplete is queued; t.mu is held.
func (t *transport) noteLocked(f *frame) {
	if m := f.mark; m != nil && m.listed {
		m.seq = f.seq
	}
}

// completeLocked records a subscription's InitialDataComplete, of Seq
// seq, queued; t.mu is held.
func (t *transport) completeLocked(m *groupSeq, seq uint64) {
	if t.seqs == nil {
		t.seqs = map[string]*groupSeq{}
	}
	if old := t.seqs[m.group]; old != nil {
		old.listed = false
	}
	m.seq, m.listed = seq, true
	t.seqs[m.group] = m
}

// forget drops a group from the KeepAlive's Seqs: its subscription ended,
// and nothing more of it is queued.
func (t *transport) forget(group string) {
	t.mu.Lock()
	t.unlistLocked(group)
	t.mu.Unlock()
}

// unlistLocked drops a group from the KeepAlive's Seqs; t.mu is held.
func (t *transport) unlistLocked(group string) {
	if m := t.seqs[group]; m != nil {
		m.listed = false
		delete(t.seqs, group)
	}
}

// acceptsLocked says whether a frame of generation gen may still be queued.
func (t *transport) acceptsLocked(gen uint64) bool {
	return !t.closing && (gen == 0 || gen > t.ended)
}

// overLimitLocked says whether n more bytes would take the client past its
// outbound limit. One frame on an empty queue always goes.
func (t *transport) overLimitLocked(n int) bool {
	waiting := t.queued + t.held
	return waiting > 0 && waiting+n > t.srv.cfg.OutboundLimit
}

// tooSlow closes a client whose backlog passed the limit.
func (t *transport) tooSlow() {
	t.srv.metrics.slowCloses.Inc()
	t.closeWith(protocol.CloseSlowConsumer, "client too slow")
}

// Who to start after a frame was queued.
const (
	startNone = iota
	startFlusher
	startWriter
)

// claimLocked takes the writing of an idle connection: for the flusher's
// next round (live updates) or for a writer started at once.
func (t *transport) claimLocked(live bool) int {
	if t.owner != ownerNone {
		return startNone
	}
	if live && t.raw != nil {
		t.owner = ownerFlusher
		return startFlusher
	}
	t.owner = ownerWriter
	return startWriter
}

// start acts on claimLocked's decision.
func (t *transport) start(what int) {
	switch what {
	case startFlusher:
		if !t.srv.flush.addTransport(t) {
			t.handOff(nil, time.Time{}, 0)
		}
	case startWriter:
		go t.writeLoop()
	}
}

// hold counts n bytes of a live frame that a subscription keeps until its
// initial data is out; false (and the client closed with 4009) when that
// takes it past its limit, or if gen has ended.
func (t *transport) hold(gen uint64, n int) bool {
	t.mu.Lock()
	if !t.acceptsLocked(gen) {
		t.mu.Unlock()
		return false
	}
	if t.overLimitLocked(n) {
		t.mu.Unlock()
		t.tooSlow()
		return false
	}
	t.held += n
	t.mu.Unlock()
	return true
}

// unhold queues frames a subscription held (counted by hold), after its
// initial data; or, when the generation has ended, forgets them.
func (t *transport) unhold(frames []frame) {
	n := frameBytes(frames)
	t.mu.Lock()
	t.held -= n
	if len(frames) == 0 || !t.acceptsLocked(frames[0].gen) {
		t.mu.Unlock()
		return
	}
	t.queue = append(t.queue, frames...)
	t.queued += n
	for i := range frames {
		t.noteLocked(&frames[i])
	}
	start := t.claimLocked(true)
	t.mu.Unlock()
	t.start(start)
}

// dropHeld forgets frames a subscription held (counted by hold).
func (t *transport) dropHeld(frames []frame) {
	n := frameBytes(frames)
	t.mu.Lock()
	t.held -= n
	t.mu.Unlock()
}

// stream queues a subscription's initial data, produced as the client takes
// it; false if the generation has ended (the stream is then cancelled).
func (t *transport) stream(s *stream) bool {
	t.mu.Lock()
	if !t.acceptsLocked(s.gen) {
		t.mu.Unlock()
		s.p.cancel()
		return false
	}
	t.streams = append(t.streams, s)
	start := t.claimLocked(false)
	t.mu.Unlock()
	t.start(start)
	return true
}

// cancelStream drops a stream not yet produced to its end (Unsubscribe).
func (t *transport) cancelStream(s *stream) {
	t.mu.Lock()
	found := t.dropStreamLocked(s)
	t.mu.Unlock()
	if found {
		s.p.cancel()
		t.leaveIfDone()
	}
}

func (t *transport) dropStreamLocked(s *stream) bool {
	for i, x := range t.streams {
		if x == s {
			t.streams = append(t.streams[:i], t.streams[i+1:]...)
			return true
		}
	}
	return false
}

// endGeneration ends a session generation: its frames are refused from now
// on and its initial data is no longer produced.
func (t *transport) endGeneration(gen uint64) {
	t.mu.Lock()
	t.ended = max(t.ended, gen)
	for g := range t.seqs {
		t.unlistLocked(g)
	}
	var dropped []*stream
	kept := t.streams[:0]
	for _, s := range t.streams {
		if s.gen <= t.ended {
			dropped = append(dropped, s)
		} else {
			kept = append(kept, s)
		}
	}
	t.streams = kept
	t.mu.Unlock()
	for _, s := range dropped {
		s.p.cancel()
	}
	t.leaveIfDone()
}

// closeWith drops whatever waits, sends a close frame and closes the
// connection; the reader then ends the session. Safe to call often.
func (t *transport) closeWith(code ws.StatusCode, why string) {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return
	}
	t.closing, t.closeCode, t.closeWhy = true, code, why
	dropped := initialBytes(t.queue)
	reuseInitial(t.queue)
	t.queue, t.queued = nil, 0
	// The streams are cancelled by the writer that writes the close frame:
	// closeWith may be called with a view's lock held (a live frame past the
	// limit), and cancelling takes it.
	start := t.owner == ownerNone // else the flusher hands it off, or its writer sees closing
	if start {
		t.owner = ownerWriter
	}
	t.mu.Unlock()
	t.srv.budget.release(dropped)
	// A write in progress to a client that does not read gives up soon.
	_ = t.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if start {
		go t.writeLoop()
	}
}

// kick starts a writer for an idle connection with work waiting (the
// initial-data budget has room again).
func (t *transport) kick() {
	t.mu.Lock()
	t.budgetWait = false
	start := startNone
	if t.owner == ownerNone && (len(t.queue) > 0 || len(t.streams) > 0 || t.closing) {
		t.owner = ownerWriter
		start = startWriter
	}
	t.mu.Unlock()
	t.start(start)
}

// frameBytes counts the bytes of frames.
func frameBytes(frames []frame) int {
	n := 0
	for i := range frames {
		n += len(frames[i].data)
	}
	return n
}
