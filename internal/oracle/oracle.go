// Package oracle checks clients' views of service groups against the
// events stream: it follows every group's events, as a downstream service
// would, and keeps the fingerprint of each group's queue at each of its
// recent Seqs. A client's view of a group at a Seq (what it holds after an
// event, or after InitialDataComplete) must have the fingerprint the
// stream's history has there. It also checks the stream itself: each
// group's events numbered 1, 2, 3... with no gap and no duplicate, each
// applying to the queue before it. The soak (cmd/sisload) and the cluster
// topology test use it.
package oracle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Ring is how many recent Seqs of each group the oracle remembers; a view
// older than that when it reaches the oracle is not checked (counted as
// unverified).
const Ring = 1 << 14

// pendingMax bounds the views of one group that wait for the oracle to
// reach their Seq; past it a new one is not kept (counted as unverified).
const pendingMax = 1 << 16

// printSeed keys the fingerprints of one process.
var printSeed = maphash.MakeSeed()

// SessionPrint fingerprints one session of a view: its CallID and the
// position the client knows (0 for a client without position updates). A
// view's fingerprint is the sum of its sessions', so that each update
// changes it in O(1).
func SessionPrint(id string, pos int) uint64 {
	var h maphash.Hash
	h.SetSeed(printSeed)
	_, _ = h.WriteString(id)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(pos))
	_, _ = h.Write(b[:])
	return h.Sum64()
}

// Observation is a client's view of a group at a Seq.
type Observation struct {
	Group     string
	Seq       uint64
	Positions bool   // the client gets position updates: its positions count
	Print     uint64 // the sum of SessionPrint over the view's sessions
	Who       string // names the client in a finding
}

// Report receives a finding: the kind of promise broken ("stream": the
// stream's history; "view": a client's view) and what was seen.
type Report func(kind, msg string)

// printAt is a group's fingerprint at a Seq, with and without positions.
type printAt struct {
	seq          uint64
	withPos, set uint64
}

// group is what the oracle holds of one group.
type group struct {
	q    *queue.Queue
	last uint64
	ring []printAt
	// pending holds the views waiting for the stream to reach their Seq,
	// by Seq: an event judges those of its own Seq, so that an oracle far
	// behind its clients spends no more per event than when it keeps up.
	pending  map[uint64][]Observation
	nPending int
}

// Oracle checks clients' views against the stream. Its methods are safe
// for concurrent use.
type Oracle struct {
	report Report
	// Verified counts views found equal to the stream; Unverified views
	// too old to check; Events the events read from the stream.
	Verified, Unverified, Events atomic.Int64

	// what Follow did: the stream sequence read last, the consumers
	// opened, and the last reason one ended.
	read, opened atomic.Uint64
	ended        atomic.Value // string

	// inbox holds views handed to Check, judged by whoever holds mu next:
	// a client's Check never waits while the stream's messages are
	// applied.
	inMu  sync.Mutex
	inbox []Observation

	mu     sync.Mutex
	groups map[string]*group
}

// New returns an oracle that reports findings to report.
func New(report Report) *Oracle {
	return &Oracle{report: report, groups: map[string]*group{}}
}

func (o *Oracle) group(id string) *group {
	g := o.groups[id]
	if g == nil {
		g = &group{q: queue.New(id), ring: make([]printAt, Ring), pending: map[uint64][]Observation{}}
		o.groups[id] = g
	}
	return g
}

// Follow reads every event of the stream from its start until ctx ends
// (then it returns nil). It reads through a consumer of its own that it
// replaces, from the message after the last it read, whenever a read
// fails, skips a message or stops short of the stream's end: every call
// to the cluster has a deadline, so a node killed under it costs a few
// seconds, never the rest of the run.
func (o *Oracle) Follow(ctx context.Context, js jetstream.JetStream) error {
	stream, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		return fmt.Errorf("oracle: %w", err)
	}
	var next uint64 = 1
	for ctx.Err() == nil {
		n, err := o.follow(ctx, js, stream, next)
		if ctx.Err() != nil {
			return nil
		}
		o.ended.Store(fmt.Sprintf("%s: from %d to %d: %v", time.Now().Format("15:04:05.000"), next, n, err))
		if n == next {
			pause(ctx, 200*time.Millisecond) // nothing read: the cluster may be electing
		}
		next = n
	}
	return nil
}

