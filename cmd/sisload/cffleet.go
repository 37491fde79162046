package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	cfproto "github.com/centrifugal/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/subjects"
)

// cfFleet is a fleet of raw WebSocket clients of centrifuge's protobuf
// protocol (what centrifuge-go speaks, without its per-client machinery):
// each connects, subscribes to a channel per group and decodes every
// publication, whose data are the group's NATS event bytes.
type cfFleet struct {
	cfg fleetConfig
	tally
	clients []*cfClient
	wg      sync.WaitGroup
}

// cfClient is one connection and how far it got.
type cfClient struct {
	conn  net.Conn
	p     *progress
	wmu   sync.Mutex // writes: the handshake, pongs, close replies
	ready chan error // the connect and subscribe replies, or why not
}

// startCentrifugeFleet connects every client and subscribes it to its
// groups' channels.
func startCentrifugeFleet(ctx context.Context, cfg fleetConfig) (f *cfFleet, err error) {
	f = &cfFleet{cfg: cfg, clients: make([]*cfClient, len(cfg.Assign))}
	defer closeOnError(f.Close, &err)
	sctx, cancel := context.WithTimeout(ctx, cfg.Setup)
	defer cancel()
	if err := forEachParallel(sctx, len(cfg.Assign), cfg.Parallel, f.connect); err != nil {
		return nil, fmt.Errorf("centrifuge clients: %w", err)
	}
	return f, nil
}

// connect opens client i, sends its Connect and Subscribe commands in one
// frame, and returns once the server has answered them all.
func (f *cfFleet) connect(ctx context.Context, i int) error {
	c := &cfClient{p: newProgress(f.cfg.Assign[i]), ready: make(chan error, 1)}
	conn, br, _, err := ws.Dialer{}.Dial(ctx, f.cfg.URL)
	if err != nil {
		return fmt.Errorf("client %d: dial %s: %w", i, f.cfg.URL, err)
	}
	c.conn = conn
	f.clients[i] = c
	if br == nil {
		br = bufio.NewReaderSize(conn, 4<<10)
	}
	frame, err := cfHandshake(c.p.groups)
	if err != nil {
		return err
	}
	if err := c.write(frame); err != nil {
		return fmt.Errorf("client %d: send connect: %w", i, err)
	}
	f.wg.Add(1)
	go f.read(c, br)
	select {
	case err := <-c.ready:
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client %d: connect and subscribe: %w", i, ctx.Err())
	}
}

// cfHandshake encodes a Connect command (id 1) and a Subscribe command
// per group (ids 2, 3, ...) as one frame.
func cfHandshake(groups []string) ([]byte, error) {
	enc := cfproto.NewProtobufCommandEncoder()
	cmds := []*cfproto.Command{{Id: 1, Connect: &cfproto.ConnectRequest{Name: "sisload"}}}
	for j, g := range groups {
		cmds = append(cmds, &cfproto.Command{Id: uint32(j + 2), Subscribe: &cfproto.SubscribeRequest{Channel: g}}) //nolint:gosec // G115: a few groups.
	}
	var frame []byte
	for _, cmd := range cmds {
		b, err := enc.Encode(cmd)
		if err != nil {
			return nil, fmt.Errorf("encode %v: %w", cmd, err)
		}
		frame = append(frame, b...)
	}
	return frame, nil
}

// cfPong is an empty command: the answer to the server's ping (an empty
// reply).
var cfPong = []byte{0}

// write sends one binary frame.
func (c *cfClient) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return wsutil.WriteClientBinary(c.conn, frame)
}

// read reads frames until the connection ends: replies to the handshake,
// publications, pings.
func (f *cfFleet) read(c *cfClient, src io.Reader) {
	defer f.wg.Done()
	h := &cfReader{f: f, c: c, waiting: len(c.p.groups) + 1}
	err := readFrames(src, c, h.frame)
	if h.waiting > 0 {
		c.ready <- fmt.Errorf("connection ended before the handshake's replies: %w", err)
	}
	c.p.closed.Store(true)
	if !f.tally.stopping.Load() {
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			f.tally.closedWith(int(ce.Code))
		} else {
			f.tally.closedWith(0)
		}
	}
}

