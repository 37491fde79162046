package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// The soak's oracle: it follows every group's events in the stream, as a
// downstream service would, and keeps the fingerprint of each group's
// queue at each of its recent Seqs. A client's view of a group at a Seq
// (what it holds after an event, or after InitialDataComplete) must have
// the fingerprint the stream's history has there.

// oracleRing is how many recent Seqs of each group the oracle remembers; a
// view older than that when it reaches the oracle is not checked (counted
// as unverified).
const oracleRing = 1 << 14

// oraclePendingMax bounds the views of one group that wait for the oracle
// to reach their Seq; past it the oldest are dropped as unverified.
const oraclePendingMax = 1 << 16

// printSeed keys the fingerprints of one run.
var printSeed = maphash.MakeSeed()

// sessionPrint fingerprints one session of a view: its CallID and the
// position the client knows (0 for a client without position updates). A
// view's fingerprint is the sum of its sessions', so that each update
// changes it in O(1).
func sessionPrint(id string, pos int) uint64 {
	var h maphash.Hash
	h.SetSeed(printSeed)
	_, _ = h.WriteString(id)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(pos))
	_, _ = h.Write(b[:])
	return h.Sum64()
}

// observation is a client's view of a group at a Seq.
type observation struct {
	group     string
	seq       uint64
	positions bool
	print     uint64
	who       string
}

// printAt is a group's fingerprint at a Seq, with and without positions.
type printAt struct {
	seq          uint64
	withPos, set uint64
}

// oracleGroup is what the oracle holds of one group.
type oracleGroup struct {
	q       *queue.Queue
	last    uint64
	ring    []printAt
	pending []observation
}

// oracle checks clients' views against the stream.
type oracle struct {
	t      *soakTally
	mu     sync.Mutex
	groups map[string]*oracleGroup
}

// newOracle returns an oracle that reports to t.
func newOracle(t *soakTally) *oracle {
	return &oracle{t: t, groups: map[string]*oracleGroup{}}
}

// group returns the oracle's state of a group, made on first use.
func (o *oracle) group(id string) *oracleGroup {
	g := o.groups[id]
	if g == nil {
		g = &oracleGroup{q: queue.New(id), ring: make([]printAt, oracleRing)}
		o.groups[id] = g
	}
	return g
}

// follow reads every event of the stream from its start until ctx ends.
func (o *oracle) follow(ctx context.Context, js jetstream.JetStream) error {
	cons, err := js.OrderedConsumer(ctx, subjects.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.AllEvents}})
	if err != nil {
		return fmt.Errorf("oracle: follow the events stream: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("oracle: follow the events stream: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("oracle: read the events stream: %w", err)
		}
		o.message(m.Subject(), m.Data())
	}
}

// message applies one stored message of a group's subject.
func (o *oracle) message(subject string, data []byte) {
	_, group, ok := subjects.ParseEvents(subject)
	events, err := subjects.DecodeEvents(data)
	if !ok || err != nil {
		o.t.violation("stream", "undecodable message on %s: %v", subject, err)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.group(group)
	for i := range events {
		o.apply(group, g, &events[i])
	}
	o.resolve(g)
}

// apply applies one event to a group: its Seq must follow the last.
func (o *oracle) apply(id string, g *oracleGroup, e *subjects.Event) {
	if e.Seq != g.last+1 {
		o.t.violation("stream", "%s: event %d follows %d in the stream", id, e.Seq, g.last)
	}
	if _, err := g.q.Apply(e.Change); err != nil {
		o.t.violation("stream", "%s: event %d does not apply: %v", id, e.Seq, err)
	}
	g.last = e.Seq
	p := printAt{seq: e.Seq}
	g.q.Range(1, g.q.Len(), func(s queue.Session) bool {
		p.withPos += sessionPrint(s.CallID, s.QueuePosition)
		p.set += sessionPrint(s.CallID, 0)
		return true
	})
	g.ring[e.Seq%oracleRing] = p
	o.t.streamEvents.Add(1)
}

// resolve checks the views waiting for Seqs the group has now reached.
func (o *oracle) resolve(g *oracleGroup) {
	keep := g.pending[:0]
	for _, ob := range g.pending {
		if ob.seq > g.last {
			keep = append(keep, ob)
			continue
		}
		o.judge(g, ob)
	}
	clear(g.pending[len(keep):])
	g.pending = keep
}

// check checks a client's view now, or once the stream reaches its Seq.
func (o *oracle) check(ob observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.group(ob.group)
	if ob.seq <= g.last {
		o.judge(g, ob)
		return
	}
	if len(g.pending) >= oraclePendingMax {
		g.pending = g.pending[1:]
		o.t.unverified.Add(1)
	}
	g.pending = append(g.pending, ob)
}

// judge compares a view with the group's fingerprint at its Seq.
func (o *oracle) judge(g *oracleGroup, ob observation) {
	var want uint64
	if ob.seq > 0 {
		p := g.ring[ob.seq%oracleRing]
		if p.seq != ob.seq {
			o.t.unverified.Add(1)
			return
		}
		want = p.set
		if ob.positions {
			want = p.withPos
		}
	}
	if want != ob.print {
		o.t.violation("view", "%s: %s at Seq %d (positions %v) is not the stream's queue at that Seq", ob.who, ob.group, ob.seq, ob.positions)
		return
	}
	o.t.verified.Add(1)
}

// waiting returns how many views wait for the oracle to catch up.
func (o *oracle) waiting() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, g := range o.groups {
		n += len(g.pending)
	}
	return n
}