// follow reads from stream sequence from until a read fails, skips or
// stalls; it returns the sequence to go on from and why it stopped.
func (o *Oracle) follow(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, from uint64) (uint64, error) {
	cons, err := openConsumer(ctx, js, from)
	if err != nil {
		return from, err
	}
	o.opened.Add(1)
	defer dropConsumer(js, cons)
	next, delivered := from, uint64(0)
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(fetchBatch, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			return next, fmt.Errorf("fetch: %w", err)
		}
		got, err := o.readBatch(batch, &delivered, &next)
		cancel()
		if err != nil {
			return next, err
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return next, fmt.Errorf("fetch: %w", err)
		}
		if got == 0 && behind(ctx, stream, next) {
			return next, errors.New("consumer stalled short of the stream's end")
		}
	}
	return next, nil
}

// storedMsg is a message read from the stream, waiting to be applied.
type storedMsg struct {
	seq     uint64
	subject string
	data    []byte
}

// readBatch applies one fetch's messages and counts them: delivered is
// the consumer's sequence of the last, next the stream sequence after
// it. Messages are applied in runs under one hold of the lock (a run ends
// when no message waits): the clients' views contend for the same lock,
// and an oracle that queued behind them for every message would fall
// behind a busy stream.
func (o *Oracle) readBatch(batch jetstream.MessageBatch, delivered, next *uint64) (int, error) {
	msgs, got := batch.Messages(), 0
	run := make([]storedMsg, 0, fetchBatch)
	defer func() { o.applyRun(run) }()
	for m := range msgs {
		md, err := m.Metadata()
		if err != nil || md.Sequence.Consumer != *delivered+1 {
			return got, fmt.Errorf("consumer skipped from %d (%v)", *delivered, err)
		}
		*delivered, *next, got = md.Sequence.Consumer, md.Sequence.Stream+1, got+1
		run = append(run, storedMsg{seq: md.Sequence.Stream, subject: m.Subject(), data: m.Data()})
		if len(msgs) == 0 {
			o.applyRun(run)
			run = run[:0]
		}
	}
	return got, nil
}

// applyRun applies messages read from the stream under one hold of the
// lock, then notes how far the oracle has read.
func (o *Oracle) applyRun(run []storedMsg) {
	if len(run) == 0 {
		return
	}
	o.locked(func() {
		for _, m := range run {
			o.message(m.subject, m.data)
		}
		o.read.Store(run[len(run)-1].seq)
	})
}

const (
	fetchBatch = 512             // messages asked for per fetch
	fetchWait  = 2 * time.Second // how long one fetch waits for them
)

// openConsumer creates an ephemeral consumer of every group's events
// from stream sequence from.
func openConsumer(ctx context.Context, js jetstream.JetStream, from uint64) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return js.CreateConsumer(cctx, subjects.StreamEvents, jetstream.ConsumerConfig{
		FilterSubjects: []string{subjects.AllEvents},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 30 * time.Second,
		MemoryStorage: true, Replicas: 1,
	})
}

// dropConsumer deletes a replaced consumer; one it cannot reach expires
// by itself once idle.
func dropConsumer(js jetstream.JetStream, cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, subjects.StreamEvents, cons.CachedInfo().Name)
}

