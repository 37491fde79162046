package bridge_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/protocol"
)

// writeFrame writes one masked client frame.
func (c *rawClient) writeFrame(op ws.OpCode, fin bool, payload []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(op, fin, payload))); err != nil {
		c.t.Fatal(err)
	}
}

// nextFrame reads the next frame as it is, control frames included.
func (c *rawClient) nextFrame() (ws.OpCode, []byte) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr, err := c.rd.NextFrame()
	if err != nil {
		c.t.Fatal(err)
	}
	payload, err := io.ReadAll(c.rd)
	if err != nil {
		c.t.Fatal(err)
	}
	return hdr.OpCode, payload
}

// closedWith reads until the gateway's close frame and returns its code.
func (c *rawClient) closedWith() ws.StatusCode {
	c.t.Helper()
	for {
		_, err := c.next(10 * time.Second)
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("the connection ended without a close frame: %v", err)
		}
	}
}

// TestFramesTheSubprotocolCannotTake closes a connection that sends text
// that is not UTF-8 (1007) or frames of the other subprotocol's kind
// (1003), each with its RFC 6455 code.
func TestFramesTheSubprotocolCannotTake(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	for _, tc := range []struct {
		name string
		op   ws.OpCode
		data []byte
		want ws.StatusCode
	}{
		{"text that is not UTF-8", ws.OpText, []byte("{\"op\":\"Heartbeat\",\"x\":\"\xff\"}"), ws.StatusInvalidFramePayloadData},
		{"a binary frame on sis.v1.json", ws.OpBinary, []byte(`{"op":"Heartbeat","id":1}`), ws.StatusUnsupportedData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, url)
			c.writeFrame(tc.op, true, tc.data)
			if code := c.closedWith(); code != tc.want {
				t.Fatalf("closed with %d, want %d", code, tc.want)
			}
		})
	}
}

// TestPingBetweenFragmentsIsAnswered sends a message in two fragments with
// a ping between them: the ping gets its pong at once, and the message is
// then answered whole.
func TestPingBetweenFragmentsIsAnswered(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := dialRaw(t, url)
	c.writeFrame(ws.OpText, false, []byte(`{"op":"Heart`))
	c.writeFrame(ws.OpPing, true, []byte("are you there"))
	if op, payload := c.nextFrame(); op != ws.OpPong || string(payload) != "are you there" {
		t.Fatalf("got opcode %d %q, want the pong", op, payload)
	}
	c.writeFrame(ws.OpContinuation, true, []byte(`beat","id":7}`))
	m := c.must()
	if m.ID == nil || *m.ID != 7 || m.Fault == nil || m.Fault.Type != protocol.InvalidRequestFault {
		t.Fatalf("got %+v, want the Heartbeat's fault (not initialized)", m)
	}
}

// TestNoKeepAliveWithoutASession: a connection without a session (before
// Initialize, after RouterDisconnected) is sent no KeepAlive it could not
// answer; a session is.
func TestNoKeepAliveWithoutASession(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{KeepAlive: 100 * time.Millisecond, HeartbeatTimeout: 5 * time.Second}, nil)
	c := dialRaw(t, url)
	if m, err := c.nextAny(600 * time.Millisecond); err == nil {
		t.Fatalf("got %+v before Initialize", m)
	}
	c.initialize(false)
	if m, err := c.nextAny(2 * time.Second); err != nil || m.Event != protocol.EventKeepAlive {
		t.Fatalf("got %+v (%v), want a KeepAlive", m, err)
	}
}

// nextAny reads the next message, KeepAlives included; an error when none
// comes within d.
func (c *rawClient) nextAny(d time.Duration) (protocol.Message, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	data, err := c.readMessage()
	if err != nil {
		return protocol.Message{}, err
	}
	return protocol.DecodeMessage(protocol.JSON, data)
}

// TestAllowedOrigins: with --allowed-origins set, a page of a listed
// origin and the gateway's own pages connect; another origin is refused.
func TestAllowedOrigins(t *testing.T) {
	e := newEnv(t)
	_, wsURL := e.gateway(bridge.Config{AllowedOrigins: []string{"https://wallboard.example"}}, nil)
	own := "http" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws"), protocol.Path)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{"https://wallboard.example", true}, {own, true}, {"https://elsewhere.example", false}} {
		d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {tc.origin}})}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, _, _, err := d.Dial(ctx, wsURL)
		cancel()
		if conn != nil {
			_ = conn.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("origin %s: %v, want allowed %v", tc.origin, err, tc.ok)
		}
	}
}
