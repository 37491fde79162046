// Package client is a Go client of the Session Information protocol: it
// dials a gateway, sends requests and waits for their replies, and hands
// events out on a channel. Mirror keeps the queues the events describe.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/protocol"
)

// Options configure Dial.
type Options struct {
	// Format picks the subprotocol. Default protocol.JSON.
	Format protocol.Format
	// EventBuffer is how many events may wait in Events before the client
	// stops reading (and the gateway, in time, closes it as too slow).
	// Default 4096.
	EventBuffer int
	// TLS configures wss:// connections. Default nil: the system's roots.
	TLS *tls.Config
	// OnEvent, when set, receives every event, in order, on the
	// connection's reader goroutine instead of Events (which then only
	// closes when the connection ends). It must return quickly and must not
	// wait for a request's reply: nothing is read while it runs. Default
	// nil: events go to Events.
	OnEvent func(protocol.Message)
	// OnWire, when set, sees every message as it goes over the wire: sent
	// (each request, as encoded) or received (before it is decoded), for a
	// protocol log or a check of the messages against docs/asyncapi.yaml.
	// It runs on the goroutine that sends or reads and must not keep data.
	// Default nil.
	OnWire func(sent bool, data []byte)
}

// Client is one connection to a gateway.
type Client struct {
	conn    net.Conn
	format  protocol.Format
	onEvent func(protocol.Message)
	onWire  func(sent bool, data []byte)
	events  chan protocol.Message
	done    chan struct{}
	quit    chan struct{}
	once    sync.Once

	wmu     sync.Mutex // serializes writes (requests, pongs)
	mu      sync.Mutex
	pending map[int64]replyFunc
	nextID  atomic.Int64
	closed  *wsutil.ClosedError
	err     error
}

// Dial connects to a gateway's WebSocket URL (ws:// or wss://, path
// protocol.Path).
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	if opts.OnEvent != nil {
		opts.EventBuffer = 0 // Events only closes
	} else if opts.EventBuffer == 0 {
		opts.EventBuffer = 4096
	}
	sub := protocol.SubprotocolJSON
	if opts.Format == protocol.Msgpack {
		sub = protocol.SubprotocolMsgpack
	}
	conn, br, hs, err := ws.Dialer{Protocols: []string{sub}, TLSConfig: opts.TLS}.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if hs.Protocol != sub {
		_ = conn.Close()
		return nil, fmt.Errorf("dial %s: gateway chose subprotocol %q, not %q", url, hs.Protocol, sub)
	}
	c := &Client{conn: conn, format: opts.Format, onEvent: opts.OnEvent, onWire: opts.OnWire, events: make(chan protocol.Message, opts.EventBuffer),
		done: make(chan struct{}), quit: make(chan struct{}), pending: map[int64]replyFunc{}}
	// Frames are read through a buffer: a frame header alone would
	// otherwise cost a system call or two.
	if br == nil {
		br = bufio.NewReaderSize(conn, 32<<10)
	}
	go c.read(br)
	return c, nil
}

// Events delivers every event in order; it is closed when the connection ends.
func (c *Client) Events() <-chan protocol.Message { return c.events }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// CloseCode returns the close code and reason the gateway sent, once Done
// is closed; 0 if it sent none.
func (c *Client) CloseCode() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == nil {
		return 0, ""
	}
	return int(c.closed.Code), c.closed.Reason
}

// Close closes the connection and waits for the reader to end; events not
// yet taken are dropped.
func (c *Client) Close() error {
	c.once.Do(func() { close(c.quit) })
	err := c.conn.Close()
	<-c.done
	return err
}

func (c *Client) read(src io.Reader) {
	defer close(c.done)
	defer close(c.events)
	defer c.failPending()
	control := wsutil.ControlFrameHandler(writerFunc(c.writeRaw), ws.StateClientSide)
	rd := &wsutil.Reader{Source: src, State: ws.StateClientSide, OnIntermediate: control}
	var buf bytes.Buffer // messages are decoded into copies: one buffer serves them all
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			c.setErr(err)
			return
		}
		if hdr.OpCode.IsControl() {
			if err := control(hdr, rd); err != nil {
				c.setErr(err)
				return
			}
			continue
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			c.setErr(err)
			return
		}
		if !c.dispatch(buf.Bytes()) {
			return
		}
	}
}

func (c *Client) dispatch(data []byte) bool {
	if c.onWire != nil {
		c.onWire(false, data)
	}
	m, err := protocol.DecodeMessage(c.format, data)
	if err != nil {
		c.setErr(err)
		return false
	}
	if m.Event != "" && c.onEvent != nil {
		c.onEvent(m)
		return true
	}
	if m.Event != "" {
		select {
		case c.events <- m:
			return true
		case <-c.quit:
			return false
		}
	}
	if m.ID == nil {
		return true
	}
	c.mu.Lock()
	fn := c.pending[*m.ID]
	delete(c.pending, *m.ID)
	c.mu.Unlock()
	if fn != nil {
		fn(m, true)
	}
	return true
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ce wsutil.ClosedError
	if errors.As(err, &ce) {
		c.closed = &ce
	}
	if c.err == nil {
		c.err = err
	}
}

func (c *Client) failPending() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, fn := range c.pending {
		fn(protocol.Message{}, false)
		delete(c.pending, id)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// writeRaw writes already framed bytes (pongs, close replies).
func (c *Client) writeRaw(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.Write(p)
}

// SendRaw sends one message as it is, for tests of malformed input.
func (c *Client) SendRaw(data []byte) error {
	op := ws.OpText
	if c.format == protocol.Msgpack {
		op = ws.OpBinary
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return wsutil.WriteClientMessage(c.conn, op, data)
}
