package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// soakProc is a sisbridge process the soak runs, restarts and watches
// through its /metrics and /readyz.
type soakProc struct {
	name    string
	bin     string
	args    []string
	metrics string // host:port of /metrics and /readyz
	url     string // a gateway's WebSocket URL
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	exitErr  error
	restarts int
}

// start starts the process and waits until it is ready.
func (p *soakProc) start(ctx context.Context, ready time.Duration) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.name, err)
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", p.name, p.bin, err)
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
	return p.awaitReady(ctx, ready, done)
}

// awaitReady polls /readyz until it answers 200.
func (p *soakProc) awaitReady(ctx context.Context, d time.Duration, done chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if code, _, _ := httpGet(ctx, "http://"+p.metrics+"/readyz"); code == http.StatusOK {
			return nil
		}
		select {
		case <-done:
			_, err := p.status()
			return fmt.Errorf("%s exited while starting (%v); its log: %s", p.name, err, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s; its log: %s", p.name, d, p.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// status says whether the process has exited, and how (nil: status 0).
func (p *soakProc) status() (exited bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return true, p.exitErr
	default:
		return false, nil
	}
}

// stop sends sig and waits up to grace for the process to exit, then kills
// it. After SIGTERM it must exit by itself, with status 0.
func (p *soakProc) stop(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s of %s", p.name, grace, sig)
	}
	if _, err := p.status(); sig == syscall.SIGTERM && err != nil {
		return fmt.Errorf("%s exited after SIGTERM with %v; its log: %s", p.name, err, p.logPath)
	}
	return nil
}

// restart stops the process with sig and starts it again.
func (p *soakProc) restart(ctx context.Context, sig syscall.Signal) error {
	err := p.stop(sig, 20*time.Second)
	p.mu.Lock()
	p.restarts++
	p.mu.Unlock()
	if serr := p.start(ctx, time.Minute); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// restartCount returns how many times the process was restarted.
func (p *soakProc) restartCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// procSample is what a process's /metrics says of it.
type procSample struct {
	Up         bool    `json:"up"`
	RSS        float64 `json:"rss"`
	Goroutines float64 `json:"goroutines"`
	OpenFiles  float64 `json:"openFiles"`
	// Extra holds the metrics sampleProc was asked for.
	Extra map[string]float64 `json:"extra,omitempty"`
}

// sample reads the process's metrics; Up is false when it does not answer.
func (p *soakProc) sample(ctx context.Context, extra ...string) procSample {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	code, body, err := httpGet(ctx, "http://"+p.metrics+"/metrics")
	if err != nil || code != http.StatusOK {
		return procSample{}
	}
	vals := metricValues(body, append(extra, "process_resident_memory_bytes", "go_goroutines", "process_open_fds")...)
	s := procSample{Up: true, RSS: vals["process_resident_memory_bytes"], Goroutines: vals["go_goroutines"], OpenFiles: vals["process_open_fds"], Extra: map[string]float64{}}
	for _, name := range extra {
		s.Extra[name] = vals[name]
	}
	return s
}

// metricValues returns the values of the unlabelled metrics named, from a
// Prometheus text exposition.
func metricValues(body io.Reader, names ...string) map[string]float64 {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// httpGet GETs url; the body is read whole.
func httpGet(ctx context.Context, url string) (int, io.Reader, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	if _, err := io.Copy(&sb, io.LimitReader(resp.Body, 16<<20)); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, strings.NewReader(sb.String()), nil
}

// freeAddr returns a loopback address with a port free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
