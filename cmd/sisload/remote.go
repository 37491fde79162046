package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// childCommand is the hidden subcommand that runs a fleet for a parent.
const childCommand = "fanout-clients"

// childMsg is one line between a parent and a fleet child, both ways.
type childMsg struct {
	// Op: parent → child "begin", "finish"; child → parent "ready",
	// "progress", "result", "error".
	Op         string            `json:"op"`
	Error      string            `json:"error,omitempty"`
	Deliveries int64             `json:"deliveries,omitempty"`
	Closed     int64             `json:"closed,omitempty"`
	Stats      *fleetStats       `json:"stats,omitempty"`
	Final      map[string]uint64 `json:"final,omitempty"`
	Drain      time.Duration     `json:"drain,omitempty"`
}

// op names the message.
func (m childMsg) op() string { return m.Op }

// fault is what went wrong, in an "error" message.
func (m childMsg) fault() string { return m.Error }

// startFleet starts the clients of cfg: in this process when procs is 0,
// else spread over procs child processes (each has its own open-file
// limit).
func startFleet(ctx context.Context, cfg fleetConfig, procs int) (fleet, error) {
	if procs == 0 {
		return startLocalFleet(ctx, cfg)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run clients in a child: %w", err)
	}
	var m multiFleet
	for p := range procs {
		part := cfg
		lo, hi := p*len(cfg.Assign)/procs, (p+1)*len(cfg.Assign)/procs
		part.Assign = cfg.Assign[lo:hi]
		f, err := startRemoteFleet(ctx, exe, part)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("client process %d of %d: %w", p+1, procs, err)
		}
		m = append(m, f)
	}
	return m, nil
}

// startLocalFleet runs the clients as goroutines of this process.
func startLocalFleet(ctx context.Context, cfg fleetConfig) (fleet, error) {
	switch cfg.Kind {
	case kindGateway:
		return startGatewayFleet(ctx, cfg)
	case kindNATS:
		return startNATSFleet(ctx, cfg)
	case kindCentrifuge:
		return startCentrifugeFleet(ctx, cfg)
	}
	return nil, fmt.Errorf("fleet kind %q", cfg.Kind)
}

// remoteFleet is a fleet run by a child process, driven over its stdin and
// stdout, one JSON value a line.
type remoteFleet struct {
	*childProc[childMsg]
	deliveries atomic.Int64
	closed     atomic.Int64
}

// startRemoteFleet starts a child running cfg's clients and waits until it
// reports them ready.
func startRemoteFleet(ctx context.Context, exe string, cfg fleetConfig) (*remoteFleet, error) {
	f := &remoteFleet{}
	proc, err := startChild(ctx, fleetChildCmd(exe), cfg, cfg.Setup+30*time.Second, f.progress)
	if err != nil {
		return nil, err
	}
	f.childProc = proc
	return f, nil
}

// fleetChildCmd is the command of a fleet child; with SISLOAD_CHILD_CPUS
// set (a taskset CPU list), the child runs on those cores.
func fleetChildCmd(exe string) *exec.Cmd {
	cpus := os.Getenv("SISLOAD_CHILD_CPUS")
	if cpus == "" {
		return exec.Command(exe, childCommand)
	}
	// The clients on their own cores: taskset runs the child there, and
	// its Go runtime sizes itself to them.
	cmd := exec.Command("taskset", "-c", cpus, exe, childCommand)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+fmt.Sprint(strings.Count(cpus, ",")+1))
	return cmd
}

// progress keeps the counts of the child's "progress" message.
func (f *remoteFleet) progress(m childMsg) {
	f.deliveries.Store(m.Deliveries)
	f.closed.Store(m.Closed)
}

// Begin tells the child to start counting.
func (f *remoteFleet) Begin() error { return f.send(childMsg{Op: "begin"}) }

// Progress returns the child's last reported counts.
func (f *remoteFleet) Progress() (int64, int64) { return f.deliveries.Load(), f.closed.Load() }

// Finish has the child drain and report.
func (f *remoteFleet) Finish(ctx context.Context, final map[string]uint64, drain time.Duration) (fleetStats, error) {
	if err := f.send(childMsg{Op: "finish", Final: final, Drain: drain}); err != nil {
		return fleetStats{}, err
	}
	m, err := f.await(ctx, "result", drain+time.Minute)
	if err != nil {
		return fleetStats{}, err
	}
	if m.Stats == nil {
		return fleetStats{}, errors.New("client process: result without counts")
	}
	return *m.Stats, nil
}

// runFleetChild is the child side: it reads its fleetConfig, runs the
// clients in this process, and obeys begin and finish until stdin ends.
func runFleetChild(ctx context.Context, in io.Reader, out io.Writer) error {
	var cfg fleetConfig
	dec, send, err := linkParent[childMsg](in, out, &cfg, "fleet")
	if err != nil {
		return err
	}
	f, err := startLocalFleet(ctx, cfg)
	if err != nil {
		send(childMsg{Op: "error", Error: err.Error()})
		return err
	}
	defer f.Close()
	stop := reportProgress(f, send)
	defer stop()
	send(childMsg{Op: "ready"})
	return obey(ctx, dec, f, send)
}

// reportProgress sends the fleet's counts every 250 ms; the returned
// function stops it.
func reportProgress(f fleet, send func(childMsg)) func() {
	return every(250*time.Millisecond, func(time.Time) {
		d, c := f.Progress()
		send(childMsg{Op: "progress", Deliveries: d, Closed: c})
	})
}

// obey runs the parent's commands until stdin ends.
func obey(ctx context.Context, dec *json.Decoder, f fleet, send func(childMsg)) error {
	var cpu0 time.Duration
	for {
		var m childMsg
		if err := dec.Decode(&m); err != nil {
			return nil // the parent closed stdin: done
		}
		switch m.Op {
		case "begin":
			cpu0 = cpuTime()
			if err := f.Begin(); err != nil {
				send(childMsg{Op: "error", Error: err.Error()})
			}
		case "finish":
			st, err := f.Finish(ctx, m.Final, m.Drain)
			if err != nil {
				send(childMsg{Op: "error", Error: err.Error()})
				continue
			}
			st.CPU = cpuTime() - cpu0
			st.Heap = liveHeap()
			send(childMsg{Op: "result", Stats: &st})
		default:
			send(childMsg{Op: "error", Error: fmt.Sprintf("unknown command %q", m.Op)})
		}
	}
}
