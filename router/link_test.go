package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

func readStatus(t *testing.T, kv jetstream.KeyValue) subjects.RouterStatus {
	t.Helper()
	e, err := kv.Get(context.Background(), subjects.RouterStatusKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := subjects.DecodeStatus(e.Value())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRouterStatusFollowsTheLink(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	a := openAdapter(t, js, Config{StatusInterval: 20 * time.Millisecond, Name: "a1"})
	kv, err := js.KeyValue(ctx, subjects.BucketRouter)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a first status", func() bool {
		_, err := kv.Get(ctx, subjects.RouterStatusKey)
		return err == nil
	})
	if st := readStatus(t, kv); st.Connected || st.Adapter != "a1" {
		t.Fatalf("before LinkUp: %+v", st)
	}
	_ = a.LinkUp(ctx, &directory)
	up := readStatus(t, kv)
	if !up.Connected || up.Epoch != 1 {
		t.Fatalf("after LinkUp: %+v", up)
	}
	waitFor(t, "a refreshed status", func() bool { return readStatus(t, kv).Updated.After(up.Updated) })
	a.LinkDown(ctx, "cable cut")
	if st := readStatus(t, kv); st.Connected || st.Reason != "cable cut" || st.Epoch != 1 {
		t.Fatalf("after LinkDown: %+v", st)
	}
	_ = a.LinkUp(ctx, nil)
	if st := readStatus(t, kv); !st.Connected || st.Epoch != 2 {
		t.Fatalf("after second LinkUp: %+v", st)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := readStatus(t, kv); st.Connected || st.Reason != "adapter stopped" {
		t.Fatalf("after Close: %+v", st)
	}
	if err := a.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "late"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	// The epoch survives a restart.
	b := openAdapter(t, js, Config{})
	_ = b.LinkUp(ctx, nil)
	if st := readStatus(t, kv); st.Epoch != 3 {
		t.Fatalf("epoch after restart: %+v", st)
	}
}

func TestSyncPublishesTheDifference(t *testing.T) {
	a, js, d := linkedAdapter(t, Config{}, 7)
	ctx := testCtx(t)
	drive(t, a, d, 50)
	before := len(streamEvents(t, js))
	target := []queue.Session{{CallID: "new-1", MediaType: queue.MediaChat}}
	if err := a.Sync(ctx, "acme-sales", target); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx, "acme-sales", []queue.Session{{CallID: "bad id"}}); !errors.Is(err, subjects.ErrMalformedID) {
		t.Fatalf("malformed sync: %v", err)
	}
	if err := a.Sync(ctx, "nowhere", nil); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("unknown group sync: %v", err)
	}
	_ = a.Flush(ctx)
	events := streamEvents(t, js)
	if len(events) <= before {
		t.Fatal("sync published nothing")
	}
	built := replayAll(t, events)
	_, live, _ := a.Group("acme-sales")
	sameQueue(t, "synced", built["acme-sales"].Sessions(), live)
	if len(live) != 1 || live[0].CallID != "new-1" {
		t.Fatalf("after sync: %+v", live)
	}
}

func TestDirectoryIsKept(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	a := openAdapter(t, js, Config{})
	_ = a.LinkUp(ctx, &directory)
	if err := a.PutGroup(ctx, subjects.Group{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales EMEA"}); err != nil {
		t.Fatal(err)
	}
	err := a.PutGroup(ctx, subjects.Group{ServiceGroupID: "acme-sales", TenantID: "globex", Name: "Sales"})
	if !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("moving a group to another tenant: %v", err)
	}
	if err := a.PutGroup(ctx, subjects.Group{ServiceGroupID: "x", TenantID: "nobody", Name: "X"}); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("group of an unknown tenant: %v", err)
	}
	if err := a.PutTenant(ctx, subjects.Tenant{TenantID: "no.dots"}); !errors.Is(err, subjects.ErrMalformedID) {
		t.Fatalf("malformed tenant: %v", err)
	}
	kv, _ := js.KeyValue(ctx, subjects.BucketDirectory)
	dir, err := subjects.ReadDirectory(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	if len(dir.Tenants) != 2 || len(dir.Groups) != 4 || dir.Groups["acme-sales"].Name != "Sales EMEA" {
		t.Fatalf("directory %+v", dir)
	}
}
