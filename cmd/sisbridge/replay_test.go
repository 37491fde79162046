package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/sim"
)

const testCapture = "../../replay/testdata/sim-seed1.sisrec"

// replayCLI runs "sisbridge replay ARGS".
func replayCLI(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runReplay(ctx, args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func cliCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestReplayInspect(t *testing.T) {
	out, _, err := replayCLI(t, cliCtx(t), "inspect", testCapture)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"changes:   2000 (", "media:     Voice", "matches", "acme-sales", "LONGEST"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = replayCLI(t, cliCtx(t), "inspect", "--jsonl", testCapture)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	kinds := map[string]int{}
	for _, l := range lines {
		var f struct{ Kind string }
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		kinds[f.Kind]++
	}
	if kinds["header"] != 1 || kinds["event"] != 2000 || kinds["base"] != 9 || kinds["trailer"] != 1 {
		t.Fatalf("frames by kind %v", kinds)
	}
}

func TestReplayPlayEmbedded(t *testing.T) {
	_, errOut, err := replayCLI(t, cliCtx(t), "play", testCapture, "--embedded", "--speed", "max", "--log-level", "warn")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{"played 2000 changes", "0 rejected", "matches the capture's trailer"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}
}

func TestReplayDamaged(t *testing.T) {
	data, err := os.ReadFile(testCapture)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.sisrec")
	if err := os.WriteFile(cut, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = replayCLI(t, cliCtx(t), "play", cut, "--embedded", "--speed", "max")
	if err == nil || !strings.Contains(err.Error(), "truncated capture at offset") || !strings.Contains(err.Error(), "--skip-corrupt") {
		t.Fatalf("truncated: %v", err)
	}
	_, errOut, err := replayCLI(t, cliCtx(t), "play", cut, "--embedded", "--speed", "max", "--skip-corrupt", "--log-level", "warn")
	if err != nil || !strings.Contains(errOut, "skipped bytes") || !strings.Contains(errOut, "no trailer") {
		t.Fatalf("--skip-corrupt: %v\n%s", err, errOut)
	}
}

// liveBus is a NATS server with an adapter; feed runs the simulator into
// it at full speed for a while.
func liveBus(t *testing.T) (*server.Server, *router.Adapter, func(time.Duration)) {
	t.Helper()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	a, err := router.Open(cliCtx(t), js, natstest.Logger(t).Level(3), router.Config{Name: "live"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	sm, err := sim.New(sim.Config{Seed: 5, Speed: -1, Start: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	feed := func(d time.Duration) {
		ctx, cancel := context.WithTimeout(cliCtx(t), d)
		defer cancel()
		if err := sm.Run(ctx, a); err != nil {
			t.Error(err)
		}
		if err := a.Flush(cliCtx(t)); err != nil {
			t.Error(err)
		}
	}
	return s, a, feed
}

func TestReplayRecordAndPlay(t *testing.T) {
	s, a, feed := liveBus(t)
	feed(50 * time.Millisecond)
	nats := "--nats=" + s.ClientURL()
	live := filepath.Join(t.TempDir(), "live.sisrec")
	done := make(chan error, 1)
	go func() {
		_, _, err := replayCLI(t, cliCtx(t), "record", nats, "--out", live, "--duration", "2s", "--log-level", "warn")
		done <- err
	}()
	feed(300 * time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := replayCLI(t, cliCtx(t), "record", nats, "--out", live); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("record over an existing file: %v", err)
	}
	hist := filepath.Join(t.TempDir(), "hist.sisrec")
	if _, errOut, err := replayCLI(t, cliCtx(t), "record", nats, "--out", hist, "--from", "1", "--to", "2000000"); err != nil || !strings.Contains(errOut, "wrote "+hist) {
		t.Fatalf("record history: %v\n%s", err, errOut)
	}
	for _, f := range []string{live, hist} {
		if _, errOut, err := replayCLI(t, cliCtx(t), "play", f, "--embedded", "--speed", "max", "--log-level", "warn"); err != nil || !strings.Contains(errOut, "matches") {
			t.Fatalf("play %s: %v\n%s", f, err, errOut)
		}
	}

	// The bus's own adapter is live: playing into it needs --take-over.
	if err := a.LinkUp(cliCtx(t), nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := replayCLI(t, cliCtx(t), "play", live, nats, "--speed", "max")
	if err == nil || !strings.Contains(err.Error(), "router is live") || !strings.Contains(err.Error(), "--take-over") {
		t.Fatalf("play into a live bus: %v", err)
	}
	if _, errOut, err := replayCLI(t, cliCtx(t), "play", live, nats, "--speed", "max", "--take-over", "--log-level", "warn"); err != nil || !strings.Contains(errOut, "played") {
		t.Fatalf("--take-over: %v\n%s", err, errOut)
	}
}

func TestReplayCLIErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"rewind"}, `unknown command "rewind"`},
		{[]string{"record"}, "--out FILE is required"},
		{[]string{"record", "--out", "x", "--from", "yesterday"}, "want a stream sequence or an RFC 3339 time"},
		{[]string{"play"}, "want 1 file argument(s), got 0"},
		{[]string{"play", testCapture, "--speed", "fast"}, `--speed "fast"`},
		{[]string{"play", testCapture, "--gateway", "127.0.0.1:0"}, "--gateway needs --embedded"},
		{[]string{"play", "no-such-file"}, "no such file"},
		{[]string{"inspect", "replay.go"}, "not a SIS Bridge capture"},
		{[]string{"play", testCapture, "--nats", "nats://127.0.0.1:1"}, "connect to NATS"},
	}
	for _, tt := range tests {
		_, _, err := replayCLI(t, cliCtx(t), tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
	_, errOut, err := replayCLI(t, cliCtx(t), "-h")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "usage: sisbridge replay") {
		t.Errorf("-h: %v\n%s", err, errOut)
	}
}

// TestReplayPlayGatewayOnABusyPort fails at once, before playing anything.
func TestReplayPlayGatewayOnABusyPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, errOut, err := replayCLI(t, cliCtx(t), "play", testCapture, "--embedded", "--gateway", taken.Addr().String(), "--speed", "max", "--log-level", "warn")
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) || strings.Contains(errOut, "played") {
		t.Fatalf("got %v\n%s", err, errOut)
	}
}
