package router

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// stallProxy forwards loopback TCP to a NATS server and can hold every byte
// while paused: NATS that stops answering without the connection dropping.
type stallProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	// replies holds only what the server sends: requests get through and
	// are acted on, their answers wait.
	replies bool
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// proxiedServer starts a NATS server and a JetStream context whose
// connection goes through a stall proxy.
func proxiedServer(t *testing.T) (*server.Server, *stallProxy, jetstream.JetStream) {
	t.Helper()
	s := natstest.Server(t)
	p := newStallProxy(t, s.Addr().String())
	nc, err := nats.Connect(p.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return s, p, js
}

func (p *stallProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s, false)
		go p.pipe(s, c, true)
	}
}

// pipe copies src to dst, holding each read while the proxy is paused
// (or, from the server, while replies are held).
func (p *stallProxy) pipe(src, dst net.Conn, fromServer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.paused || (fromServer && p.replies) {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			return
		}
	}
}

func (p *stallProxy) pause(on bool) {
	p.mu.Lock()
	p.paused = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *stallProxy) holdReplies(on bool) {
	p.mu.Lock()
	p.replies = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *stallProxy) close() {
	p.pause(false)
	p.holdReplies(false)
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// TestApplyDoesNotWaitForNATS stalls the adapter's NATS connection while
// the router keeps sending changes: the status refresh (a KV write every
// StatusInterval, here waiting up to a second for an answer that does not
// come) must not hold the adapter's lock, so Apply never waits for it.
// (The lease outlasts the stall: an adapter cut off for most of its lease
// stands down, TestLapsedLeaseStandsDown.)
func TestApplyDoesNotWaitForNATS(t *testing.T) {
	_, p, js := proxiedServer(t)
	a := openAdapter(t, js, Config{StatusInterval: time.Second, Bus: subjects.Config{AdapterLeaseTTL: 10 * time.Second}})
	ctx := testCtx(t)
	if err := a.LinkUp(ctx, newDriver(1).state()); err != nil {
		t.Fatal(err)
	}
	p.pause(true)
	var worst time.Duration
	for i, end := 0, time.Now().Add(2500*time.Millisecond); time.Now().Before(end); i++ {
		start := time.Now()
		c := queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("stall-%d", i), Session: queue.Session{MediaType: queue.MediaChat}}
		if err := a.Apply(ctx, "acme-sales", c); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(10 * time.Millisecond) // the router's pace
	}
	p.pause(false)
	if worst > 500*time.Millisecond {
		t.Fatalf("an Apply waited %s while NATS did not answer", worst)
	}
	t.Logf("slowest Apply %s while NATS did not answer for 2.5 s", worst)
}

// TestApplyDoesNotWaitForDirectoryWrites: a group added while NATS does not
// answer waits for its directory entry, but the adapter's state has it at
// once, and changes of other groups go on meanwhile.
func TestApplyDoesNotWaitForDirectoryWrites(t *testing.T) {
	_, p, js := proxiedServer(t)
	a := openAdapter(t, js, Config{})
	ctx := testCtx(t)
	if err := a.LinkUp(ctx, newDriver(1).state()); err != nil {
		t.Fatal(err)
	}
	p.pause(true)
	put := make(chan error, 1)
	go func() {
		put <- a.PutGroup(ctx, subjects.Group{ServiceGroupID: "acme-new", TenantID: "acme", Name: "New"})
	}()
	waitFor(t, "the new group in the state", func() bool { _, _, ok := a.Group("acme-new"); return ok })
	applied := make(chan error, 1)
	go func() {
		applied <- a.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "during", Session: queue.Session{MediaType: queue.MediaChat}})
	}()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-put:
		t.Fatal("the directory write ended before the stall did")
	case <-time.After(20 * time.Second):
		t.Fatal("Apply waited for a directory write")
	}
	p.pause(false)
	if err := <-put; err != nil {
		t.Fatal(err)
	}
}
