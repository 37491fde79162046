package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
)

// TestSoakViewRefusesWhatDoesNotFit: updates that do not fit what a client
// holds, Seqs that go back, positions that do not run 1..n.
func TestSoakViewRefusesWhatDoesNotFit(t *testing.T) {
	add := func(id string, pos int) protocol.SessionUpdate {
		return protocol.SessionUpdate{UpdateType: "Add", Session: protocol.SessionInfo{CallID: id, QueuePosition: pos}}
	}
	ev := func(event string, seq uint64, us ...protocol.SessionUpdate) *protocol.Message {
		return &protocol.Message{Event: event, ServiceGroupID: "g", Seq: seq, SessionUpdates: us}
	}
	tests := []struct {
		name   string
		events []*protocol.Message
		want   string // "" for no error
	}{
		{"initial data then live", []*protocol.Message{ev(protocol.EventSessionsUpdated, 4, add("a", 1)), ev(protocol.EventInitialDataComplete, 4),
			ev(protocol.EventSessionsUpdated, 5, add("b", 2))}, ""},
		{"add twice", []*protocol.Message{ev(protocol.EventInitialDataComplete, 1), ev(protocol.EventSessionsUpdated, 2, add("a", 1)),
			ev(protocol.EventSessionsUpdated, 3, add("a", 1))}, "already there"},
		{"remove unknown", []*protocol.Message{ev(protocol.EventInitialDataComplete, 1),
			ev(protocol.EventSessionsUpdated, 2, protocol.SessionUpdate{UpdateType: "Remove", Session: protocol.SessionInfo{CallID: "x"}})}, "not there"},
		{"live Seq back", []*protocol.Message{ev(protocol.EventInitialDataComplete, 7), ev(protocol.EventSessionsUpdated, 7, add("a", 1))}, "after Seq 7"},
		{"initial data of two Seqs", []*protocol.Message{ev(protocol.EventSessionsUpdated, 3, add("a", 1)), ev(protocol.EventSessionsUpdated, 4, add("b", 2))}, "and then"},
		{"position hole", []*protocol.Message{ev(protocol.EventInitialDataComplete, 1), ev(protocol.EventSessionsUpdated, 2, add("a", 2))}, "position 2 of 1"},
		{"second InitialDataComplete", []*protocol.Message{ev(protocol.EventInitialDataComplete, 1), ev(protocol.EventInitialDataComplete, 1)}, "second"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newSoakView("g")
			var err error
			for _, e := range tc.events {
				if err = v.event(e, true); err != nil {
					break
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestKeptGrowing: growth is a rise through the thirds beyond the margin;
// noise, a plateau and a single spike are not.
func TestKeptGrowing(t *testing.T) {
	tests := []struct {
		name string
		v    []float64
		want bool
	}{
		{"steady climb", []float64{100, 110, 120, 130, 140, 150, 160, 170, 180}, true},
		{"flat with noise", []float64{100, 104, 98, 101, 103, 99, 102, 100, 101}, false},
		{"climb within the margin", []float64{100, 101, 102, 103, 104, 105, 106, 107, 108}, false},
		{"rise then plateau", []float64{100, 300, 300, 300, 300, 300, 300, 300, 300}, false},
		{"one spike", []float64{100, 100, 100, 100, 900, 100, 100, 100, 100}, false},
		{"too few samples", []float64{1, 2, 3, 4, 5}, false},
	}
	for _, tc := range tests {
		if got, _, _ := keptGrowing(tc.v, 0.25, 10); got != tc.want {
			t.Errorf("%s: kept growing %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSoakShort runs the soak for a short while on a sisbridge binary built
// for the test: the router adapter and two gateways as processes, one
// restarted (SIGTERM, then SIGKILL, as often as a loaded machine allows in
// 25 s), clients churning, every view checked against the stream. It must
// pass, and each restart must close its clients as its signal says.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sisbridge and runs it for half a minute")
	}
	bin := filepath.Join(t.TempDir(), "sisbridge")
	if out, err := exec.Command("go", "build", "-o", bin, "../sisbridge").CombinedOutput(); err != nil {
		t.Fatalf("build sisbridge: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	result := filepath.Join(t.TempDir(), "soak.json")
	err := soakCommand(ctx, []string{"--sisbridge", bin, "--duration", "25s", "--every", "5s", "--restart-every", "6s",
		"--clients", "30", "--life", "5s", "--dir", t.TempDir(), "--json", result}, &out, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"soak: PASS", "gw-b", "router"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("no %q in\n%s", want, out.String())
		}
	}
	var res soakResult
	if data, err := os.ReadFile(result); err != nil || json.Unmarshal(data, &res) != nil || len(res.Rows) == 0 {
		t.Fatalf("no result in %s: %v", result, err)
	}
	restarts := res.Rows[len(res.Rows)-1].Restarts
	switch {
	case restarts == 0:
		t.Errorf("the second gateway was never restarted:\n%s", out.String())
	case !strings.Contains(res.Closes, "1001×"):
		t.Errorf("its restart by SIGTERM closed no client with 1001:\n%s", out.String())
	case restarts >= 2 && !strings.Contains(res.Closes, "0×"):
		t.Errorf("its restart by SIGKILL left no client without a close frame:\n%s", out.String())
	}
}
