package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestSecondAdapterIsRefused: while one adapter keeps the router status
// current, another refuses to start, naming it; once the first has closed
// cleanly, a new one starts at once.
func TestSecondAdapterIsRefused(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	first := openAdapter(t, js, Config{Name: "first", StatusInterval: 100 * time.Millisecond})
	ctx := testCtx(t)
	_, err := Open(ctx, js, natstest.Logger(t), Config{Name: "second"})
	if !errors.Is(err, ErrAdapterLive) {
		t.Fatalf("a second adapter: %v", err)
	}
	t.Logf("refused: %v", err)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	third := openAdapter(t, js, Config{Name: "third"})
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("after a clean stop the next adapter waited %s", waited)
	}
	_ = third
}

// TestDeadAdaptersLeaseIsWaitedOut: a lease taken moments ago by an
// adapter that has died (nobody renews it) keeps a new adapter waiting
// until the server drops it, then the new one starts; the status a dead
// adapter left does not hold anyone back.
func TestDeadAdaptersLeaseIsWaitedOut(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	if err := subjects.Ensure(ctx, js, subjects.Config{AdapterLeaseTTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	status, err := js.KeyValue(ctx, subjects.BucketRouter)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := subjects.EncodeStatus(subjects.RouterStatus{Connected: true, Epoch: 3, Updated: time.Now().UTC(), Adapter: "killed"})
	if _, err := status.Put(ctx, subjects.RouterStatusKey, data); err != nil {
		t.Fatal(err)
	}
	leases, err := js.KeyValue(ctx, subjects.BucketLease)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = subjects.EncodeLease(subjects.Lease{Adapter: "killed", Instance: "x", Since: time.Now().UTC()})
	if _, err := leases.Create(ctx, subjects.LeaseKey, data); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := Open(wctx, js, natstest.Logger(t), Config{Bus: subjects.Config{AdapterLeaseTTL: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Errorf("started %s after a lease of 1s was taken: it did not wait for it to lapse", waited)
	}
	_ = a.Close(ctx)
}
