package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestChildProc drives a stand-in herd child, a shell script, through the
// protocol: "ready" after the config, "progress" to the hook, the outcome,
// an "error", a timeout, and the end of the child's output after Close.
func TestChildProc(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	script := `read cfg; echo '{"op":"ready"}'; echo '{"op":"progress","completed":3,"closed":1}'; read m
echo '{"op":"outcome","outcome":{"clients":5}}'; echo '{"op":"error","error":"boom"}'; cat >/dev/null`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &herdChild{deadline: time.Second}
	proc, err := startChild(ctx, exec.Command("sh", "-c", script), herdConfig{Clients: 5}, 5*time.Second, c.progress)
	if err != nil {
		t.Fatal(err)
	}
	c.childProc = proc
	defer c.Close()
	if err := c.Go(); err != nil {
		t.Fatal(err)
	}
	o, err := c.Outcome(ctx)
	if err != nil || o.Clients != 5 {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	if completed, closed := c.Progress(); completed != 3 || closed != 1 {
		t.Errorf("progress %d, %d; want 3, 1", completed, closed)
	}
	wantErr(t, c, "client process: boom")
	wantErr(t, c, `client process: no "outcome" within 50ms`)
	c.Close()
	wantErr(t, c, `client process ended before "outcome"`)
}

// wantErr awaits an "outcome" from c for 50 ms and checks the error.
func wantErr(t *testing.T, c *herdChild, want string) {
	t.Helper()
	_, err := c.await(context.Background(), "outcome", 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("await: %v, want %q", err, want)
	}
}
