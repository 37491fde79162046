package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/subjects"
)

// acceptTimes learns when the adapter accepted each change, from a core
// NATS subscription on every group's events: the gateway's messages do not
// carry that time. A delivery seen before its time is known is kept aside
// and timed when the fleet finishes. The groups are known from the start,
// so finding a group takes no lock; each has its own.
type acceptTimes struct {
	nc     *nats.Conn
	sub    *nats.Subscription
	groups map[string]*groupTimes // fixed at creation

	mu   sync.Mutex // guards late and bad
	late lateList
	bad  int64 // messages that could not be decoded
}

// groupTimes holds one group's acceptance times: ns[seq-1] in Unix ns, 0
// while unknown.
type groupTimes struct {
	mu sync.RWMutex
	ns []int64
}

// lateDelivery is a delivery whose change's time was not known yet.
type lateDelivery struct {
	group *groupTimes
	seq   uint64
	at    int64 // Unix ns
}

// lateBlock is how many late deliveries one block of a lateList holds.
const lateBlock = 4096

// lateList holds late deliveries in blocks of lateBlock: under a load
// that keeps the times' subscriber behind, millions are kept, and a
// single slice would copy them all again at every growth (an eighth of
// the client process's CPU at 600,000 deliveries a second).
type lateList struct {
	blocks [][]lateDelivery
}

func (l *lateList) add(d lateDelivery) {
	n := len(l.blocks)
	if n == 0 || len(l.blocks[n-1]) == lateBlock {
		l.blocks = append(l.blocks, make([]lateDelivery, 0, lateBlock))
		n++
	}
	l.blocks[n-1] = append(l.blocks[n-1], d)
}

// watchAcceptTimes subscribes to subjects.AllEvents on the NATS server at
// url, keeping the times of the given groups.
func watchAcceptTimes(url string, groups []string) (*acceptTimes, error) {
	t := &acceptTimes{groups: map[string]*groupTimes{}}
	for _, g := range groups {
		t.groups[g] = &groupTimes{}
	}
	nc, err := nats.Connect(url, nats.Name("sisload-times"))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS for acceptance times: %w", err)
	}
	t.nc = nc
	if t.sub, err = nc.Subscribe(subjects.AllEvents, t.onEvent); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", subjects.AllEvents, err)
	}
	if err := t.sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, fmt.Errorf("pending limits: %w", err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", subjects.AllEvents, err)
	}
	return t, nil
}

// onEvent notes the time of each change a message carries (one, or several
// consecutive changes of a group when the adapter had a backlog).
func (t *acceptTimes) onEvent(m *nats.Msg) {
	events, err := subjects.DecodeEvents(m.Data)
	if err != nil {
		t.mu.Lock()
		t.bad++
		t.mu.Unlock()
		return
	}
	for _, e := range events {
		if g := t.groups[e.Group]; g != nil && e.Seq > 0 {
			g.set(e.Seq, e.Time.UnixNano())
		}
	}
}

func (g *groupTimes) set(seq uint64, ns int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := int(seq); n > len(g.ns) {
		g.ns = append(g.ns, make([]int64, n-len(g.ns))...)
	}
	g.ns[seq-1] = ns
}

// get returns change seq's time, 0 if unknown; g.mu is read-locked.
func (g *groupTimes) get(seq uint64) int64 {
	if seq == 0 || seq > uint64(len(g.ns)) {
		return 0
	}
	return g.ns[seq-1]
}

// group returns a group's times (nil for a group not watched).
func (t *acceptTimes) group(name string) *groupTimes { return t.groups[name] }

// record times the deliveries of changes from … to of group g, received at
// now, into h; a change whose time is not known yet is kept for resolve.
func (t *acceptTimes) record(h *histogram, g *groupTimes, from, to uint64, now time.Time) {
	if g == nil {
		return
	}
	at := now.UnixNano()
	late := from // the first change whose time is not known
	g.mu.RLock()
	for ; late <= to; late++ {
		ns := g.get(late)
		if ns == 0 {
			break
		}
		h.Record(time.Duration(at - ns))
	}
	g.mu.RUnlock()
	if late > to {
		return
	}
	t.mu.Lock()
	for seq := late; seq <= to; seq++ {
		t.late.add(lateDelivery{group: g, seq: seq, at: at})
	}
	t.mu.Unlock()
}

// resolve times the deliveries kept aside; it returns how many stay
// untimed, and how many bus messages could not be decoded.
func (t *acceptTimes) resolve(h *histogram) (untimed, undecoded int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, block := range t.late.blocks {
		for _, l := range block {
			l.group.mu.RLock()
			ns := l.group.get(l.seq)
			l.group.mu.RUnlock()
			if ns != 0 {
				h.Record(time.Duration(l.at - ns))
			} else {
				untimed++
			}
		}
	}
	t.late = lateList{}
	return untimed, t.bad
}

// close ends the subscription.
func (t *acceptTimes) close() { t.nc.Close() }
