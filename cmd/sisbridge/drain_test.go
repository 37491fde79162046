package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// TestStoppingGatewayDrainsFirst: on a stop, the gateway answers /readyz
// 503 for the drain delay while its clients stay connected, and only then
// closes them with 1001: a load balancer checking /readyz stops sending it
// clients before they are moved.
func TestStoppingGatewayDrainsFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var stderr lockedBuffer
	go func() {
		done <- run(rctx, []string{"run", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
			"--drain-delay", "1500ms", "--log-format", "json"}, strings.NewReader(""), &stderr)
	}()
	until(t, "the gateway up", func() bool { return strings.Contains(stderr.String(), "gateway listening") })
	base := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(stderr.String())
	until(t, "ready", func() bool { code, _ := get(base + "readyz"); return code == http.StatusOK })
	c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+strings.TrimPrefix(protocol.Path, "/"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Initialize(ctx, "", "", false); err != nil {
		t.Fatal(err)
	}
	stop()
	until(t, "/readyz 503", func() bool { code, _ := get(base + "readyz"); return code == http.StatusServiceUnavailable })
	draining := time.Now()
	select {
	case <-c.Done():
		t.Fatal("the client was closed before /readyz said the gateway is stopping")
	default:
	}
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the client was never closed")
	}
	if code, _ := c.CloseCode(); code != protocol.CloseGoingAway {
		t.Fatalf("close code %d, want %d", code, protocol.CloseGoingAway)
	}
	if held := time.Since(draining); held < time.Second {
		t.Errorf("clients closed %s after /readyz turned 503; the drain delay is 1.5s", held)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
