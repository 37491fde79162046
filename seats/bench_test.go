package seats

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/natstest"
)

// BenchmarkAcquireRelease: one Acquire and one Release of a seat, against an
// in-process server over loopback TCP, file storage. Acquire on a released
// slot is three round trips (kv.Create re-creating a purged key), Release
// one.
func BenchmarkAcquireRelease(b *testing.B) {
	s := natstest.Server(b)
	seatBucket(b, s, DefaultLeaseTTL)
	g := startGateway(b, s, Config{Seats: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		st, err := g.pool.Acquire(ctx, strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// BenchmarkAcquireReleaseParallel: the same from many goroutines at once.
func BenchmarkAcquireReleaseParallel(b *testing.B) {
	s := natstest.Server(b)
	seatBucket(b, s, DefaultLeaseTTL)
	g := startGateway(b, s, Config{Seats: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st, err := g.pool.Acquire(ctx, strconv.FormatInt(n.Add(1), 10))
			if err != nil {
				b.Error(err)
				return
			}
			if err := st.Release(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
