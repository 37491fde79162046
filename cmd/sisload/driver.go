package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// driverTick is how often the driver applies a batch of changes.
const driverTick = 5 * time.Millisecond

// driver plays the router: it keeps each group at about depth sessions by
// enqueuing at the tail and removing from the head, at a steady rate spread
// at random over the groups. One goroutine runs it at a time.
type driver struct {
	a      *router.Adapter
	groups []string
	// tenants lists the directory's tenants; group g belongs to
	// tenants[g % len(tenants)].
	tenants []string
	depth   int
	fifo    [][]string // each group's CallIDs, head first
	next    int        // the last CallID number used
	rnd     *rand.Rand
	// applied counts the changes of the current pass, for progress lines.
	applied atomic.Int64
}

// newDriver returns a driver whose groups start with depth sessions each.
func newDriver(a *router.Adapter, groups []string, depth int) *driver {
	d := &driver{a: a, groups: groups, tenants: []string{loadTenant}, depth: depth, fifo: make([][]string, len(groups)), rnd: rand.New(rand.NewPCG(1, 2))}
	for g := range groups {
		for range depth {
			d.fifo[g] = append(d.fifo[g], d.newCallID())
		}
	}
	return d
}

func (d *driver) newCallID() string {
	d.next++
	return fmt.Sprintf("c%d", d.next)
}

// session returns plausible details of a new session.
func (d *driver) session(callID string) queue.Session {
	return queue.Session{CallID: callID, MediaType: queue.MediaVoice, TimeEnteredQueue: time.Now().UTC().Truncate(time.Millisecond),
		CustomerInformation: fmt.Sprintf("+4420794%05d", d.next%100000), DialedNumber: "+442071234567"}
}

// state is the router's whole state as the driver starts: the directory and
// the pre-filled queues.
func (d *driver) state() router.State {
	st := router.State{Queues: map[string][]queue.Session{}}
	for i, t := range d.tenants {
		st.Tenants = append(st.Tenants, subjects.Tenant{TenantID: t, Name: fmt.Sprintf("Load test %d", i)})
	}
	for g, id := range d.groups {
		st.Groups = append(st.Groups, subjects.Group{ServiceGroupID: id, TenantID: d.tenant(g), Name: "Group " + id})
		for _, call := range d.fifo[g] {
			st.Queues[id] = append(st.Queues[id], d.session(call))
		}
	}
	return st
}

// tenant returns the tenant of group g.
func (d *driver) tenant(g int) string { return d.tenants[g%len(d.tenants)] }

// tenantNames returns n TenantIDs, the first being loadTenant.
func tenantNames(n int) []string {
	out := []string{loadTenant}
	for i := 1; i < n; i++ {
		out = append(out, fmt.Sprintf("%s-%d", loadTenant, i))
	}
	return out
}

// pass is what one run of the driver did.
type pass struct {
	// Applied is how many changes the adapter accepted.
	Applied int64
	// Elapsed is how long the pass lasted.
	Elapsed time.Duration
	// Final holds each group's sequence number after the pass.
	Final map[string]uint64
}

// Rate is the changes per second achieved.
func (p pass) Rate() float64 { return float64(p.Applied) / max(p.Elapsed.Seconds(), 1e-9) }

// run applies rate changes per second for dur, in a batch every driverTick.
// A batch never exceeds 50 ms worth of changes and a backlog is forgotten:
// when the adapter cannot keep up, the achieved rate falls short instead of
// the driver bursting to catch up.
func (d *driver) run(ctx context.Context, rate float64, dur time.Duration) (pass, error) {
	d.applied.Store(0)
	t := time.NewTicker(driverTick)
	defer t.Stop()
	start := time.Now()
	var applied, skipped int64
	maxBatch := max(int64(rate/20), 1)
	for {
		elapsed := time.Since(start)
		if elapsed >= dur {
			break
		}
		due := int64(rate*elapsed.Seconds()) - skipped - applied
		if due > maxBatch { // behind: forget the backlog rather than burst
			skipped += due - maxBatch
			due = maxBatch
		}
		for range due {
			if err := d.change(ctx); err != nil {
				return pass{}, err
			}
			applied++
			d.applied.Store(applied)
		}
		select {
		case <-ctx.Done():
			return pass{}, ctx.Err()
		case <-t.C:
		}
	}
	p := pass{Applied: applied, Elapsed: time.Since(start), Final: map[string]uint64{}}
	for _, id := range d.groups {
		seq, _, _ := d.a.Group(id)
		p.Final[id] = seq
	}
	return p, nil
}

// change applies one change to a random group: an enqueue when the group is
// below its depth, a removal of its head when above, either at random when
// at it.
func (d *driver) change(ctx context.Context) error {
	g := d.rnd.IntN(len(d.groups))
	n := len(d.fifo[g])
	enqueue := n < d.depth || (n == d.depth && d.rnd.IntN(2) == 0)
	var c queue.Change
	if enqueue {
		id := d.newCallID()
		c = queue.Change{Op: queue.OpEnqueue, CallID: id, Session: d.session(id)}
		d.fifo[g] = append(d.fifo[g], id)
	} else {
		c = queue.Change{Op: queue.OpRemove, CallID: d.fifo[g][0], Cause: queue.CauseSessionAllocatedToAgent}
		d.fifo[g] = d.fifo[g][1:]
	}
	if err := d.a.Apply(ctx, d.groups[g], c); err != nil {
		return fmt.Errorf("apply %s %s to %s: %w", c.Op, c.CallID, d.groups[g], err)
	}
	return nil
}

// enqueue adds one session at the tail of group g.
func (d *driver) enqueue(ctx context.Context, g int) error {
	id := d.newCallID()
	d.fifo[g] = append(d.fifo[g], id)
	if err := d.a.Apply(ctx, d.groups[g], queue.Change{Op: queue.OpEnqueue, CallID: id, Session: d.session(id)}); err != nil {
		return fmt.Errorf("apply enqueue %s to %s: %w", id, d.groups[g], err)
	}
	return nil
}
