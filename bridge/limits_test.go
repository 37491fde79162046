package bridge_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/protocol"
)

// dialFrom opens a WebSocket from the loopback address ip (all of
// 127.0.0.0/8 is this machine's), returning the HTTP status of a refusal.
func dialFrom(t *testing.T, url, ip string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ws.Dialer{Protocols: []string{protocol.SubprotocolJSON}, NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return nd.DialContext(ctx, network, addr)
	}}
	conn, _, _, err := d.Dial(ctx, url)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, err
}

func refusedWith(err error) int {
	var st ws.StatusError
	if errors.As(err, &st) {
		return int(st)
	}
	return 0
}

// TestConnectionLimits: past the connections from one address the next is
// refused with 429, past the gateway's the next with 503; each counted; a
// closed connection frees its slot.
func TestConnectionLimits(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{Limits: bridge.Limits{Connections: 3, PerAddress: 2}}, nil)
	first, err := dialFrom(t, url, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialFrom(t, url, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := dialFrom(t, url, "127.0.0.1"); refusedWith(err) != http.StatusTooManyRequests {
		t.Fatalf("a third from one address: %v, want 429", err)
	}
	if _, err := dialFrom(t, url, "127.0.0.2"); err != nil {
		t.Fatalf("from another address: %v", err)
	}
	// A client's dial returns with the upgrade's answer, a moment before
	// the gateway registers the connection.
	waitFor(t, "three connections registered", func() bool { return srv.Stats().Connections == 3 })
	if _, err := dialFrom(t, url, "127.0.0.3"); refusedWith(err) != http.StatusServiceUnavailable {
		t.Fatalf("a fourth in all: %v, want 503", err)
	}
	m := gatewayMetrics(t, url)
	if m[`sis_gateway_limit_hits_total{limit="connections_per_address"}`] != 1 || m[`sis_gateway_limit_hits_total{limit="connections"}`] != 1 {
		t.Fatalf("limit hits not counted: %v", m)
	}
	_ = first.Close()
	waitFor(t, "the slot freed", func() bool { return srv.Stats().Connections == 2 })
	if _, err := dialFrom(t, url, "127.0.0.1"); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
}

// TestConnectionWithoutSessionIsClosed: a connection that has no session
// within the initialize timeout is closed with 4011, requests or not.
func TestConnectionWithoutSessionIsClosed(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{Limits: bridge.Limits{InitializeTimeout: 300 * time.Millisecond}}, nil)
	c := dialRaw(t, url)
	c.send(protocol.Request{Op: protocol.OpHeartbeat}) // a request, but no session
	if code := c.closedWith(); code != protocol.CloseInitializeTimeout {
		t.Fatalf("closed with %d, want 4011", code)
	}
	ok := dialRaw(t, url)
	ok.initialize(false)
	if _, err := ok.next(time.Second); err != nil && !isTimeout(err) {
		t.Fatalf("an initialized session was closed: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestRequestFloodIsClosed: requests past the rate and burst close the
// connection with 4029.
func TestRequestFloodIsClosed(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{Limits: bridge.Limits{RequestRate: 5, RequestBurst: 5}}, nil)
	c := dialRaw(t, url)
	c.initialize(false)
	for range 20 {
		c.send(protocol.Request{Op: protocol.OpHeartbeat})
	}
	if code := c.closedWith(); code != protocol.CloseTooManyRequests {
		t.Fatalf("closed with %d, want 4029", code)
	}
	waitFor(t, "the connection gone", func() bool { return srv.Stats().Connections == 0 })
}

// TestSubscriptionLimit: a Subscribe past the session's limit is answered
// InvalidRequestFault, and the session goes on.
func TestSubscriptionLimit(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{Limits: bridge.Limits{Subscriptions: 1}}, nil)
	c := initialized(t, url, false)
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-support"})
	var f *protocol.Fault
	if !errors.As(err, &f) || f.Type != protocol.InvalidRequestFault || !strings.Contains(f.Message, "subscription limit") {
		t.Fatalf("a second subscription: %v", err)
	}
	if err := c.Heartbeat(ctxT(t)); err != nil {
		t.Fatalf("the session after the refusal: %v", err)
	}
}

// TestFailedUpgradeFreesItsSlot: requests to the WebSocket path that are no
// handshake (a plain GET, another WebSocket version) are answered 426
// without taking a slot; one that fails the upgrade itself (a malformed
// key) gives its slot back: with one connection allowed per address, a
// real client still gets in after all of them.
func TestFailedUpgradeFreesItsSlot(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{Limits: bridge.Limits{Connections: 2, PerAddress: 1}}, nil)
	httpURL := "http" + strings.TrimPrefix(url, "ws")
	do := func(h http.Header) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, httpURL, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	upgrade := func(version, key string) http.Header {
		return http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Key": {key},
			"Sec-Websocket-Version": {version}, "Sec-Websocket-Protocol": {protocol.SubprotocolJSON}}
	}
	for i := range 5 {
		if resp := do(nil); resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("plain GET %d: status %d, want 426", i, resp.StatusCode)
		}
		resp := do(upgrade("8", "dGhlIHNhbXBsZSBub25jZQ=="))
		if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Sec-Websocket-Version") != "13" {
			t.Fatalf("WebSocket version 8, %d: status %d, version %q; want 426 naming 13", i, resp.StatusCode, resp.Header.Get("Sec-Websocket-Version"))
		}
	}
	if resp := do(upgrade("13", "short")); resp.StatusCode < 400 || resp.StatusCode == http.StatusTooManyRequests {
		t.Fatalf("a malformed key: status %d, want the upgrade refused", resp.StatusCode)
	}
	// The slot comes back once the refused upgrade is over: the refusal
	// may reach the client a moment before.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := dialFrom(t, url, "127.0.0.1")
		if err == nil {
			break
		}
		if refusedWith(err) != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("a real client after failed upgrades: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "one connection", func() bool { return srv.Stats().Connections == 1 })
}
