package seats

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
)

// testTTL is the lease TTL of the tests that watch leases run out.
const testTTL = 2 * time.Second

// ctxT returns a context that ends with the test or after d.
func ctxT(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// seatBucket creates the seat bucket on s with BucketConfig and lease TTL
// ttl, and returns it through a connection of its own.
func seatBucket(t testing.TB, s *server.Server, ttl time.Duration) jetstream.KeyValue {
	t.Helper()
	cfg := BucketConfig(1, false)
	cfg.TTL = ttl
	_, js := natstest.Connect(t, s)
	kv, err := js.CreateKeyValue(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// gateway is one stateless gateway: its own NATS connection and pool.
type gateway struct {
	nc   *nats.Conn
	kv   jetstream.KeyValue
	pool *Pool
	lost chan string
}

// startGateway opens a connection to s, binds the seat bucket and starts a
// pool with cfg (OnLost set to feed g.lost). Closed at cleanup.
func startGateway(t testing.TB, s *server.Server, cfg Config) *gateway {
	t.Helper()
	nc, js := natstest.Connect(t, s)
	kv, err := js.KeyValue(ctxT(t, 10*time.Second), subjects.BucketSeats)
	if err != nil {
		t.Fatal(err)
	}
	return startPool(t, nc, kv, cfg)
}

func startPool(t testing.TB, nc *nats.Conn, kv jetstream.KeyValue, cfg Config) *gateway {
	t.Helper()
	g := &gateway{nc: nc, kv: kv, lost: make(chan string, 1024)}
	if cfg.OnLost == nil {
		cfg.OnLost = func(id string) { g.lost <- id }
	}
	p, err := New(kv, natstest.Logger(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.pool = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil && !nc.IsClosed() {
			t.Errorf("close: %v", err)
		}
	})
	return g
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// acquire takes a seat or fails the test.
func acquire(t testing.TB, p *Pool, session string) *Seat {
	t.Helper()
	s, err := p.Acquire(ctxT(t, 10*time.Second), session)
	if err != nil {
		t.Fatalf("acquire %s: %v", session, err)
	}
	return s
}

// wantNoSeat checks that Acquire answers ErrNoSeat.
func wantNoSeat(t testing.TB, p *Pool, session string) {
	t.Helper()
	s, err := p.Acquire(ctxT(t, 10*time.Second), session)
	if !errors.Is(err, ErrNoSeat) {
		t.Fatalf("acquire %s: got seat %v, error %v; want ErrNoSeat", session, s != nil, err)
	}
}

// countingKV counts Create calls.
type countingKV struct {
	jetstream.KeyValue
	creates atomic.Int64
}

func (c *countingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	c.creates.Add(1)
	return c.KeyValue.Create(ctx, key, value, opts...)
}

// revision returns the revision of the seat's last write.
func (s *Seat) revision() uint64 {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.rev
}
