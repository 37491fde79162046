package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// watched is a stack with sessions queued and a gateway; it returns the
// gateway's WebSocket URL.
func watched(t *testing.T) (*stacktest.Env, string) {
	t.Helper()
	e := stacktest.New(t)
	for i := range 5 {
		e.Apply("acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("call-%d", i), Session: queue.Session{
			MediaType: queue.MediaVoice, TimeEnteredQueue: time.Now().UTC().Add(-time.Duration(200-30*i) * time.Second),
			CustomerInformation: fmt.Sprintf("+4420794600%02d", i), DialedNumber: "+442079460000",
			IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "en"}}}})
	}
	e.Apply("globex-chat", queue.Change{Op: queue.OpEnqueue, CallID: "chat-1", Session: queue.Session{MediaType: queue.MediaChat,
		TimeEnteredQueue: time.Now().UTC(), CustomerInformation: "jane@example.org"}})
	hs := httptest.NewServer(e.Gateway(bridge.Config{}, noSeats{}, nil))
	t.Cleanup(hs.Close)
	return e, "ws" + strings.TrimPrefix(hs.URL, "http") + protocol.Path
}

// tmux drives a terminal multiplexer on a socket of the test's own.
type tmux struct {
	t      *testing.T
	bin    string
	socket string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("SIS_REQUIRE_ALL") == "1" {
			t.Fatal("no tmux in PATH: the watch test drives the terminal view through it (Debian: apt-get install tmux)")
		}
		t.Skip("no tmux in PATH")
	}
	tm := &tmux{t: t, bin: bin, socket: fmt.Sprintf("sis-watch-%d", time.Now().UnixNano())}
	t.Cleanup(func() { _ = exec.Command(bin, "-L", tm.socket, "kill-server").Run() })
	return tm
}

func (tm *tmux) run(args ...string) (string, error) {
	out, err := exec.Command(tm.bin, append([]string{"-L", tm.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	return string(out), err
}

// screen is what the terminal shows now.
func (tm *tmux) screen() string {
	out, _ := tm.run("capture-pane", "-p", "-t", "w")
	return out
}

// waitScreen waits until the screen satisfies ok, or fails showing it.
func (tm *tmux) waitScreen(what string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waiting for %s; the screen shows:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rowsOf lists the CallIDs of the screen's session rows, in order.
func rowsOf(screen string) []string {
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(screen))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 1 && (strings.HasPrefix(f[1], "call-") || strings.HasPrefix(f[1], "chat-")) {
			ids = append(ids, f[0]+":"+f[1])
		}
	}
	return ids
}

// TestWatchInATerminal drives `sisbridge watch` in a real terminal
// (tmux): the groups' sessions in queue order with media, waits, customer,
// dialed number and IVR data, a header with the statistics; a change
// redrawn in place; a smaller terminal showing what fits; q quits.
func TestWatchInATerminal(t *testing.T) {
	tm := newTmux(t)
	bin := filepath.Join(t.TempDir(), "sisbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	e, url := watched(t)
	cmd := fmt.Sprintf("%s watch --gateway %s --group acme-sales --tenant globex --name Chat; sleep 30", bin, url)
	if out, err := tm.run("new-session", "-d", "-s", "w", "-x", "150", "-y", "30", cmd); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	s := tm.waitScreen("both groups", func(s string) bool { return len(rowsOf(s)) == 6 && strings.Contains(s, "entered") })
	for _, want := range []string{"acme-sales  5 waiting", "Chat (globex-chat)", "+442079460001", "+442079460000", "Language=en", "Voice", "jane@example.org", "03:", "q quits"} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q:\n%s", want, s)
		}
	}
	if got := strings.Join(rowsOf(s), ","); got != "1:call-0,2:call-1,3:call-2,4:call-3,5:call-4,1:chat-1" {
		t.Errorf("rows %s, want acme-sales in queue order, then globex-chat", got)
	}

	// a departure at the head: everyone moves up, in place
	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "call-0", Cause: queue.CauseSessionAllocatedToAgent})
	tm.waitScreen("the departure", func(s string) bool {
		return strings.Join(rowsOf(s), ",") == "1:call-1,2:call-2,3:call-3,4:call-4,1:chat-1" && strings.Contains(s, "answered 1")
	})

	// a small terminal shows what fits
	if out, err := tm.run("resize-window", "-t", "w", "-x", "90", "-y", "10"); err != nil {
		t.Fatalf("resize: %v\n%s", err, out)
	}
	tm.waitScreen("the smaller view", func(s string) bool { return strings.Contains(s, "more") })

	// q quits: the program ends and the shell's sleep follows
	if out, err := tm.run("send-keys", "-t", "w", "q"); err != nil {
		t.Fatalf("send-keys: %v\n%s", err, out)
	}
	tm.waitScreen("the program to end", func(s string) bool { return !strings.Contains(s, "q quits") })
}

// TestWatchPrintsJSON: --json prints every event as a JSON line.
func TestWatchPrintsJSON(t *testing.T) {
	_, url := watched(t)
	var out, errb lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runWatch(ctx, []string{"--gateway", url, "--tenant", "acme", "--all", "--json"}, nil, &out, &errb)
	}()
	until(t, "both acme groups' InitialDataComplete", func() bool { return strings.Count(out.String(), `"InitialDataComplete"`) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	events := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m protocol.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		events[m.Event+" "+m.ServiceGroupID]++
	}
	if events["SessionsUpdated acme-sales"] == 0 || events["QueueStatistics acme-support"] == 0 {
		t.Errorf("events %v", events)
	}
}

func TestWatchFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{{}, {"--tenant", "acme"}, {"--tenant", "acme", "--name", "Sales", "--all"}, {"extra"}} {
		if err := runWatch(context.Background(), args, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
