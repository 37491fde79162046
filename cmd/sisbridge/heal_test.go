package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// smallDisk mounts a 48 MiB tmpfs for the test: a disk that can fill up.
// It skips the test where mounting is not allowed (it needs root).
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small disk here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk writes a ballast file until the disk is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for range 100 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("the disk never filled")
}

// TestFullDiskIsHealed: the embedded server's disk fills up; the server's
// events stream meets a write error and refuses every write from then on,
// even once the disk has room. The adapter reports the fault, keeps its
// changes, and once room is back the healer restarts JetStream: every change
// is stored, in order, without restarting anything else.
func TestFullDiskIsHealed(t *testing.T) {
	disk := smallDisk(t)
	s := natstest.ServerWith(t, embednats.Config{DataDir: disk})
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := router.Open(ctx, js, natstest.Logger(t), router.Config{AckTimeout: 300 * time.Millisecond, StatusInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	st := &router.State{Tenants: []subjects.Tenant{{TenantID: "acme", Name: "Acme"}},
		Groups: []subjects.Group{{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"}}}
	if err := a.LinkUp(ctx, st); err != nil {
		t.Fatal(err)
	}
	ballast := filepath.Join(disk, "ballast")
	fillDisk(t, ballast)
	applied := make(chan error, 1)
	go func() {
		for i := range 300 {
			c := queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("call-%d", i),
				Session: queue.Session{MediaType: queue.MediaChat, CustomerInformation: string(make([]byte, 2000))}}
			if err := a.Apply(ctx, "acme-sales", c); err != nil {
				applied <- err
				return
			}
		}
		applied <- nil
	}()
	until(t, "the store fault reported", func() bool { return a.Health().StoreFault != "" })
	t.Logf("fault: %s", a.Health().StoreFault)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	h := &storeHealer{srv: s, dir: disk, health: a.Health, log: natstest.Logger(t), after: 500 * time.Millisecond, every: 100 * time.Millisecond, minFree: 4 << 20}
	hctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); h.run(hctx) }()
	defer func() { stop(); <-done }()
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	if err := a.Flush(fctx); err != nil {
		t.Fatalf("changes not stored once the disk had room: %v (fault: %q)", err, a.Health().StoreFault)
	}
	until(t, "the fault cleared", func() bool { return a.Ready() == nil })
	seq, sessions, _ := a.Group("acme-sales")
	hist, err := subjects.OpenHistory(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := hist.Load(ctx, "acme", "acme-sales")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Seq != seq || stored.Queue.Len() != len(sessions) {
		t.Fatalf("stored history reaches %d with %d queued; the adapter holds %d with %d", stored.Seq, stored.Queue.Len(), seq, len(sessions))
	}
}

// until waits for cond, failing the test after 60 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
