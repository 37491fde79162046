package topology

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/oracle"
	"github.com/sisbridge/sisbridge/internal/process"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// clients is how many clients follow groups through HAProxy.
const clients = 50

// fleetClient is one client Session through the load balancer and the
// last Seq it applied of each of its groups.
type fleetClient struct {
	name      string
	positions bool
	groups    []string
	s         *client.Session

	mu   sync.Mutex
	last map[string]uint64
}

// onEvent checks the view an event leaves against the stream and notes
// its Seq; it runs on the session's reader.
func (c *fleetClient) onEvent(orc *oracle.Oracle) func(protocol.Message) {
	return func(m protocol.Message) {
		if m.Event != protocol.EventSessionsUpdated && m.Event != protocol.EventInitialDataComplete {
			return
		}
		c.observe(orc, m.ServiceGroupID)
	}
}

// observe checks the client's view of g against the stream.
func (c *fleetClient) observe(orc *oracle.Oracle, g string) {
	c.mu.Lock()
	s := c.s
	c.mu.Unlock()
	if s == nil {
		return
	}
	seq, view, complete := s.View(g)
	if !complete {
		return
	}
	var print uint64
	for _, si := range view {
		pos := 0
		if c.positions {
			pos = si.QueuePosition
		}
		print += oracle.SessionPrint(si.CallID, pos)
	}
	orc.Check(oracle.Observation{Group: g, Seq: seq, Positions: c.positions, Print: print, Who: c.name})
	c.mu.Lock()
	c.last[g] = max(c.last[g], seq)
	c.mu.Unlock()
}

// caughtUp says whether every group of the client is past its target.
func (c *fleetClient) caughtUp(target map[string]uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		if c.last[g] <= target[g] {
			return false
		}
	}
	return true
}

// findings collects what the oracle found.
type findings struct {
	mu   sync.Mutex
	list []string
}

func (f *findings) report(kind, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.list) < 20 {
		f.list = append(f.list, kind+": "+msg)
	}
}

func (f *findings) check(t *testing.T, after string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.list) > 0 {
		t.Fatalf("after %s:\n%s", after, strings.Join(f.list, "\n"))
	}
}

