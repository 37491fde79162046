package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestNodeConsumer runs the Node example (node/consumer.mjs) against an
// adapter when Node and the example's packages are there (`npm ci` in
// node/; .ci/run installs them); it is skipped otherwise, and fails under
// SIS_REQUIRE_ALL=1.
func TestNodeConsumer(t *testing.T) {
	skip := func(msg string) {
		t.Helper()
		if os.Getenv("SIS_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("no node in PATH")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "@nats-io", "jetstream")); err != nil {
		skip("the Node example's packages are not installed (npm ci in examples/natsconsumer/node)")
	}
	e := stacktest.NewWith(t, stacktest.Directory, router.Config{SnapshotEvery: 2}) // a snapshot, then events after it
	for i := range 3 {
		enqueue(e, i)
	}
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	hist, err := subjects.OpenHistory(e.Ctx, e.JS)
	if err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, "the snapshot at Seq 2", func() bool {
		snap, found, err := hist.Snapshot(e.Ctx, "acme", "acme-sales")
		return err == nil && found && snap.Seq == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &syncBuffer{}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, node, "consumer.mjs", "--nats", e.NS.ClientURL(), "--tenant", "acme", "--group", "acme-sales")
	cmd.Dir, cmd.Stdout, cmd.Stderr = "node", out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	holds := func(what, want string) {
		t.Helper()
		for lastQueue(out.String()) != want {
			if ctx.Err() != nil {
				t.Fatalf("the Node example never held %s (%s):\n%s\n%s", what, want, out, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	holds("the stored queue", "c0,c1,c2") // its snapshot at Seq 2, then event 3
	if !strings.Contains(out.String(), "at Seq 2 (loaded): 2 waiting") {
		t.Errorf("it did not start from the snapshot:\n%s", out)
	}
	enqueue(e, 3)
	e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: "c3", Position: 1})
	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "c1", Cause: queue.CauseDisconnect})
	holds("the router's queue", routerQueue(e))
}
