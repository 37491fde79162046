package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// herdChildCommand is the hidden subcommand that runs the herd's clients
// for a parent.
const herdChildCommand = "herd-clients"

// herdMsg is one line between the parent and a herd child, both ways,
// after the parent's first line (the herdConfig).
type herdMsg struct {
	// Op: parent → child "go"; child → parent "ready", "progress",
	// "outcome", "error".
	Op        string       `json:"op"`
	Error     string       `json:"error,omitempty"`
	Completed int64        `json:"completed,omitempty"`
	Closed    int64        `json:"closed,omitempty"`
	Outcome   *herdOutcome `json:"outcome,omitempty"`
}

// herdSide is the herd's clients, in this process or in a child.
type herdSide interface {
	// Go has every client Subscribe at once.
	Go() error
	// Progress returns how many completed and how many closed so far.
	Progress() (completed, closed int64)
	// Outcome waits for the herd to settle or its deadline.
	Outcome(ctx context.Context) (herdOutcome, error)
	// Close closes the clients.
	Close()
}

// herdChild is a child process running the herd's clients.
type herdChild struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	enc       *json.Encoder
	msgs      chan herdMsg // ready, outcome, error
	readDone  chan struct{}
	completed atomic.Int64
	closed    atomic.Int64
	deadline  time.Duration
	closeOnce sync.Once
}

// startHerdChild starts a child running cfg's clients and waits until
// they are connected and initialized.
func startHerdChild(ctx context.Context, cfg herdConfig) (*herdChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run clients in a child: %w", err)
	}
	cmd := exec.Command(exe, herdChildCommand)
	stdin, stdout, err := startPiped(cmd)
	if err != nil {
		return nil, err
	}
	c := &herdChild{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), msgs: make(chan herdMsg, 4),
		readDone: make(chan struct{}), deadline: cfg.Deadline}
	go c.read(stdout)
	if err := c.enc.Encode(cfg); err != nil {
		c.Close()
		return nil, fmt.Errorf("send the child its clients: %w", err)
	}
	if _, err := c.await(ctx, "ready", cfg.Setup+30*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// read takes the child's messages until its stdout ends.
func (c *herdChild) read(r io.Reader) {
	defer close(c.readDone)
	defer close(c.msgs)
	dec := json.NewDecoder(r)
	for {
		var m herdMsg
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.Op == "progress" {
			c.completed.Store(m.Completed)
			c.closed.Store(m.Closed)
			continue
		}
		c.msgs <- m
	}
}

// await waits for the child's next message, which must be op.
func (c *herdChild) await(ctx context.Context, op string, d time.Duration) (herdMsg, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case m, ok := <-c.msgs:
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
		return herdMsg{}, fmt.Errorf("client process: no %q within %s", op, d)
	case <-ctx.Done():
		return herdMsg{}, ctx.Err()
	}
}

// Go tells the child to have every client Subscribe.
func (c *herdChild) Go() error {
	if err := c.enc.Encode(herdMsg{Op: "go"}); err != nil {
		return fmt.Errorf("client process: go: %w", err)
	}
	return nil
}

// Progress returns the child's last reported counts.
func (c *herdChild) Progress() (int64, int64) { return c.completed.Load(), c.closed.Load() }

// Outcome waits for the child's outcome.
func (c *herdChild) Outcome(ctx context.Context) (herdOutcome, error) {
	m, err := c.await(ctx, "outcome", c.deadline+30*time.Second)
	if err != nil {
		return herdOutcome{}, err
	}
	if m.Outcome == nil {
		return herdOutcome{}, errors.New("client process: outcome without figures")
	}
	return *m.Outcome, nil
}

// Close closes the child's stdin, which makes it close its clients and
// exit; a child still running 30 s later is killed.
func (c *herdChild) Close() {
	c.closeOnce.Do(func() {
		_ = c.stdin.Close()
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			<-c.readDone
			_ = c.cmd.Wait()
		}()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-exited
		}
	})
}

// runHerdChild is the child side: it reads its herdConfig, opens the
// clients, and on "go" runs the herd and reports; it exits when stdin
// ends or its lifetime (setup + deadline + 5 min) passes.
func runHerdChild(ctx context.Context, in io.Reader, out io.Writer) error {
	raiseOpenFiles()
	dec := json.NewDecoder(in)
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m herdMsg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	var cfg herdConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("read the herd config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Setup+cfg.Deadline+5*time.Minute)
	defer cancel()
	h, err := openHerd(ctx, cfg)
	if err != nil {
		send(herdMsg{Op: "error", Error: err.Error()})
		return err
	}
	defer h.Close()
	send(herdMsg{Op: "ready"})
	var m herdMsg
	if err := dec.Decode(&m); err != nil || m.Op != "go" {
		return nil // the parent gave up
	}
	stop := herdProgress(h, send)
	defer stop()
	if err := h.Go(); err != nil {
		send(herdMsg{Op: "error", Error: err.Error()})
		return err
	}
	o, err := h.Outcome(ctx)
	if err != nil {
		send(herdMsg{Op: "error", Error: err.Error()})
		return err
	}
	send(herdMsg{Op: "outcome", Outcome: &o})
	_, _ = io.Copy(io.Discard, in) // hold the clients until the parent is done
	return nil
}

// herdProgress sends the herd's counts every 250 ms; the returned function
// stops it.
func herdProgress(h *herdClients, send func(herdMsg)) func() {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				completed, closed := h.Progress()
				send(herdMsg{Op: "progress", Completed: completed, Closed: closed})
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