// directoryGroups reads the groups of the directory once the simulator
// has put them there.
func directoryGroups(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := js.KeyValue(ctx, subjects.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		d, err := subjects.ReadDirectory(ctx, kv)
		if err == nil && len(d.Groups) == 10 {
			var ids []string
			for id := range d.Groups {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			return ids
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the directory never held the simulator's 10 groups")
	return nil
}

// startFleet connects the clients through the load balancer, half of them
// with position updates, each following three random groups.
func startFleet(t *testing.T, st *stack, orc *oracle.Oracle, groups []string) []*fleetClient {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	url := "ws://" + st.lbAddr + protocol.Path
	var fleet []*fleetClient
	for i := range clients {
		c := &fleetClient{name: fmt.Sprintf("client-%02d", i), positions: i%2 == 0, last: map[string]uint64{}}
		perm := rng.Perm(len(groups))
		for _, k := range perm[:3] {
			c.groups = append(c.groups, groups[k])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := client.Connect(ctx, client.SessionConfig{URL: url, Positions: c.positions, MinBackoff: 50 * time.Millisecond,
			MaxBackoff: time.Second, OnEvent: c.onEvent(orc)})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Cleanup(s.Close)
		c.mu.Lock()
		c.s = s
		c.mu.Unlock()
		for _, g := range c.groups {
			subscribe(t, c, g)
		}
		fleet = append(fleet, c)
	}
	return fleet
}

// subscribe subscribes a client to a group, again while it reconnects.
func subscribe(t *testing.T, c *fleetClient, g string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.s.Subscribe(ctx, protocol.Request{ServiceGroupID: g})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: subscribe %s: %v", c.name, g, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// converge waits until every client has applied an event of each of its
// groups newer than what the stream held when the fault happened, and
// returns how long each needed from the fault.
func converge(t *testing.T, fleet []*fleetClient, orc *oracle.Oracle, js jetstream.JetStream, groups []string, fault time.Time) []time.Duration {
	t.Helper()
	oracleCaughtUp(t, orc, js)
	target := map[string]uint64{}
	for _, g := range groups {
		target[g] = orc.Last(g)
	}
	took := make([]time.Duration, len(fleet))
	deadline := time.Now().Add(90 * time.Second)
	for left := len(fleet); left > 0; {
		for i, c := range fleet {
			if took[i] == 0 && c.caughtUp(target) {
				took[i] = time.Since(fault)
				left--
			}
		}
		if left > 0 && time.Now().After(deadline) {
			var late []string
			for i, c := range fleet {
				if took[i] == 0 {
					late = append(late, fmt.Sprintf("%s %v (target %v)", c.name, c.lastSeqs(), target))
				}
			}
			t.Fatalf("%d clients never caught up: %s", left, strings.Join(late[:min(3, len(late))], "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return took
}

// oracleCaughtUp waits until the oracle has read what the stream holds
// now, so that targets taken from it are not stale.
func oracleCaughtUp(t *testing.T, orc *oracle.Oracle, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last uint64
	for last == 0 || orc.Read() < last {
		if time.Now().After(deadline) {
			t.Fatalf("the oracle is behind the stream (%d): it %s; the stream %s; its goroutines:\n%s",
				last, orc.State(), streamState(js), stacksOf("oracle"))
		}
		if last == 0 {
			last = streamLast(js)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamLast returns the events stream's last sequence, or 0 when the
// cluster cannot say yet.
func streamLast(js jetstream.JetStream) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

func (c *fleetClient) lastSeqs() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]uint64{}
	for _, g := range c.groups {
		out[g] = c.last[g]
	}
	return out
}

// summary is "median m, max x" of durations, and them all, sorted.
func summary(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	var all []string
	for _, x := range s {
		all = append(all, x.Round(10*time.Millisecond).String())
	}
	return fmt.Sprintf("median %s, max %s (each: %s)", s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), strings.Join(all, " "))
}

// TestTopology runs the cluster of the scaling design as processes on
// loopback (three nats-server nodes, an active and a standby adapter on
// the simulator at a high rate, two gateways, HAProxy in front, 50
// clients through it) and breaks it in turn: kill -9 a gateway; kill -9 a
// NATS node and restart it; kill -9 the active adapter; SIGSTOP the active
// adapter past its lease, then SIGCONT it; SIGTERM a gateway. After every
// step every client's view must be the stream's queue at each Seq it
// reached (checked after every event), every group's events consecutive
// and unduplicated, and every client caught up; the old adapter must never
// write after the new one did.
func TestTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nine processes for a minute or two")
	}
	st := start(t)
	var found findings
	orc := oracle.New(found.report)
	_, js := st.connect(access.Gateway)
	octx, stopOracle := context.WithCancel(context.Background())
	oracleDone := make(chan error, 1)
	go func() { oracleDone <- orc.Follow(octx, js) }()
	t.Cleanup(func() { stopOracle(); <-oracleDone })
	groups := directoryGroups(t, js)
	fleet := startFleet(t, st, orc, groups)
	converge(t, fleet, orc, js, groups, time.Now())
	found.check(t, "the start")

	steps := []struct {
		name string
		do   func(t *testing.T) (fault time.Time, after func())
	}{
		{"kill -9 a gateway", func(t *testing.T) (time.Time, func()) {
			return kill(t, st.gateways[0], syscall.SIGKILL), func() { restart(t, st.gateways[0]) }
		}},
		{"kill -9 a NATS node", func(t *testing.T) (time.Time, func()) {
			return kill(t, st.nats[1].Process, syscall.SIGKILL), func() { restart(t, st.nats[1].Process) }
		}},
		{"kill -9 the active adapter", func(t *testing.T) (time.Time, func()) {
			return failover(t, st, func(p *process.Process) { kill(t, p, syscall.SIGKILL) }, func(p *process.Process) {
				restart(t, p)
				standingBy(t, st, p)
			})
		}},
		{"SIGSTOP the active adapter past its lease, then SIGCONT", func(t *testing.T) (time.Time, func()) {
			return pauseActive(t, st, js)
		}},
		{"SIGTERM a gateway", func(t *testing.T) (time.Time, func()) {
			return kill(t, st.gateways[1], syscall.SIGTERM), func() {}
		}},
	}
	for _, step := range steps {
		fault, after := step.do(t)
		took := converge(t, fleet, orc, js, groups, fault)
		after()
		found.check(t, step.name)
		t.Logf("%s: clients caught up %s", step.name, summary(took))
	}
	finalCheck(t, fleet, orc, js, &found)
}

// kill sends sig to p and returns when.
func kill(t *testing.T, p *process.Process, sig syscall.Signal) time.Time {
	t.Helper()
	at := time.Now()
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return at
}

// restart starts p again once it has exited.
func restart(t *testing.T, p *process.Process) {
	t.Helper()
	if err := p.Stop(syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Start(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// failover breaks the active adapter with breakIt and times the standby's
// takeover (its /readyz answering 200); after mends the broken one.
func failover(t *testing.T, st *stack, breakIt, mend func(*process.Process)) (time.Time, func()) {
	t.Helper()
	active := st.activeAdapter(10 * time.Second)
	if active < 0 {
		t.Fatal("no adapter is active")
	}
	other := 1 - active
	at := time.Now()
	breakIt(st.adapters[active])
	deadline := time.Now().Add(30 * time.Second)
	for {
		if status(st.adminURL[other]+"/readyz") == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never took over from %s", st.adapters[other].Name, st.adapters[active].Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s took over %s after %s was broken (lease %s)%s", st.adapters[other].Name, time.Since(at).Round(time.Millisecond), st.adapters[active].Name, leaseTTL,
		takeoverLines(st.adapters[other].Log))
	return at, func() { mend(st.adapters[active]) }
}

// takeoverLines returns what an adapter's log says of its last takeover
// and of what delayed it.
func takeoverLines(log string) string {
	data, _ := os.ReadFile(log)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		for _, key := range []string{"took over", "fell behind", "cannot be read", "does not answer", "reloaded"} {
			if strings.Contains(l, key) {
				out = append(out, l)
			}
		}
	}
	if len(out) > 6 {
		out = out[len(out)-6:]
	}
	if len(out) == 0 {
		return ""
	}
	return "\n  " + strings.Join(out, "\n  ")
}

// pauseActive stops the active adapter past its lease; the standby takes
// over; the old one is continued and must write nothing after the new
// one's first write, and stand by.
func pauseActive(t *testing.T, st *stack, js jetstream.JetStream) (time.Time, func()) {
	t.Helper()
	old := leaseHolder(t, js)
	at, _ := failover(t, st, func(p *process.Process) { kill(t, p, syscall.SIGSTOP) }, func(*process.Process) {})
	return at, func() {
		paused := st.adapters[1-st.activeAdapter(10*time.Second)]
		time.Sleep(leaseTTL) // well past the lease: the new active writes meanwhile
		if err := paused.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		standingBy(t, st, paused)
		checkFenced(t, js, old.Instance, leaseHolder(t, js).Instance)
	}
}

func indexOf(ps []*process.Process, p *process.Process) int { return slices.Index(ps, p) }

// standingBy waits until an adapter stands by, warm: its /readyz names the
// active one.
func standingBy(t *testing.T, st *stack, p *process.Process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		code, body, _ := process.Get(rctx, st.adminURL[indexOf(st.adapters, p)]+"/readyz")
		cancel()
		if code == http.StatusServiceUnavailable && strings.Contains(body, "holds the lease") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not stand by: %d %s", p.Name, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaseHolder reads who holds the adapter lease.
func leaseHolder(t *testing.T, js jetstream.JetStream) subjects.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, subjects.BucketLease)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, subjects.LeaseKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := subjects.DecodeLease(e.Value())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkFenced reads the whole stream: no message of the old writer may
// follow the new writer's first, and the new writer must have written.
func checkFenced(t *testing.T, js jetstream.JetStream, oldWriter, newWriter string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	writers, err := streamWriters(ctx, js)
	if err != nil {
		t.Fatalf("read who wrote the stream: %v", err)
	}
	t.Logf("read who wrote the stream's %d messages in %s", len(writers), time.Since(began).Round(time.Millisecond))
	seenNew := false
	for _, w := range writers {
		switch {
		case w.writer == newWriter:
			seenNew = true
		case w.writer == oldWriter && seenNew:
			t.Fatalf("stream message %d was written by the paused adapter after the new one's first", w.seq)
		}
	}
	if !seenNew {
		t.Fatalf("the new active (%s) wrote nothing in the stream's %d messages", newWriter, len(writers))
	}
}

// written is a stream message's sequence and the adapter instance that
// wrote it (from its message ID).
type written struct {
	seq    uint64
	writer string
}

// streamWriters reads who wrote each message of the events stream, up to
// its last when called, through an ordered consumer of headers only.
// (One request a message, errors skipped, once ran out of its minute on a
// loaded machine, and the new writer's messages, the last, went unread.)
func streamWriters(ctx context.Context, js jetstream.JetStream) ([]written, error) {
	s, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return nil, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		return nil, err
	}
	it, err := c.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	var out []written
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return out, fmt.Errorf("after %d of the stream's %d messages: %w", len(out), info.State.Msgs, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return out, err
		}
		_, w, _ := strings.Cut(m.Headers().Get(jetstream.MsgIDHeader), "@")
		out = append(out, written{seq: md.Sequence.Stream, writer: strings.TrimRight(w, "+")})
		if md.Sequence.Stream >= info.State.LastSeq {
			return out, nil
		}
	}
}

// finalCheck checks every client's view once more against the stream and
// waits until the oracle has judged them all.
func finalCheck(t *testing.T, fleet []*fleetClient, orc *oracle.Oracle, js jetstream.JetStream, found *findings) {
	t.Helper()
	for _, c := range fleet {
		for _, g := range c.groups {
			c.observe(orc, g)
		}
		if st := c.s.Stats(); st.Broken != 0 {
			t.Errorf("%s: %d events did not fit its mirror", c.name, st.Broken)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for orc.Waiting() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := orc.Waiting(); n > 0 {
		t.Fatalf("%d views at Seqs the stream never reached; the oracle %s; the stream %s; its goroutines:\n%s",
			n, orc.State(), streamState(js), stacksOf("oracle"))
	}
	found.check(t, "the end")
	t.Logf("views checked against the stream: %d (unverified %d), stream events read %d", orc.Verified.Load(), orc.Unverified.Load(), orc.Events.Load())
}

// streamState says how far the events stream goes, for a failure's message.
func streamState(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		return err.Error()
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("holds %d to %d, leader %s", info.State.FirstSeq, info.State.LastSeq, info.Cluster.Leader)
}

// stacksOf returns the stacks of the goroutines running code whose name
// holds word, for a failure's message.
func stacksOf(word string) string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, word) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
