package oracle

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestFollowOutlivesItsNode: each node of the cluster in turn (the
// stream's leader among them, and the one the oracle is connected to) is
// killed while events go on being stored, then started again; the oracle
// still reads every event to the stream's end, without a gap.
func TestFollowOutlivesItsNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := startCluster(t, 3)
	js := connect(t, strings.Join(c.urls(), ","))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := subjects.Ensure(ctx, js, subjects.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	var findings []string
	var mu sync.Mutex
	o := New(func(kind, msg string) { mu.Lock(); findings = append(findings, kind+": "+msg); mu.Unlock() })
	ojs := connect(t, strings.Join(c.urls(), ","))
	fctx, stopFollow := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() { followed <- o.Follow(fctx, ojs) }()
	defer func() { stopFollow(); <-followed }()

	var stored atomic.Uint64
	pub := startPublishing(ctx, js, &stored)
	defer pub.stop()
	for i := range c.nodes {
		from := o.Read()
		waitFor(t, "the oracle reads 50 more events", func() bool { return o.Read() >= from+50 }, o.State)
		c.kill(t, i)
		from = stored.Load()
		waitFor(t, "100 more events stored without a node", func() bool { return stored.Load() >= from+100 })
		c.restart(t, i)
	}
	pub.stop()
	last := stored.Load()
	waitFor(t, fmt.Sprintf("the oracle reads to the stream's end (%d)", last), func() bool { return o.Read() >= last }, o.State)
	mu.Lock()
	defer mu.Unlock()
	if len(findings) > 0 {
		t.Fatalf("findings: %s", strings.Join(findings, "; "))
	}
}

// cluster is a cluster of embedded nodes that a test can kill and start
// again on the same ports and directories.
type cluster struct {
	cfgs  []embednats.Config
	nodes []*server.Server
}

// startCluster starts n embedded nodes of one cluster, each on a fresh
// directory, and returns once all accept clients.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{cfgs: make([]embednats.Config, n), nodes: make([]*server.Server, n)}
	routes := make([]string, n)
	for i := range routes {
		routes[i] = freeAddr(t)
	}
	for i := range c.cfgs {
		c.cfgs[i] = embednats.Config{Listen: freeAddr(t), DataDir: t.TempDir(), Cluster: embednats.Cluster{
			Name: "oracle", ServerName: fmt.Sprintf("n%d", i), Listen: routes[i], Routes: routes, User: "route", Password: "route-secret"}}
	}
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); c.restart(t, i) }()
	}
	wg.Wait()
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(t, i)
		}
	})
	return c
}

func (c *cluster) urls() []string {
	urls := make([]string, len(c.cfgs))
	for i, cfg := range c.cfgs {
		urls[i] = "nats://" + cfg.Listen
	}
	return urls
}

// restart starts node i (again).
func (c *cluster) restart(t *testing.T, i int) {
	s, err := embednats.Start(c.cfgs[i], zerolog.Nop())
	if err != nil {
		t.Error(err)
		return
	}
	c.nodes[i] = s
}

// kill stops node i at once.
func (c *cluster) kill(t *testing.T, i int) {
	t.Helper()
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func connect(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publisher stores events of one group, Seq 1, 2, 3, ..., until stopped.
type publisher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *publisher) stop() { p.cancel(); <-p.done }

// startPublishing stores events one after another, each made again
// until stored, and counts them in stored. It stops by itself after
// 100,000.
func startPublishing(ctx context.Context, js jetstream.JetStream, stored *atomic.Uint64) *publisher {
	ctx, cancel := context.WithCancel(ctx)
	p := &publisher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for seq := uint64(1); seq <= 100_000 && ctx.Err() == nil; {
			if publishOne(ctx, js, seq) == nil {
				stored.Store(seq)
				seq++
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return p
}

// publishOne stores the event of Seq seq, deduplicated by its Seq so a
// publish made again after a lost answer is stored once.
func publishOne(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	ev := subjects.Event{Tenant: "t", Group: "g", Seq: seq, Time: time.Now(),
		Change: queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("c%d", seq), Session: queue.Session{MediaType: queue.MediaVoice}}}
	data, err := subjects.EncodeEvents([]subjects.Event{ev})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.Publish(pctx, subjects.Events("t", "g"), data, jetstream.WithMsgID(fmt.Sprint(seq)))
	return err
}

// waitFor waits up to 60 s for cond, failing with what and, if given,
// what more says.
func waitFor(t *testing.T, what string, cond func() bool, more ...func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out waiting until " + what
			for _, m := range more {
				msg += ": " + m()
			}
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
