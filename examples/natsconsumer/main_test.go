package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/queue"
)

func enqueue(e *stacktest.Env, i int) {
	e.Apply("acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("c%d", i), Session: queue.Session{MediaType: queue.MediaVoice,
		TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, i, 0, time.UTC)}})
}

// lastQueue is the CallIDs of the last queue printed.
func lastQueue(out string) string {
	blocks := strings.Split(out, "acme-sales at Seq ")
	var ids []string
	for _, line := range strings.Split(blocks[len(blocks)-1], "\n")[1:] {
		if f := strings.Fields(line); len(f) > 1 {
			ids = append(ids, f[1])
		}
	}
	return strings.Join(ids, ",")
}

func routerQueue(e *stacktest.Env) string {
	var ids []string
	for _, s := range e.Queues["acme-sales"].Sessions() {
		ids = append(ids, s.CallID)
	}
	return strings.Join(ids, ",")
}

// consume runs the example until it has applied n changes, while apply
// makes them.
func consume(t *testing.T, e *stacktest.Env, n int, apply func()) string {
	t.Helper()
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--nats", e.NS.ClientURL(), "--tenant", "acme", "--group", "acme-sales", "--changes", fmt.Sprint(n)}, out)
	}()
	for !strings.Contains(out.String(), "(loaded)") { // the consumer is there: the changes come through it
		select {
		case err := <-done:
			t.Fatalf("ended before loading: %v\n%s", err, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	apply()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the changes did not come:\n%s", out)
	}
	return out.String()
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsumerFollowsAndResumes: the example loads the group (snapshot and
// events), follows it, and started again after changes it missed, holds
// the router's queue with every change applied once.
func TestConsumerFollowsAndResumes(t *testing.T) {
	e := stacktest.New(t)
	for i := range 3 {
		enqueue(e, i)
	}
	if err := e.Adapter.Flush(e.Ctx); err != nil { // stored: the first run loads them
		t.Fatal(err)
	}
	out := consume(t, e, 2, func() {
		enqueue(e, 3)
		e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "c0", Cause: queue.CauseSessionAllocatedToAgent})
	})
	if !strings.Contains(out, "(loaded): 3 waiting") || lastQueue(out) != routerQueue(e) {
		t.Fatalf("first run printed:\n%s\nwant the router's queue %s", out, routerQueue(e))
	}
	// stopped: the router goes on
	enqueue(e, 4)
	e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: "c4", Position: 1})
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	out = consume(t, e, 1, func() { enqueue(e, 5) })
	if !strings.Contains(out, "(loaded): 4 waiting") || lastQueue(out) != routerQueue(e) {
		t.Fatalf("second run printed:\n%s\nwant the router's queue %s", out, routerQueue(e))
	}
	if strings.Count(out, "change(s)") != 1 {
		t.Fatalf("the second run applied the changes it loaded again:\n%s", out)
	}
}

func TestConsumerFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{{"--group", "acme-sales"}, {"--tenant", "acme"}, {"--tenant", "a b", "--group", "g"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
