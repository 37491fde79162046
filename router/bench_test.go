package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// BenchmarkAdapterThroughput measures changes per second accepted by the
// adapter and acknowledged by JetStream on file storage: an embedded server
// on loopback TCP, 100 groups (or all in one group: a group has one message
// in flight at a time), a steady mix of enqueues and removals with full
// session details. The clock stops once the last change is stored.
func BenchmarkAdapterThroughput(b *testing.B) {
	for _, groups := range []int{100, 1} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) { benchThroughput(b, groups) })
	}
}

func benchThroughput(b *testing.B, groups int) {
	s := natstest.Server(b)
	_, js := natstest.Connect(b, s)
	ctx := context.Background()
	a, err := Open(ctx, js, natstest.Logger(b).Level(3), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(ctx)
	groupIDs := benchDirectory(b, a, groups)
	changes := benchChanges(groupIDs, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, c := range changes {
		if err := a.Apply(ctx, c.group, c.change); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "changes/s")
}

type benchChange struct {
	group  string
	change queue.Change
}

func benchDirectory(b *testing.B, a *Adapter, n int) []string {
	st := &State{Tenants: []subjects.Tenant{{TenantID: "bench", Name: "Bench"}}}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("group-%d", i)
		ids = append(ids, id)
		st.Groups = append(st.Groups, subjects.Group{ServiceGroupID: id, TenantID: "bench", Name: id})
	}
	if err := a.LinkUp(context.Background(), st); err != nil {
		b.Fatal(err)
	}
	return ids
}

// benchChanges keeps about 20 sessions per group: enqueue, then remove the
// oldest once the queue is full.
func benchChanges(groups []string, n int) []benchChange {
	out := make([]benchChange, 0, n)
	queued := make(map[string][]string)
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for i := 0; len(out) < n; i++ {
		g := groups[i%len(groups)]
		if q := queued[g]; len(q) >= 20 {
			out = append(out, benchChange{g, queue.Change{Op: queue.OpRemove, CallID: q[0], Cause: queue.CauseSessionAllocatedToAgent}})
			queued[g] = q[1:]
			continue
		}
		id := fmt.Sprintf("c%d", i)
		queued[g] = append(queued[g], id)
		out = append(out, benchChange{g, queue.Change{Op: queue.OpEnqueue, CallID: id, Session: queue.Session{
			MediaType: queue.MediaVoice, TimeEnteredQueue: t0.Add(time.Duration(i) * time.Millisecond),
			CustomerInformation: "+442079460123", DialedNumber: "+442079460000",
			IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "English"}}}}})
	}
	return out
}
