package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestForeignWriteStopsTheAdapter: a message on a group's events subject
// that the adapter did not write (numbered as its next event, with or
// without the message ID the adapter would give it) makes the adapter's
// next write of the group fail: it stops with ErrForeignWrite instead of
// storing a history that no longer replays, and refuses changes after.
func TestForeignWriteStopsTheAdapter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		msgID bool
	}{{"same message ID", true}, {"no message ID", false}} {
		t.Run(tc.name, func(t *testing.T) {
			a, js, d := linkedAdapter(t, Config{}, 7)
			ctx := testCtx(t)
			drive(t, a, d, 20)
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			seq, _, _ := a.Group("acme-sales")
			forged := subjects.Event{Tenant: "acme", Group: "acme-sales", Seq: seq + 1, Time: time.Now().UTC(), Epoch: 1,
				Change: queue.Change{Op: queue.OpEnqueue, CallID: "forged", Session: queue.Session{MediaType: queue.MediaVoice}}}
			data, err := subjects.EncodeEvent(&forged)
			if err != nil {
				t.Fatal(err)
			}
			msg := &nats.Msg{Subject: subjects.Events("acme", "acme-sales"), Data: data, Header: nats.Header{}}
			if tc.msgID {
				msg.Header.Set(jetstream.MsgIDHeader, subjects.MsgID(a.writer, "acme", "acme-sales", seq+1))
			}
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			real := queue.Change{Op: queue.OpEnqueue, CallID: "real", Session: queue.Session{MediaType: queue.MediaChat}}
			if err := a.Apply(ctx, "acme-sales", real); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the adapter to fail", func() bool { return a.Failed() != nil })
			if err := a.Failed(); !errors.Is(err, ErrForeignWrite) {
				t.Fatalf("Failed: %v", err)
			}
			t.Logf("failed: %v", a.Failed())
			g, c := d.change()
			if err := a.Apply(ctx, g, c); !errors.Is(err, ErrForeignWrite) {
				t.Fatalf("Apply after the failure: %v", err)
			}
			for _, e := range streamEvents(t, js) {
				if e.Group == "acme-sales" && e.Change.CallID == "real" {
					t.Fatal("the adapter stored its change after the forged one")
				}
			}
		})
	}
}

// TestRunEndsOnForeignWrite: Run returns the failure, so the process ends
// with it.
func TestRunEndsOnForeignWrite(t *testing.T) {
	a, js, _ := linkedAdapter(t, Config{}, 8)
	ctx := testCtx(t)
	msg := &nats.Msg{Subject: subjects.Events("acme", "acme-sales"), Data: []byte("forged")}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	src := sourceFunc(func(ctx context.Context, h Handler) error {
		for i := 0; ctx.Err() == nil && i < 10000; i++ {
			c := queue.Change{Op: queue.OpEnqueue, CallID: "c" + uitoa(uint64(i)), Session: queue.Session{MediaType: queue.MediaChat}}
			if err := h.Apply(ctx, "acme-sales", c); err != nil {
				return err
			}
		}
		<-ctx.Done()
		return nil
	})
	if err := a.Run(ctx, src); !errors.Is(err, ErrForeignWrite) {
		t.Fatalf("Run: %v", err)
	}
}

type sourceFunc func(ctx context.Context, h Handler) error

func (f sourceFunc) Run(ctx context.Context, h Handler) error { return f(ctx, h) }

// TestRetryFindsItsOwnStoredWrite: a publish stored whose acknowledgement
// was lost is retried; the retry finds the adapter's own message at the
// end of the subject and counts it stored: no failure, no duplicate.
func TestRetryFindsItsOwnStoredWrite(t *testing.T) {
	s, p, js := proxiedServer(t)
	_, direct := natstest.Connect(t, s)
	a := openAdapter(t, js, Config{AckTimeout: 200 * time.Millisecond})
	ctx := testCtx(t)
	d := newDriver(9)
	if err := a.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stored := len(streamEvents(t, direct))
	p.holdReplies(true)
	drive(t, a, d, 1)
	waitFor(t, "the change stored", func() bool { return len(streamEvents(t, direct)) == stored+1 })
	waitFor(t, "a retry", func() bool { return a.Stats().Retries > 0 })
	p.holdReplies(false)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Failed(); err != nil {
		t.Fatal(err)
	}
	drive(t, a, d, 10)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	queues := replayAll(t, streamEvents(t, direct))
	for id, q := range d.queues {
		sameQueue(t, id, queues[id].Sessions(), q.Sessions())
	}
}
