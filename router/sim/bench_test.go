package sim_test

import (
	"context"
	"testing"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/sim"
	"github.com/sisbridge/sisbridge/subjects"
)

// counter is a Handler that only counts changes.
type counter struct{ n int }

func (c *counter) LinkUp(context.Context, *router.State) error         { return nil }
func (c *counter) LinkDown(context.Context, string)                    {}
func (c *counter) PutTenant(context.Context, subjects.Tenant) error    { return nil }
func (c *counter) PutGroup(context.Context, subjects.Group) error      { return nil }
func (c *counter) RemoveGroup(context.Context, string) error           { return nil }
func (c *counter) Sync(context.Context, string, []queue.Session) error { return nil }
func (c *counter) Apply(context.Context, string, queue.Change) error   { c.n++; return nil }

// BenchmarkSim measures the simulator alone at maximum speed: b.N changes,
// reported as changes per second.
func BenchmarkSim(b *testing.B) {
	s := newSim(b, sim.Config{Seed: 1, MaxChanges: b.N})
	h := &counter{}
	b.ReportAllocs()
	b.ResetTimer()
	if err := s.Run(context.Background(), h); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(h.n)/b.Elapsed().Seconds(), "changes/s")
}
