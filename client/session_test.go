package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// gateway runs the stack and a gateway on loopback; it returns the
// WebSocket URL.
func gateway(t *testing.T, e *stacktest.Env, cfg bridge.Config) string {
	t.Helper()
	_, url := gatewayWith(t, e, cfg, &seats{})
	return url
}

func gatewayWith(t *testing.T, e *stacktest.Env, cfg bridge.Config, st *seats) (*bridge.Server, string) {
	t.Helper()
	srv := e.Gateway(cfg, st, nil)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http") + protocol.Path
}

// seats never runs out; it remembers the last session it served.
type seats struct {
	mu   sync.Mutex
	last string
}

func (s *seats) Acquire(_ context.Context, id string) (func(context.Context) error, error) {
	s.mu.Lock()
	s.last = id
	s.mu.Unlock()
	return func(context.Context) error { return nil }, nil
}

func (s *seats) lastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
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

// viewIs waits until the session holds a group as the router has it.
func viewIs(t *testing.T, s *client.Session, e *stacktest.Env, group string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, got, complete := s.View(group)
		want := routerIDs(e.Queues[group])
		if complete && reflect.DeepEqual(ids(got), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session holds %v of %s (complete %v), want %v", ids(got), group, complete, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSessionFollowsATenant: a Session subscribed to a tenant with
// AllGroups follows its groups, one added later, drops a removed one (its
// ServiceGroupRemoved delivered), and after a reconnection follows a group
// added while it was away.
func TestSessionFollowsATenant(t *testing.T) {
	e := stacktest.New(t)
	st := &seats{}
	srv, url := gatewayWith(t, e, bridge.Config{}, st)
	var removed atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, client.SessionConfig{URL: url, Positions: true, OnEvent: func(m protocol.Message) {
		if m.Event == protocol.EventServiceGroupRemoved {
			removed.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	enqueue(e, "acme-sales", 1)
	yes := true
	res, err := s.Subscribe(ctx, protocol.Request{TenantID: "acme", AllGroups: &yes})
	if err != nil || len(res.ServiceGroupIDs) != 2 {
		t.Fatalf("tenant-wide Subscribe: %+v %v", res, err)
	}
	viewIs(t, s, e, "acme-sales")
	viewIs(t, s, e, "acme-support")

	add := func(id string) {
		t.Helper()
		if err := e.Adapter.PutGroup(e.Ctx, subjects.Group{ServiceGroupID: id, TenantID: "acme", Name: id}); err != nil {
			t.Fatal(err)
		}
		e.Queues[id] = queue.New(id)
		enqueue(e, id, len(e.Queues)*10)
	}
	add("acme-new")
	viewIs(t, s, e, "acme-new")

	if err := e.Adapter.RemoveGroup(e.Ctx, "acme-support"); err != nil {
		t.Fatal(err)
	}
	for removed.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("no ServiceGroupRemoved")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Groups(); !reflect.DeepEqual(got, []string{"acme-new", "acme-sales"}) {
		t.Fatalf("the session follows %v", got)
	}

	// away: the gateway closes the connection; a group is added meanwhile
	first := st.lastID()
	srv.SeatLost(first)
	add("acme-late")
	viewIs(t, s, e, "acme-late")
	enqueue(e, "acme-sales", 2)
	viewIs(t, s, e, "acme-sales")
	if st.lastID() == first {
		t.Fatal("no new session")
	}
}
