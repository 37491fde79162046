package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// gateway runs the stack and a gateway on loopback; it returns the
// WebSocket URL.
func gateway(t *testing.T, e *stacktest.Env, cfg bridge.Config) string {
	t.Helper()
	srv := e.Gateway(cfg, seats{}, nil)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + protocol.Path
}

// seats never runs out.
type seats struct{}

func (seats) Acquire(context.Context, string) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

func enqueue(e *stacktest.Env, group string, i int) {
	e.Apply(group, queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("c%d", i), Session: queue.Session{MediaType: queue.MediaVoice,
		TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, i, 0, time.UTC)}})
}

func ids(list []protocol.SessionInfo) []string {
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s@%d", s.CallID, s.QueuePosition))
	}
	return out
}

func routerIDs(q *queue.Queue) []string {
	var out []string
	for i, s := range q.Sessions() {
		out = append(out, fmt.Sprintf("%s@%d", s.CallID, i+1))
	}
	return out
}

// TestSessionRepairsAGapFromKeepAlive: a Session made to lose the last
// SessionsUpdated of a group (the network lost it, say) learns from the
// next KeepAlive's Seqs that its view is behind, resumes the group from
// its own Seq, and holds the router's queue again.
func TestSessionRepairsAGapFromKeepAlive(t *testing.T) {
	e := stacktest.New(t)
	url := gateway(t, e, bridge.Config{KeepAlive: 200 * time.Millisecond})
	var lost atomic.Int32
	cfg := client.SessionConfig{URL: url, Positions: true}
	client.Lose(&cfg, func(m protocol.Message) bool {
		// the first event that brings the group to Seq 3 is lost (once)
		return m.Event == protocol.EventSessionsUpdated && m.ServiceGroupID == "acme-sales" && m.Seq == 3 && lost.CompareAndSwap(0, 1)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		enqueue(e, "acme-sales", i)
	}
	want := routerIDs(e.Queues["acme-sales"])
	deadline := time.Now().Add(20 * time.Second)
	for {
		seq, got, _ := s.View("acme-sales")
		if seq == 3 && reflect.DeepEqual(ids(got), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session holds %v at Seq %d, want %v at 3 (lost %d events)", ids(got), seq, want, lost.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Stats(); st.Gaps != 1 || st.Resumed != 1 || st.Resent != 0 || lost.Load() != 1 {
		t.Fatalf("stats %+v, lost %d: want one gap, resumed (not sent again in full), one event lost", st, lost.Load())
	}
	// and it goes on live
	enqueue(e, "acme-sales", 4)
	want = routerIDs(e.Queues["acme-sales"])
	for {
		if _, got, _ := s.View("acme-sales"); reflect.DeepEqual(ids(got), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no live change after the repair")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
