package queue

import (
	"fmt"
	"testing"
)

// BenchmarkDeepQueue measures one dequeue from the head plus one enqueue at
// the tail on a queue holding depth sessions: the steady state of a busy
// group.
func BenchmarkDeepQueue(b *testing.B) {
	for _, depth := range []int{100, 10_000, 100_000} {
		b.Run(fmt.Sprint(depth), func(b *testing.B) {
			q := New("g")
			ids := make([]string, depth+b.N)
			for i := range ids {
				ids[i] = fmt.Sprintf("c%d", i)
			}
			for i := 0; i < depth; i++ {
				q.Apply(Change{Op: OpEnqueue, CallID: ids[i]})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := q.Apply(Change{Op: OpRemove, CallID: ids[i]}); err != nil {
					b.Fatal(err)
				}
				if _, err := q.Apply(Change{Op: OpEnqueue, CallID: ids[depth+i]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMoveMiddle moves a session from the middle of a 10,000-deep queue
// to the front and back.
func BenchmarkMoveMiddle(b *testing.B) {
	q := New("g")
	for i := 0; i < 10_000; i++ {
		q.Apply(Change{Op: OpEnqueue, CallID: fmt.Sprintf("c%d", i)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Apply(Change{Op: OpMove, CallID: "c5000", Position: 1 + (i%2)*5000})
	}
}