// behind reports whether the stream holds messages from next on, or
// cannot say (then the consumer is replaced to be safe).
func behind(ctx context.Context, stream jetstream.Stream, next uint64) bool {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := stream.Info(ictx)
	return err != nil || info.State.LastSeq >= next
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Message applies one stored message of a group's subject.
func (o *Oracle) Message(subject string, data []byte) {
	o.locked(func() { o.message(subject, data) })
}

// message is Message with o.mu held.
func (o *Oracle) message(subject string, data []byte) {
	_, id, ok := subjects.ParseEvents(subject)
	events, err := subjects.DecodeEvents(data)
	if !ok || err != nil {
		o.report("stream", fmt.Sprintf("undecodable message on %s: %v", subject, err))
		return
	}
	g := o.group(id)
	for i := range events {
		from := g.last + 1
		o.apply(id, g, &events[i])
		o.resolve(g, from, events[i].Seq)
	}
}

// apply applies one event to a group: its Seq must follow the last.
func (o *Oracle) apply(id string, g *group, e *subjects.Event) {
	if e.Seq != g.last+1 {
		o.report("stream", fmt.Sprintf("%s: event %d follows %d in the stream", id, e.Seq, g.last))
	}
	if _, err := g.q.Apply(e.Change); err != nil {
		o.report("stream", fmt.Sprintf("%s: event %d does not apply: %v", id, e.Seq, err))
	}
	g.last = e.Seq
	p := printAt{seq: e.Seq}
	g.q.Range(1, g.q.Len(), func(s queue.Session) bool {
		p.withPos += SessionPrint(s.CallID, s.QueuePosition)
		p.set += SessionPrint(s.CallID, 0)
		return true
	})
	g.ring[e.Seq%Ring] = p
	o.Events.Add(1)
}

// resolve checks the views that waited for Seqs from to seq, which the
// group's last event reached (more than one only across a gap, which
// apply reported: then every waiting view is looked at).
func (o *Oracle) resolve(g *group, from, seq uint64) {
	if from == seq {
		o.judgeWaiting(g, seq)
		return
	}
	for at := range g.pending {
		if at >= from && at <= seq {
			o.judgeWaiting(g, at)
		}
	}
}

// judgeWaiting judges the views that waited for Seq at.
func (o *Oracle) judgeWaiting(g *group, at uint64) {
	obs, ok := g.pending[at]
	if !ok {
		return
	}
	delete(g.pending, at)
	g.nPending -= len(obs)
	for _, ob := range obs {
		o.judge(g, ob)
	}
}

// Check checks a client's view now, or once the stream reaches its Seq.
// It never waits for the stream's messages to be applied: a view handed
// over while they are is judged by the goroutine applying them.
func (o *Oracle) Check(ob Observation) {
	o.inMu.Lock()
	o.inbox = append(o.inbox, ob)
	o.inMu.Unlock()
	o.settle()
}

// locked runs fn with mu held, after judging the views handed to Check,
// and judges those handed over meanwhile once mu is let go.
func (o *Oracle) locked(fn func()) {
	o.mu.Lock()
	o.judgeInbox()
	fn()
	o.mu.Unlock()
	o.settle()
}

// settle judges the views handed to Check unless another goroutine holds
// mu: that one does when it lets go (every holder settles after).
func (o *Oracle) settle() {
	for o.inboxLen() > 0 && o.mu.TryLock() {
		o.judgeInbox()
		o.mu.Unlock()
	}
}

func (o *Oracle) inboxLen() int {
	o.inMu.Lock()
	defer o.inMu.Unlock()
	return len(o.inbox)
}

// judgeInbox judges, with mu held, the views handed to Check.
func (o *Oracle) judgeInbox() {
	o.inMu.Lock()
	obs := o.inbox
	o.inbox = nil
	o.inMu.Unlock()
	for _, ob := range obs {
		o.check(ob)
	}
}

// check judges a view now, or keeps it until the stream reaches its Seq.
func (o *Oracle) check(ob Observation) {
	g := o.group(ob.Group)
	if ob.Seq <= g.last {
		o.judge(g, ob)
		return
	}
	if g.nPending >= pendingMax {
		o.Unverified.Add(1)
		return
	}
	g.pending[ob.Seq] = append(g.pending[ob.Seq], ob)
	g.nPending++
}

// judge compares a view with the group's fingerprint at its Seq.
func (o *Oracle) judge(g *group, ob Observation) {
	var want uint64
	if ob.Seq > 0 {
		p := g.ring[ob.Seq%Ring]
		if p.seq != ob.Seq {
			o.Unverified.Add(1)
			return
		}
		want = p.set
		if ob.Positions {
			want = p.withPos
		}
	}
	if want != ob.Print {
		o.report("view", fmt.Sprintf("%s: %s at Seq %d (positions %v) is not the stream's queue at that Seq", ob.Who, ob.Group, ob.Seq, ob.Positions))
		return
	}
	o.Verified.Add(1)
}

// Waiting returns how many views wait for the stream to reach their Seq.
func (o *Oracle) Waiting() int {
	n := 0
	o.locked(func() {
		for _, g := range o.groups {
			n += g.nPending
		}
	})
	return n
}

// State says how far Follow has read the stream, how many consumers it
// opened, and why the last one ended: for a test that finds it behind.
func (o *Oracle) State() string {
	ended, _ := o.ended.Load().(string)
	return fmt.Sprintf("read to stream sequence %d, %d consumers opened, the last ended %q", o.read.Load(), o.opened.Load(), ended)
}

// Read returns the stream sequence of the last message Follow read.
func (o *Oracle) Read() uint64 { return o.read.Load() }

// Last returns the last Seq of a group the oracle has read.
func (o *Oracle) Last(group string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if g := o.groups[group]; g != nil {
		return g.last
	}
	return 0
}
