package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// op names the message.
func (m herdMsg) op() string { return m.Op }

// fault is what went wrong, in an "error" message.
func (m herdMsg) fault() string { return m.Error }

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
	*childProc[herdMsg]
	completed atomic.Int64
	closed    atomic.Int64
	deadline  time.Duration
}

// startHerdChild starts a child running cfg's clients and waits until
// they are connected and initialized.
func startHerdChild(ctx context.Context, cfg herdConfig) (*herdChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run clients in a child: %w", err)
	}
	c := &herdChild{deadline: cfg.Deadline}
	proc, err := startChild(ctx, exec.Command(exe, herdChildCommand), cfg, cfg.Setup+30*time.Second, c.progress)
	if err != nil {
		return nil, err
	}
	c.childProc = proc
	return c, nil
}

// progress keeps the counts of the child's "progress" message.
func (c *herdChild) progress(m herdMsg) {
	c.completed.Store(m.Completed)
	c.closed.Store(m.Closed)
}

// Go tells the child to have every client Subscribe.
func (c *herdChild) Go() error { return c.send(herdMsg{Op: "go"}) }

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

// runHerdChild is the child side: it reads its herdConfig, opens the
// clients, and on "go" runs the herd and reports; it exits when stdin
// ends or its lifetime (setup + deadline + 5 min) passes.
func runHerdChild(ctx context.Context, in io.Reader, out io.Writer) error {
	var cfg herdConfig
	dec, send, err := linkParent[herdMsg](in, out, &cfg, "herd")
	if err != nil {
		return err
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
	return every(250*time.Millisecond, func(time.Time) {
		completed, closed := h.Progress()
		send(herdMsg{Op: "progress", Completed: completed, Closed: closed})
	})
}
