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
	"sync"
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
	}
	return nil, fmt.Errorf("fleet kind %q", cfg.Kind)
}

// remoteFleet is a fleet run by a child process, driven over its stdin and
// stdout, one JSON value a line.
type remoteFleet struct {
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	enc        *json.Encoder
	msgs       chan childMsg // ready, result, error
	readDone   chan struct{}
	deliveries atomic.Int64
	closed     atomic.Int64
	closeOnce  sync.Once
}

// startPiped starts a child process talking over its standard input and
// output; its standard error is ours.
func startPiped(cmd *exec.Cmd) (io.WriteCloser, io.ReadCloser, error) {
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("child stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("child stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	return stdin, stdout, nil
}

// startRemoteFleet starts a child running cfg's clients and waits until it
// reports them ready.
func startRemoteFleet(ctx context.Context, exe string, cfg fleetConfig) (*remoteFleet, error) {
	cmd := exec.Command(exe, childCommand)
	if cpus := os.Getenv("SISLOAD_CHILD_CPUS"); cpus != "" {
		// The clients on their own cores: taskset runs the child there, and
		// its Go runtime sizes itself to them.
		cmd = exec.Command("taskset", "-c", cpus, exe, childCommand)
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+fmt.Sprint(strings.Count(cpus, ",")+1))
	}
	stdin, stdout, err := startPiped(cmd)
	if err != nil {
		return nil, err
	}
	f := &remoteFleet{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), msgs: make(chan childMsg, 4), readDone: make(chan struct{})}
	go f.read(stdout)
	if err := f.enc.Encode(cfg); err != nil {
		f.Close()
		return nil, fmt.Errorf("send the child its clients: %w", err)
	}
	if _, err := f.await(ctx, "ready", cfg.Setup+30*time.Second); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// read takes the child's messages until its stdout ends.
func (f *remoteFleet) read(r io.Reader) {
	defer close(f.readDone)
	defer close(f.msgs)
	dec := json.NewDecoder(r)
	for {
		var m childMsg
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.Op == "progress" {
			f.deliveries.Store(m.Deliveries)
			f.closed.Store(m.Closed)
			continue
		}
		f.msgs <- m
	}
}

// await waits for the child's next message, which must be op.
func (f *remoteFleet) await(ctx context.Context, op string, d time.Duration) (childMsg, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case m, ok := <-f.msgs:
		switch {
		case !ok:
			return m, fmt.Errorf("client process ended before %q", op)
		case m.Op == "error":
			return m, fmt.Errorf("client process: %s", m.Error)
		case m.Op != op:
			return m, fmt.Errorf("client process said %q, want %q", m.Op, op)
		}
		return m, nil
	case <-t.C:
		return childMsg{}, fmt.Errorf("client process: no %q within %s", op, d)
	case <-ctx.Done():
		return childMsg{}, ctx.Err()
	}
}

// Begin tells the child to start counting.
func (f *remoteFleet) Begin() error {
	if err := f.enc.Encode(childMsg{Op: "begin"}); err != nil {
		return fmt.Errorf("client process: begin: %w", err)
	}
	return nil
}

// Progress returns the child's last reported counts.
func (f *remoteFleet) Progress() (int64, int64) { return f.deliveries.Load(), f.closed.Load() }

// Finish has the child drain and report.
func (f *remoteFleet) Finish(ctx context.Context, final map[string]uint64, drain time.Duration) (fleetStats, error) {
	if err := f.enc.Encode(childMsg{Op: "finish", Final: final, Drain: drain}); err != nil {
		return fleetStats{}, fmt.Errorf("client process: finish: %w", err)
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

// Close closes the child's stdin, which makes it close its clients and
// exit; a child still running 30 s later is killed.
func (f *remoteFleet) Close() {
	f.closeOnce.Do(func() {
		_ = f.stdin.Close()
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			<-f.readDone
			_ = f.cmd.Wait()
		}()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = f.cmd.Process.Kill()
			<-exited
		}
	})
}

// runFleetChild is the child side: it reads its fleetConfig, runs the
// clients in this process, and obeys begin and finish until stdin ends.
func runFleetChild(ctx context.Context, in io.Reader, out io.Writer) error {
	raiseOpenFiles()
	dec := json.NewDecoder(in)
	var (
		mu  sync.Mutex
		enc = json.NewEncoder(out)
	)
	send := func(m childMsg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	var cfg fleetConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("read the fleet config: %w", err)
	}
	f, err := startLocalFleet(ctx, cfg)
	if err != nil {
		send(childMsg{Op: "error", Error: err.Error()})
		return err
	}
	defer f.Close()
	stop := make(chan struct{})
	ticks := reportProgress(f, send, stop)
	defer func() {
		close(stop)
		<-ticks
	}()
	send(childMsg{Op: "ready"})
	return obey(ctx, dec, f, send)
}

// reportProgress sends the fleet's counts every 250 ms until stop closes;
// the returned channel closes when it has stopped.
func reportProgress(f fleet, send func(childMsg), stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d, c := f.Progress()
				send(childMsg{Op: "progress", Deliveries: d, Closed: c})
			}
		}
	}()
	return done
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
