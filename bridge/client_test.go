package bridge_test

import (
	"sync"
	"testing"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// TestClientOnEvent: with OnEvent the Go client hands every event, in
// order, to the callback; requests still get their replies, and Events
// only closes when the connection ends.
func TestClientOnEvent(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	var (
		mu     sync.Mutex
		events []protocol.Message
	)
	c, err := client.Dial(ctxT(t), url, client.Options{Format: protocol.Msgpack, OnEvent: func(m protocol.Message) {
		mu.Lock()
		events = append(events, m)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(ctxT(t), "", "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	e.enqueue("acme-sales", 5)
	seqs := func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		var out []uint64
		for _, m := range events {
			if m.Event == protocol.EventSessionsUpdated {
				for range m.SessionUpdates {
					out = append(out, m.Seq)
				}
			}
		}
		return out
	}
	waitFor(t, "five changes through OnEvent", func() bool { return len(seqs()) == 5 })
	got := seqs()
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Fatalf("events out of order: seqs %v", got)
		}
	}
	if got[len(got)-1] != 5 {
		t.Fatalf("last change has seq %d, want 5", got[len(got)-1])
	}
	select {
	case m, ok := <-c.Events():
		t.Fatalf("Events gave %+v (open %v) while OnEvent is set", m, ok)
	default:
	}
	_ = c.Close()
	if _, ok := <-c.Events(); ok {
		t.Fatal("Events not closed after Close")
	}
}
