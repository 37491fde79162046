// Package process runs a program as a child process that tests and load
// tools start, signal, restart and watch: its output goes to a log file,
// readiness is an HTTP endpoint answering 200, and its exit is seen at once.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a program run as a child process. Set its fields, then Start.
type Process struct {
	// Name names it in errors.
	Name string
	// Bin and Args are the program and its arguments.
	Bin  string
	Args []string
	// Ready, when set, is a URL that answers 200 once the process is
	// ready; empty: ready once started.
	Ready string
	// Log is the file its standard output and error are appended to.
	Log string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	exitErr  error
	restarts int
}

// Start starts the process and waits up to d for it to be ready.
func (p *Process) Start(ctx context.Context, d time.Duration) error {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.Name, err)
	}
	defer logf.Close()
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", p.Name, p.Bin, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return p.AwaitReady(ctx, d)
}

// AwaitReady polls the Ready URL until it answers 200, the process exits,
// or d passes.
func (p *Process) AwaitReady(ctx context.Context, d time.Duration) error {
	if p.Ready == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if code, _, _ := Get(ctx, p.Ready); code == http.StatusOK {
			return nil
		}
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
			_, err := p.Status()
			return fmt.Errorf("%s exited while starting (%v); its log: %s", p.Name, err, p.Log)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s; its log: %s", p.Name, d, p.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Status says whether the process has exited, and how (nil: status 0).
func (p *Process) Status() (exited bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false, nil
	}
	select {
	case <-p.done:
		return true, p.exitErr
	default:
		return false, nil
	}
}

// Pid returns the process's ID (0 before Start).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return errors.New(p.Name + ": not started")
	}
	return cmd.Process.Signal(sig)
}

// Stop sends sig and waits up to grace for the process to exit, then
// kills it. After SIGTERM it must exit by itself, with status 0.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if exited, _ := p.Status(); exited {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process takes no other signal
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s of %s", p.Name, grace, sig)
	}
	if _, err := p.Status(); sig == syscall.SIGTERM && err != nil {
		return fmt.Errorf("%s exited after SIGTERM with %v; its log: %s", p.Name, err, p.Log)
	}
	return nil
}

// Restart stops the process with sig and starts it again.
func (p *Process) Restart(ctx context.Context, sig syscall.Signal, ready time.Duration) error {
	err := p.Stop(sig, 20*time.Second)
	p.mu.Lock()
	p.restarts++
	p.mu.Unlock()
	if serr := p.Start(ctx, ready); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// Restarts returns how many times the process was restarted.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Get GETs url; the body is read whole (up to 16 MiB).
func Get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	if _, err := io.Copy(&sb, io.LimitReader(resp.Body, 16<<20)); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, sb.String(), nil
}

// FreeAddr returns a loopback address with a port free now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
