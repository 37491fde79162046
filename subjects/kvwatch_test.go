package subjects_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestSteadyWatchReplacesAStalledWatch: when the consumer behind a watch
// disappears (as when its NATS node goes away), the watch stands still;
// SteadyWatch notices and goes on from the next revision: every later
// change arrives, none twice, and the end of the initial values is given
// once.
func TestSteadyWatchReplacesAStalledWatch(t *testing.T) {
	ns := natstest.Server(t)
	_, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "STEADY"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(k string) {
		t.Helper()
		if _, err := kv.PutString(ctx, k, k); err != nil {
			t.Fatal(err)
		}
	}
	put("a")
	w, err := subjects.SteadyWatch(ctx, js, kv)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	expect(t, w, "a", "<initial values done>")
	stream, err := js.Stream(ctx, "KV_STEADY")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for name := range stream.ConsumerNames(ctx).Name() {
			if err := stream.DeleteConsumer(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		b, c := fmt.Sprintf("b%d", round), fmt.Sprintf("c%d", round)
		put(b)
		put(c)
		expect(t, w, b, c)
	}
	_ = w.Stop()
	if _, ok := <-w.Updates(); ok {
		t.Fatal("Updates still open after Stop")
	}
}

// expect reads the next entries of a watch (a nil one written as
// "<initial values done>") and fails on anything else, or on nothing
// within 15 s (the stall is noticed in about subjects.StallChecks s).
func expect(t *testing.T, w jetstream.KeyWatcher, keys ...string) {
	t.Helper()
	for _, want := range keys {
		select {
		case e := <-w.Updates():
			got := "<initial values done>"
			if e != nil {
				got = e.Key()
			}
			if got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s within 15 s", want)
		}
	}
}
