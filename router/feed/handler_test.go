package feed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/feed"
	"github.com/sisbridge/sisbridge/subjects"
)

// recorder is a router.Handler that checks changes as the adapter would,
// with a queue.Queue per group, and records every call as a short string.
type recorder struct {
	mu      sync.Mutex
	tenants map[string]subjects.Tenant
	groups  map[string]subjects.Group
	queues  map[string]*queue.Queue
	events  []string
	notify  chan struct{}
	inCall  atomic.Int32
	overlap atomic.Bool // two calls ran at once
}

func newRecorder() *recorder {
	return &recorder{
		tenants: map[string]subjects.Tenant{},
		groups:  map[string]subjects.Group{},
		queues:  map[string]*queue.Queue{},
		notify:  make(chan struct{}, 1),
	}
}

var _ router.Handler = (*recorder)(nil)

// call marks a handler call in progress and returns its end.
func (r *recorder) call() func() {
	if r.inCall.Add(1) > 1 {
		r.overlap.Store(true)
	}
	r.mu.Lock()
	return func() {
		select {
		case r.notify <- struct{}{}:
		default:
		}
		r.mu.Unlock()
		r.inCall.Add(-1)
	}
}

func (r *recorder) record(format string, args ...any) {
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) LinkUp(ctx context.Context, state *router.State) error {
	defer r.call()()
	r.record("up")
	return nil
}

func (r *recorder) LinkDown(ctx context.Context, reason string) {
	defer r.call()()
	r.record("down:%s", reason)
}

func (r *recorder) PutTenant(ctx context.Context, t subjects.Tenant) error {
	defer r.call()()
	r.tenants[t.TenantID] = t
	r.record("tenant:%s:%s", t.TenantID, t.Name)
	return nil
}

func (r *recorder) PutGroup(ctx context.Context, g subjects.Group) error {
	defer r.call()()
	if _, ok := r.tenants[g.TenantID]; !ok {
		return fmt.Errorf("%w: tenant %s", router.ErrUnknownGroup, g.TenantID)
	}
	r.groups[g.ServiceGroupID] = g
	if r.queues[g.ServiceGroupID] == nil {
		r.queues[g.ServiceGroupID] = queue.New(g.ServiceGroupID)
	}
	r.record("group:%s:%s:%s", g.ServiceGroupID, g.TenantID, g.Name)
	return nil
}

func (r *recorder) RemoveGroup(ctx context.Context, group string) error {
	defer r.call()()
	if _, ok := r.groups[group]; !ok {
		return fmt.Errorf("%w: group %s", router.ErrUnknownGroup, group)
	}
	delete(r.groups, group)
	delete(r.queues, group)
	r.record("removegroup:%s", group)
	return nil
}

func (r *recorder) Apply(ctx context.Context, group string, c queue.Change) error {
	defer r.call()()
	q, ok := r.queues[group]
	if !ok {
		return fmt.Errorf("%w: %s", router.ErrUnknownGroup, group)
	}
	e, err := q.Apply(c)
	if err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	r.record("%s:%s:%s@%d", c.Op, group, c.CallID, e.To)
	return nil
}

func (r *recorder) Sync(ctx context.Context, group string, sessions []queue.Session) error {
	defer r.call()()
	q, ok := r.queues[group]
	if !ok {
		return fmt.Errorf("%w: %s", router.ErrUnknownGroup, group)
	}
	changes, _, err := q.Reconcile(sessions)
	if err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	r.record("sync:%s:%d", group, len(changes))
	return nil
}

// Events returns a copy of the recorded calls.
func (r *recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// Queue returns the CallIDs of a group's queue in order.
func (r *recorder) Queue(group string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[group]
	if q == nil {
		return nil
	}
	var ids []string
	for _, s := range q.Sessions() {
		ids = append(ids, s.CallID)
	}
	return ids
}

// waitFor waits until cond holds for the recorded events, failing the test
// after a deadline.
func (r *recorder) waitFor(t *testing.T, what string, cond func(events []string) bool) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		if cond(r.Events()) {
			return
		}
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; events: %q", what, r.Events())
		}
	}
}

// has reports whether events contains e.
func has(e string) func([]string) bool {
	return func(events []string) bool {
		for _, x := range events {
			if x == e {
				return true
			}
		}
		return false
	}
}

// syncBuffer is a log sink safe for concurrent writes.
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

const testToken = "s3cret-token-value"

// running is a feed running in the background.
type running struct {
	f    *feed.Feed
	h    *recorder
	log  *syncBuffer
	url  string
	stop func() error
}

// start runs a feed with cfg. With http set it listens on 127.0.0.1:0 with
// testToken. The feed is stopped at the end of the test.
func start(t *testing.T, cfg feed.Config, http bool) *running {
	t.Helper()
	if http {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Listener, cfg.Token = ln, testToken
	}
	logs := &syncBuffer{}
	f, err := feed.New(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	h := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, h) }()
	select {
	case <-f.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("feed not ready")
	}
	r := &running{f: f, h: h, log: logs}
	if a := f.Addr(); a != nil {
		r.url = "http://" + a.String() + feed.DefaultPath
	}
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = fmt.Errorf("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if h.overlap.Load() {
			t.Error("handler calls overlapped")
		}
	})
	return r
}

// post sends body to the feed with the test token and decodes the answer.
func (r *running) post(t *testing.T, body string) (int, feed.Answer) {
	t.Helper()
	return r.do(t, http.MethodPost, "Bearer "+testToken, body)
}

func (r *running) do(t *testing.T, method, auth, body string) (int, feed.Answer) {
	t.Helper()
	req, err := http.NewRequest(method, r.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var a feed.Answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %d %q: %v", resp.StatusCode, raw, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return resp.StatusCode, a
}
