package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/natstest"
)

// TestRouterServesHealthAndMetrics: `sisbridge router` answers /healthz,
// /readyz (ready once the link is up) and /metrics, where rejected changes
// are counted by reason.
func TestRouterServesHealthAndMetrics(t *testing.T) {
	s := natstest.Server(t)
	addr := freeAddr(t)
	feedLines := strings.Join([]string{
		`{"op":"tenant","TenantID":"acme","Name":"Acme"}`,
		`{"op":"group","ServiceGroupID":"acme-sales","TenantID":"acme","ServiceGroupName":"Sales"}`,
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"c1","MediaType":"Voice","TimeEnteredQueue":"2026-11-25T09:00:00.000Z"}`,
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"c1","MediaType":"Voice","TimeEnteredQueue":"2026-11-25T09:00:00.000Z"}`,
		`{"op":"remove","ServiceGroupID":"nosuch","CallID":"c9","RemoveCause":"SessionAllocatedToAgent"}`,
	}, "\n") + "\n"
	stdin, feedW := io.Pipe()
	t.Cleanup(func() { _ = feedW.Close() })
	go func() { _, _ = io.WriteString(feedW, feedLines) }() // the pipe stays open: the feed keeps running
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var stderr lockedBuffer // the feed's reader may log after run returned
	go func() {
		done <- run(ctx, []string{"router", "--nats", s.ClientURL(), "--listen", addr, "--source", "feed", "--feed-file", "-",
			"--log-format", "json"}, stdin, &stderr)
	}()
	base := "http://" + addr
	until(t, "ready", func() bool { code, _ := get(base + "/readyz"); return code == http.StatusOK })
	if code, body := get(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	want := []string{`sis_adapter_changes_rejected_total{reason="duplicate_call"} 1`, `sis_adapter_changes_rejected_total{reason="unknown_group"} 1`,
		"sis_adapter_changes_accepted_total 1", "sis_adapter_router_connected 1", "sis_adapter_store_refusing_writes 0", "sis_adapter_queued_sessions 1"}
	until(t, "the metrics", func() bool {
		_, body := get(base + "/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("router: %v\n%s", err, stderr.String())
	}
	if code, _ := get(base + "/readyz"); code == http.StatusOK {
		t.Fatal("still served after the router stopped")
	}
}

// freeAddr returns a loopback address free a moment ago, for a flag that
// wants one before anything listens on it.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFeedFlags: the feed's limits are flags; a line over --feed-max-line
// is refused with its reason and the next one applied; a limit that means
// nothing is named before anything starts.
func TestFeedFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr lockedBuffer
	err := run(ctx, []string{"router", "--nats", "nats://127.0.0.1:1", "--listen", "", "--source", "feed", "--feed-file", "-",
		"--feed-max-line", "0", "--feed-idle-timeout", "-1s"}, strings.NewReader(""), &stderr)
	if err == nil || !strings.Contains(err.Error(), "--feed-max-line 0") || !strings.Contains(err.Error(), "--feed-idle-timeout -1s") {
		t.Fatalf("bad limits: %v", err)
	}
	s := natstest.Server(t)
	lines := `{"op":"tenant","TenantID":"acme","Name":"Acme"}` + "\n" +
		`{"op":"group","ServiceGroupID":"acme-sales","TenantID":"acme","ServiceGroupName":"Sales"}` + "\n" +
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"long","MediaType":"Voice","CustomerInformation":"` + strings.Repeat("x", 300) + `"}` + "\n" +
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"short","MediaType":"Voice"}` + "\n"
	addr := freeAddr(t)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(rctx, []string{"router", "--nats", s.ClientURL(), "--listen", addr, "--source", "feed", "--feed-file", "-",
			"--feed-max-line", "200", "--log-format", "json"}, strings.NewReader(lines), &stderr)
	}()
	until(t, "the long line refused and the next applied", func() bool {
		_, metrics := get("http://" + addr + "/metrics")
		return strings.Contains(stderr.String(), "line longer than 200 bytes") && strings.Contains(metrics, "sis_adapter_changes_accepted_total 1")
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("router: %v\n%s", err, stderr.String())
	}
}

// TestRouterStandsByAndTakesOver: two `sisbridge router` of one bus: the
// first is active (/readyz 200, sis_adapter_active 1), the second stands
// by (/readyz 503 naming the active, sis_adapter_active 0); when the first
// stops, the second takes over and is ready within a few seconds.
func TestRouterStandsByAndTakesOver(t *testing.T) {
	s := natstest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := func(name string) (string, context.CancelFunc, chan error, *lockedBuffer) {
		addr := freeAddr(t)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		var stderr lockedBuffer
		go func() {
			done <- run(rctx, []string{"router", "--nats", s.ClientURL(), "--listen", addr, "--name", name, "--source", "sim",
				"--speed", "20", "--adapter-lease", "1s", "--log-format", "json"}, strings.NewReader(""), &stderr)
		}()
		return "http://" + addr, stop, done, &stderr
	}
	first, stopFirst, firstDone, firstLog := start("alpha")
	until(t, "alpha ready", func() bool { code, _ := get(first + "/readyz"); return code == http.StatusOK })
	second, stopSecond, secondDone, secondLog := start("beta")
	until(t, "beta standing by", func() bool {
		code, body := get(second + "/readyz")
		_, metrics := get(second + "/metrics")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `adapter "alpha" holds the lease`) &&
			strings.Contains(metrics, "sis_adapter_active 0") && strings.Contains(metrics, `sis_adapter_lease_holder{adapter="alpha"} 1`)
	})
	if _, metrics := get(first + "/metrics"); !strings.Contains(metrics, "sis_adapter_active 1") {
		t.Fatalf("alpha's metrics do not say it is active")
	}
	stopFirst()
	if err := <-firstDone; err != nil {
		t.Fatalf("alpha: %v\n%s", err, firstLog.String())
	}
	stopped := time.Now()
	until(t, "beta ready", func() bool { code, _ := get(second + "/readyz"); return code == http.StatusOK })
	t.Logf("beta ready %s after alpha stopped", time.Since(stopped).Round(time.Millisecond))
	if _, metrics := get(second + "/metrics"); !strings.Contains(metrics, "sis_adapter_active 1") {
		t.Fatalf("beta's metrics do not say it is active")
	}
	stopSecond()
	if err := <-secondDone; err != nil {
		t.Fatalf("beta: %v\n%s", err, secondLog.String())
	}
}