// readFrames reads binary frames from src, answering control frames,
// and hands each frame to fn until a read or fn fails.
func readFrames(src io.Reader, c *cfClient, fn func([]byte) error) error {
	control := wsutil.ControlFrameHandler(writerFunc(c.writeRaw), ws.StateClientSide)
	rd := &wsutil.Reader{Source: src, State: ws.StateClientSide, OnIntermediate: control}
	var buf bytes.Buffer
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return err
		}
		if hdr.OpCode.IsControl() {
			if err := control(hdr, rd); err != nil {
				return err
			}
			continue
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			return err
		}
		if err := fn(buf.Bytes()); err != nil {
			return err
		}
	}
}

// writeRaw writes control frames (a close's answer) under the write lock.
func (c *cfClient) writeRaw(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.Write(p)
}

// writerFunc makes a function an io.Writer.
type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// cfReader handles one client's frames.
type cfReader struct {
	f       *cfFleet
	c       *cfClient
	dec     cfproto.ProtobufReplyDecoder
	waiting int // handshake replies still to come
}

// frame handles every reply of a frame.
func (h *cfReader) frame(data []byte) error {
	_ = h.dec.Reset(data)
	for {
		r, err := h.dec.Decode()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode a reply: %w", err)
		}
		if err := h.reply(r); err != nil {
			return err
		}
	}
}

// reply handles one reply: a handshake answer, a publication or a ping.
func (h *cfReader) reply(r *cfproto.Reply) error {
	switch {
	case r.Id != 0:
		return h.answer(r)
	case r.Push != nil:
		if r.Push.Pub != nil {
			h.publication(r.Push.Channel, r.Push.Pub.Data)
		}
		return nil
	}
	return h.c.write(cfPong)
}

// answer takes a reply to the handshake; once all are in, the client is
// ready.
func (h *cfReader) answer(r *cfproto.Reply) error {
	if h.waiting == 0 {
		return nil
	}
	if r.Error != nil {
		err := fmt.Errorf("command %d refused: %d %s", r.Id, r.Error.Code, r.Error.Message)
		h.c.ready <- err
		h.waiting = 0
		return err
	}
	if h.waiting--; h.waiting == 0 {
		h.c.ready <- nil
	}
	return nil
}

// publication counts the changes of one published event message, each
// timed from its Event.Time, and notes the group's last Seq.
func (h *cfReader) publication(channel string, data []byte) {
	if !h.f.tally.counting.Load() {
		return
	}
	now := time.Now()
	events, err := subjects.DecodeEvents(data)
	j, ok := h.c.p.index[channel]
	if err != nil || !ok || len(events) == 0 {
		h.f.tally.undecoded.Add(1)
		return
	}
	h.f.tally.deliveries.Add(int64(len(events)))
	for _, e := range events {
		h.f.tally.hist.Record(now.Sub(e.Time))
	}
	h.c.p.last[j].Store(events[len(events)-1].Seq)
}

// Finish drains and returns the counts.
func (f *cfFleet) Finish(ctx context.Context, final map[string]uint64, drain time.Duration) (fleetStats, error) {
	ps := make([]*progress, 0, len(f.clients))
	for _, c := range f.clients {
		ps = append(ps, c.p)
	}
	lagging := f.settle(ctx, ps, final, drain)
	st := f.tally.stats()
	st.Lagging = lagging
	return st, nil
}

// Close closes every connection and waits for the readers.
func (f *cfFleet) Close() {
	f.tally.stopping.Store(true)
	for _, c := range f.clients {
		if c != nil && c.conn != nil {
			_ = c.conn.Close()
		}
	}
	f.wg.Wait()
}
