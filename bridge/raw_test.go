package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/protocol"
)

// rawClient is a WebSocket client that sees replies and events in the
// order the gateway wrote them, and that reads only when told to (a client
// that never reads is one that is never told).
type rawClient struct {
	t    *testing.T
	conn net.Conn
	rd   *wsutil.Reader
	id   int64
}

// dialRaw connects to a gateway's JSON endpoint.
func dialRaw(t *testing.T, url string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ws.Dialer{Protocols: []string{protocol.SubprotocolJSON}}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var src io.Reader = conn
	if br != nil {
		src = io.MultiReader(br, conn)
	}
	return &rawClient{t: t, conn: conn, rd: &wsutil.Reader{Source: src, State: ws.StateClientSide}}
}

// send writes a request with the next id and returns that id.
func (c *rawClient) send(req protocol.Request) int64 {
	c.t.Helper()
	c.id++
	id := c.id
	req.ID = &id
	data, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := wsutil.WriteClientMessage(c.conn, ws.OpText, data); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// next reads the next message (reply or event; KeepAlives skipped). It
// returns an error wrapping wsutil.ClosedError when the gateway closed.
func (c *rawClient) next(d time.Duration) (protocol.Message, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		data, err := c.readMessage()
		if err != nil {
			return protocol.Message{}, err
		}
		m, err := protocol.DecodeMessage(protocol.JSON, data)
		if err != nil {
			return m, err
		}
		if m.Event != protocol.EventKeepAlive {
			return m, nil
		}
	}
}

func (c *rawClient) readMessage() ([]byte, error) {
	for {
		hdr, err := c.rd.NextFrame()
		if err != nil {
			return nil, err
		}
		if hdr.OpCode == ws.OpClose {
			payload, _ := io.ReadAll(c.rd)
			code, why := ws.ParseCloseFrameData(payload)
			return nil, wsutil.ClosedError{Code: code, Reason: why}
		}
		if hdr.OpCode.IsControl() {
			_, _ = io.Copy(io.Discard, c.rd)
			continue
		}
		return io.ReadAll(bufio.NewReader(c.rd))
	}
}

// must reads the next message or fails the test.
func (c *rawClient) must() protocol.Message {
	c.t.Helper()
	m, err := c.next(20 * time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// initialize sends Initialize and waits for its reply.
func (c *rawClient) initialize(positions bool) {
	c.t.Helper()
	id := c.send(protocol.Request{Op: protocol.OpInitialize, SendQueuePositionUpdates: &positions})
	if m := c.must(); m.ID == nil || *m.ID != id || m.Fault != nil {
		c.t.Fatalf("Initialize: %+v", m)
	}
}
