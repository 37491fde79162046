package bridge_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// TestKeepAliveSeqs: every KeepAlive's Seqs are, for each group whose
// InitialDataComplete the client has, the Seq of the last SessionsUpdated
// (or InitialDataComplete) it was sent: under a stream of changes, with a
// media filter (whose Seq lags the group's), for a statistics-only
// subscription, and without a group once it is unsubscribed.
func TestKeepAliveSeqs(t *testing.T) {
	e := newEnv(t)
	e.enqueue("acme-sales", 3)
	_, url := e.gateway(bridge.Config{KeepAlive: 100 * time.Millisecond, HeartbeatTimeout: time.Minute, Statistics: statsCfg}, nil)
	c := initialized(t, url, true)
	m := client.NewMirror(true)
	m.Filtered = map[string]bool{"acme-support": true}
	yes, no := true, false
	for _, req := range []protocol.Request{
		{ServiceGroupID: "acme-sales"},
		{ServiceGroupID: "acme-support", MediaTypes: []string{"Chat"}},
		{ServiceGroupID: "globex-chat", Statistics: &yes, Sessions: &no},
	} {
		if _, err := c.Subscribe(ctxT(t), req); err != nil {
			t.Fatal(err)
		}
	}
	keepAlives := 0
	checkUntil := func(what string, want func(seqs map[string]uint64) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			ev := <-c.Events()
			if ev.Event != protocol.EventKeepAlive {
				if err := m.Apply(ev); err != nil {
					t.Fatal(err)
				}
				continue
			}
			keepAlives++
			held := map[string]uint64{}
			for g, done := range m.Complete {
				if done {
					held[g] = m.Seq[g]
				}
			}
			if !maps.Equal(ev.Seqs, held) {
				t.Fatalf("%s: KeepAlive Seqs %v, the client holds %v", what, ev.Seqs, held)
			}
			if want(ev.Seqs) {
				return
			}
		}
		t.Fatalf("%s: not within 20s", what)
	}
	checkUntil("every group complete", func(s map[string]uint64) bool { return len(s) == 3 })
	// changes while KeepAlives go: the Voice ones pass acme-support's filter by
	for i := range 40 {
		g := []string{"acme-sales", "acme-support", "globex-chat"}[i%3]
		e.Apply(g, queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("k%d", i), Session: queue.Session{MediaType: queue.MediaTypes[1+i%4],
			TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, i, 0, time.UTC)}})
		if i%10 == 9 {
			time.Sleep(150 * time.Millisecond) // a KeepAlive between bursts
		}
	}
	last, _, _ := e.Adapter.Group("acme-sales")
	checkUntil("acme-sales caught up", func(s map[string]uint64) bool { return s["acme-sales"] == last })
	if err := c.Unsubscribe(ctxT(t), "acme-sales"); err != nil {
		t.Fatal(err)
	}
	drain(t, c, m) // what came before the reply, KeepAlives with acme-sales among it
	m.Drop("acme-sales")
	checkUntil("acme-sales gone", func(s map[string]uint64) bool { _, in := s["acme-sales"]; return !in })
	if keepAlives < 3 {
		t.Fatalf("only %d KeepAlives", keepAlives)
	}
}
