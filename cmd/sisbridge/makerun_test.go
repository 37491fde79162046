//go:build unix

package main

import (
	"bufio"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeRunStopsCleanlyOnCtrlC: Ctrl-C (SIGINT to the whole foreground
// process group) stops `make run` as it stops any command: the system
// shuts down cleanly and make reports no error (it ends by the signal, as
// make does, rather than with "make: *** ... Error 1").
func TestMakeRunStopsCleanlyOnCtrlC(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make here")
	}
	root, _ := filepath.Abs("../..")
	cmd := exec.Command("make", "-s", "run", "RUNFLAGS=--nats-listen 127.0.0.1:0 --listen 127.0.0.1:0 --log-format json --data-dir "+t.TempDir())
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var lines []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "open the url") {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(3 * time.Minute):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("make run did not start within 3 minutes")
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-scanned
	err = cmd.Wait()
	for _, l := range lines {
		if strings.HasPrefix(l, "make: ***") {
			t.Fatalf("make reported an error: %s", l)
		}
	}
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT) {
		t.Fatalf("make run after Ctrl-C: %v", err)
	}
	// The last line is written once the adapter, the gateway (its seat
	// pool included) and the embedded NATS server have all ended.
	if last := lines[len(lines)-1]; !strings.Contains(last, "SIS Bridge stopped") {
		t.Fatalf("the system did not stop cleanly; last line: %s", last)
	}
}
