package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
)

// TestAckDeadlineCountsFromThePublish: the publishes in flight when the
// stream's leader dies are never acknowledged; each must time out
// AckTimeout after it was sent, so that settling them in order takes one
// AckTimeout, not one per publish (ten groups' publishes lost under a
// killed leader held every client back 36 s in a topology run). A stream that never
// acknowledges (NoAck) stands for the dead leader; the AckTimeout is an
// hour, and the publishes were sent an hour ago.
func TestAckDeadlineCountsFromThePublish(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SILENT", Subjects: []string{"silent.>"}, NoAck: true}); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := &publisher{timeout: time.Hour, ctx: pctx}
	var items []item
	for range 5 {
		fut, err := js.PublishAsync("silent.x", []byte("lost"))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item{fut: fut, deadline: time.Now().Add(-time.Millisecond)})
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	done := make(chan error, 1)
	go func() {
		for i := range items {
			if _, err := p.await(&items[i], timer); !errors.Is(err, context.DeadlineExceeded) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a lost publish past its deadline: %v, want its deadline exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lost publishes past their deadline still wait: their timeout counts from when they are settled")
	}
}
