package bridge_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// switchProxy forwards TCP connections to a target that can change, and
// cuts every connection on demand: a load balancer that moves clients to
// another gateway.
type switchProxy struct {
	ln     net.Listener
	target atomic.Value // string: host:port
	mu     sync.Mutex
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln}
	p.target.Store(target)
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	return p
}

func (p *switchProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target.Load().(string))
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

// cut closes every connection.
func (p *switchProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// url is the proxy's WebSocket URL for a gateway URL's path.
func (p *switchProxy) url() string { return "ws://" + p.ln.Addr().String() + protocol.Path }

// hostOf returns the host:port of a ws:// URL.
func hostOf(url string) string {
	rest := strings.TrimPrefix(url, "ws://")
	host, _, _ := strings.Cut(rest, "/")
	return host
}

// sameAsRouter waits until a session's view of each group is at the
// adapter's Seq, then checks it holds the adapter's queue: the same calls
// in the same order, and with position updates the same positions.
func sameAsRouter(t *testing.T, e *env, s *client.Session, positions bool, groups ...string) {
	t.Helper()
	for _, g := range groups {
		waitFor(t, g+" at the adapter's Seq", func() bool {
			want, _, _ := e.Adapter.Group(g)
			seq, _, complete := s.View(g)
			return complete && seq == want
		})
		_, want, _ := e.Adapter.Group(g)
		_, got, _ := s.View(g)
		if len(got) != len(want) {
			t.Fatalf("%s: %d sessions, adapter %d", g, len(got), len(want))
		}
		for i := range got {
			if got[i].CallID != want[i].CallID || positions && got[i].QueuePosition != want[i].QueuePosition {
				t.Fatalf("%s place %d: %s at %d, adapter %s at %d", g, i+1, got[i].CallID, got[i].QueuePosition, want[i].CallID, want[i].QueuePosition)
			}
		}
	}
}

// TestSessionResumesThroughAnotherGateway: a Session follows two groups
// through a load balancer; its connection is cut and the balancer sends it
// to another gateway while the router goes on. It reconnects, resumes
// both groups from the Seq it held (no full resend), and its mirror ends
// equal to the router's queues; nothing it applied failed to fit.
func TestSessionResumesThroughAnotherGateway(t *testing.T) {
	e := newEnv(t)
	e.enqueue("acme-sales", 20)
	e.enqueue("globex-chat", 5)
	_, urlA := e.gateway(bridge.Config{}, nil)
	_, urlB := e.gateway(bridge.Config{}, nil)
	lb := newSwitchProxy(t, hostOf(urlA))
	var events atomic.Int64
	s, err := client.Connect(ctxT(t), client.SessionConfig{URL: lb.url(), Positions: true, OnEvent: func(protocol.Message) { events.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, g := range []string{"acme-sales", "globex-chat"} {
		if _, err := s.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: g}); err != nil {
			t.Fatal(err)
		}
	}
	e.enqueue("acme-sales", 5)
	sameAsRouter(t, e, s, true, "acme-sales", "globex-chat")
	lb.target.Store(hostOf(urlB))
	lb.cut()
	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "call-1", Cause: queue.CauseSessionAllocatedToAgent})
	e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: "call-30", Position: 1})
	e.enqueue("globex-chat", 3)
	waitFor(t, "a second connection", func() bool { return s.Stats().Connects >= 2 })
	sameAsRouter(t, e, s, true, "acme-sales", "globex-chat")
	st := s.Stats()
	if st.Resumed != 2 || st.Resent != 0 || st.Broken != 0 {
		t.Fatalf("stats %+v: want both groups resumed, none resent, nothing broken", st)
	}
	if events.Load() == 0 {
		t.Fatal("OnEvent got nothing")
	}
}

// TestSessionResumesAfterRouterDisconnected: the router link drops (every
// session gets RouterDisconnected) while the router goes on; when it is
// back, the Session initializes again on its connection and resumes, and
// its mirror is the router's queues, the changes made meanwhile included.
func TestSessionResumesAfterRouterDisconnected(t *testing.T) {
	e := newEnv(t)
	e.enqueue("acme-support", 8)
	_, url := e.gateway(bridge.Config{}, nil)
	s, err := client.Connect(ctxT(t), client.SessionConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Subscribe(ctxT(t), protocol.Request{TenantID: "acme", ServiceGroupName: "support"}); err != nil {
		t.Fatal(err)
	}
	sameAsRouter(t, e, s, false, "acme-support")
	e.Adapter.LinkDown(e.Ctx, "test: link lost")
	waitFor(t, "RouterDisconnected", func() bool { return s.Stats().RouterDisconnects == 1 })
	e.ApplyUnheard("acme-support", queue.Change{Op: queue.OpRemove, CallID: "call-3", Cause: queue.CauseSessionAllocatedToAgent})
	if err := e.Adapter.LinkUp(e.Ctx, e.State()); err != nil {
		t.Fatal(err)
	}
	e.enqueue("acme-support", 2)
	sameAsRouter(t, e, s, false, "acme-support")
	if st := s.Stats(); st.Resumed != 1 || st.Broken != 0 || st.Connects < 2 {
		t.Fatalf("stats %+v: want one initialization more, the group resumed, nothing broken", st)
	}
}
