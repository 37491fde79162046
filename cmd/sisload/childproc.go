package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// childLine is a message of a client child's protocol, which the parent
// and the child exchange one JSON value a line.
type childLine interface {
	// op names the message: "ready", "progress", "error" and the
	// protocol's own.
	op() string
	// fault is what went wrong, in an "error" message.
	fault() string
}

// childProc is a client child process driven over its stdin and stdout:
// the parent's first line is the child's config, then M both ways.
type childProc[M childLine] struct {
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	enc        *json.Encoder
	msgs       chan M // every message but "progress"
	readDone   chan struct{}
	onProgress func(M) // on the reader goroutine
	closeOnce  sync.Once
}

// startChild starts cmd, sends it cfg and waits up to ready for its
// "ready"; onProgress takes the child's "progress" messages.
func startChild[M childLine](ctx context.Context, cmd *exec.Cmd, cfg any, ready time.Duration, onProgress func(M)) (*childProc[M], error) {
	stdin, stdout, err := startPiped(cmd)
	if err != nil {
		return nil, err
	}
	c := &childProc[M]{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), msgs: make(chan M, 4),
		readDone: make(chan struct{}), onProgress: onProgress}
	go c.read(stdout)
	if err := c.enc.Encode(cfg); err != nil {
		c.Close()
		return nil, fmt.Errorf("send the child its clients: %w", err)
	}
	if _, err := c.await(ctx, "ready", ready); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// read takes the child's messages until its stdout ends.
func (c *childProc[M]) read(r io.Reader) {
	defer close(c.readDone)
	defer close(c.msgs)
	dec := json.NewDecoder(r)
	for {
		var m M
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.op() == "progress" {
			c.onProgress(m)
			continue
		}
		c.msgs <- m
	}
}

// await waits for the child's next message, which must be op.
func (c *childProc[M]) await(ctx context.Context, op string, d time.Duration) (M, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	var none M
	select {
	case m, ok := <-c.msgs:
		switch {
		case !ok:
			return m, fmt.Errorf("client process ended before %q", op)
		case m.op() == "error":
			return m, fmt.Errorf("client process: %s", m.fault())
		case m.op() != op:
			return m, fmt.Errorf("client process said %q, want %q", m.op(), op)
		}
		return m, nil
	case <-t.C:
		return none, fmt.Errorf("client process: no %q within %s", op, d)
	case <-ctx.Done():
		return none, ctx.Err()
	}
}

// send writes m to the child.
func (c *childProc[M]) send(m M) error {
	if err := c.enc.Encode(m); err != nil {
		return fmt.Errorf("client process: %s: %w", m.op(), err)
	}
	return nil
}

// Close closes the child's stdin, which makes it close its clients and
// exit; a child still running 30 s later is killed.
func (c *childProc[M]) Close() {
	c.closeOnce.Do(func() { endChild(c.cmd, c.stdin, c.readDone) })
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

// endChild closes a child's stdin, which tells it to exit, and waits until
// read closes (when not nil: its stdout is read to the end) and the child
// has exited; a child still running 30 s later is killed.
func endChild(cmd *exec.Cmd, stdin io.Closer, read <-chan struct{}) {
	_ = stdin.Close()
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		if read != nil {
			<-read
		}
		_ = cmd.Wait()
	}()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// linkParent begins a client child's side: it raises the open-file limit
// (the child runs many clients) and reads the parent's first line, the
// config named what, into cfg; it returns the decoder of the parent's
// further lines and the sender of the child's own M.
func linkParent[M any](in io.Reader, out io.Writer, cfg any, what string) (*json.Decoder, func(M), error) {
	raiseOpenFiles()
	dec := json.NewDecoder(in)
	if err := dec.Decode(cfg); err != nil {
		return nil, nil, fmt.Errorf("read the %s config: %w", what, err)
	}
	return dec, lineSender[M](out), nil
}

// lineSender returns a function that writes messages to w, one JSON value
// a line; it is safe for concurrent use (a child's progress ticker sends
// too).
func lineSender[M any](w io.Writer) func(M) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(m M) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
}

// every calls f with the time of each tick, every d, until the returned
// function is called; that function returns once f is no longer running.
func every(d time.Duration, f func(now time.Time)) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				f(now)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
