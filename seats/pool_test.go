package seats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"defaults", Config{Seats: 10}, nil},
		{"zero seats", Config{}, nil},
		{"short lease", Config{Seats: 1, LeaseTTL: time.Second, RenewEvery: 500 * time.Millisecond}, nil},
		{"negative seats", Config{Seats: -1}, []string{"seats -1"}},
		{"too many seats", Config{Seats: MaxSeats + 1}, []string{"seats"}},
		{"lease too short", Config{Seats: 1, LeaseTTL: 500 * time.Millisecond}, []string{"lease TTL 500ms"}},
		{"renew too slow", Config{Seats: 1, LeaseTTL: 10 * time.Second, RenewEvery: 6 * time.Second}, []string{"renew every 6s"}},
		{"every problem", Config{Seats: -5, Holder: strings.Repeat("h", 200), LeaseTTL: -time.Second, RenewEvery: -time.Second},
			[]string{"seats -5", "holder", "lease TTL", "renew every"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v; want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Seats: 1}.WithDefaults()
	if c.LeaseTTL != 30*time.Second || c.RenewEvery != 10*time.Second || !strings.HasPrefix(c.Holder, "gw-") {
		t.Fatalf("defaults: %+v", c)
	}
	if d := (Config{}).WithDefaults(); d.Holder == c.Holder {
		t.Fatalf("two default holders are both %q", c.Holder)
	}
	if b := BucketConfig(3, true); b.Bucket != subjects.BucketSeats || b.TTL != DefaultLeaseTTL || b.LimitMarkerTTL <= 0 || b.History != 1 || b.Replicas != 3 || b.Storage != jetstream.MemoryStorage {
		t.Fatalf("bucket config: %+v", b)
	}
	if _, err := New(nil, zerolog.Nop(), Config{Seats: 1}); err == nil {
		t.Fatal("New with no bucket: no error")
	}
	if _, err := New(nil, zerolog.Nop(), Config{Seats: -1}); err == nil {
		t.Fatal("New with -1 seats: no error")
	}
}

// Exactly Seats acquisitions succeed; the next gets ErrNoSeat; a release
// frees a seat that another gateway then takes.
func TestAcquireUpToSeats(t *testing.T) {
	for _, seats := range []int{0, 1, 5, 64} {
		t.Run(fmt.Sprintf("seats=%d", seats), func(t *testing.T) {
			s := natstest.Server(t)
			seatBucket(t, s, DefaultLeaseTTL)
			a := startGateway(t, s, Config{Seats: seats})
			b := startGateway(t, s, Config{Seats: seats})

			held := make([]*Seat, 0, seats)
			slots := map[int]bool{}
			for i := range seats {
				st := acquire(t, a.pool, fmt.Sprintf("a%d", i))
				if slots[st.Slot()] {
					t.Fatalf("slot %d granted twice", st.Slot())
				}
				slots[st.Slot()] = true
				held = append(held, st)
			}
			wantNoSeat(t, a.pool, "a-extra")
			if got := a.pool.Held(); got != seats {
				t.Fatalf("a holds %d, want %d", got, seats)
			}
			waitFor(t, 15*time.Second, "b sees every seat taken", func() bool { return b.pool.InUse() == seats })
			wantNoSeat(t, b.pool, "b-full")
			if seats == 0 {
				return
			}

			if err := held[0].Release(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := a.pool.InUse(); got != seats-1 {
				t.Fatalf("a: %d in use right after its release, want %d", got, seats-1)
			}
			// b's picture follows within the watch's delay.
			waitFor(t, 15*time.Second, "b sees the release", func() bool { return b.pool.InUse() == seats-1 })
			st := acquire(t, b.pool, "b0")
			if st.Slot() != held[0].Slot() {
				t.Fatalf("b got slot %d, want the released %d", st.Slot(), held[0].Slot())
			}
			if b.pool.Held() != 1 || a.pool.Held() != seats-1 {
				t.Fatalf("held: a %d, b %d", a.pool.Held(), b.pool.Held())
			}
			wantNoSeat(t, a.pool, "a-full-again")
			waitFor(t, 15*time.Second, "both see every seat taken", func() bool {
				return a.pool.InUse() == seats && b.pool.InUse() == seats
			})
		})
	}
}

// A full pool answers ErrNoSeat with at most verifyProbes attempts to
// create a slot per probeInterval, however many seats there are and however
// often it is asked.
func TestNoSeatIsCheap(t *testing.T) {
	s := natstest.Server(t)
	seatBucket(t, s, DefaultLeaseTTL)
	const seats = 50
	a := startGateway(t, s, Config{Seats: seats})
	for i := range seats {
		acquire(t, a.pool, fmt.Sprintf("a%d", i))
	}

	nc, js := natstest.Connect(t, s)
	kv, err := js.KeyValue(ctxT(t, 5*time.Second), subjects.BucketSeats)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingKV{KeyValue: kv}
	b := startPool(t, nc, counting, Config{Seats: seats})
	waitFor(t, 15*time.Second, "b sees every seat taken", func() bool { return b.pool.InUse() == seats })
	start := time.Now()
	for i := range 100 {
		wantNoSeat(t, b.pool, fmt.Sprintf("b%d", i))
	}
	rounds := int64(time.Since(start)/probeInterval) + 1
	if n := counting.creates.Load(); n > verifyProbes*rounds {
		t.Fatalf("100 ErrNoSeat in %s cost %d creates, want at most %d per %s", time.Since(start), n, verifyProbes, probeInterval)
	}
	t.Logf("100 ErrNoSeat in %s: %d creates", time.Since(start), counting.creates.Load())
}

// Two gateways with many goroutines each competing for few seats never hold
// more than Seats, nor one slot twice.
func TestConcurrentPoolsNeverOverAllocate(t *testing.T) {
	s := natstest.Server(t)
	seatBucket(t, s, DefaultLeaseTTL)
	const seats, workers = 8, 16
	gws := []*gateway{startGateway(t, s, Config{Seats: seats}), startGateway(t, s, Config{Seats: seats})}

	var (
		held                  atomic.Int64
		owners                [seats]atomic.Bool
		granted, full, failed atomic.Int64
		wg                    sync.WaitGroup
	)
	stop := time.Now().Add(2 * time.Second)
	for g, gw := range gws {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; time.Now().Before(stop); n++ {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					st, err := gw.pool.Acquire(ctx, fmt.Sprintf("g%d-w%d-%d", g, w, n))
					cancel()
					switch {
					case errors.Is(err, ErrNoSeat):
						full.Add(1)
						time.Sleep(time.Millisecond) // the client's retry
						continue
					case err != nil:
						failed.Add(1)
						t.Errorf("acquire: %v", err)
						return
					}
					granted.Add(1)
					if h := held.Add(1); h > seats {
						t.Errorf("%d seats held at once, license %d", h, seats)
					}
					if !owners[st.Slot()].CompareAndSwap(false, true) {
						t.Errorf("slot %d held twice", st.Slot())
					}
					time.Sleep(time.Millisecond) // the session's life
					owners[st.Slot()].Store(false)
					held.Add(-1)
					ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
					if err := st.Release(ctx); err != nil {
						t.Errorf("release: %v", err)
					}
					cancel()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("granted %d, ErrNoSeat %d, errors %d", granted.Load(), full.Load(), failed.Load())
	if granted.Load() < seats || full.Load() == 0 {
		t.Errorf("want contention: granted %d, ErrNoSeat %d", granted.Load(), full.Load())
	}
	for _, gw := range gws {
		if gw.pool.Held() != 0 {
			t.Errorf("%s still holds %d", gw.pool.Holder(), gw.pool.Held())
		}
		waitFor(t, 15*time.Second, "every seat free again", func() bool { return gw.pool.InUse() == 0 })
	}
	// Every seat can be had again.
	for i := range seats {
		acquire(t, gws[i%2].pool, fmt.Sprintf("after%d", i))
	}
	wantNoSeat(t, gws[0].pool, "after-full")
}

// A gateway that dies (its connection closes, Close never called) loses its
// seats after about LeaseTTL, and another gateway takes them.
func TestCrashedHolderSeatsRunOut(t *testing.T) {
	s := natstest.Server(t)
	seatBucket(t, s, testTTL)
	const seats = 4
	cfg := Config{Seats: seats, LeaseTTL: testTTL}
	live := startGateway(t, s, cfg)
	lostAt := make(chan time.Time, seats)
	cfg.OnLost = func(string) { lostAt <- time.Now() }
	dead := startGateway(t, s, cfg)
	for i := range seats {
		acquire(t, dead.pool, fmt.Sprintf("d%d", i))
	}
	waitFor(t, 15*time.Second, "live sees every seat taken", func() bool { return live.pool.InUse() == seats })
	wantNoSeat(t, live.pool, "too-early")

	dead.nc.Close() // the crash: no Close, no more renewals reach NATS
	crashed := time.Now()
	waitFor(t, testTTL+15*time.Second, "the dead gateway's seats to run out", func() bool { return live.pool.InUse() == 0 })
	freedAt := time.Now()
	freed := freedAt.Sub(crashed)
	t.Logf("seats free %s after the crash (lease TTL %s, renewed every %s)", freed, testTTL, testTTL/3)
	// The last write was at most 1.5 RenewEvery before the crash.
	if low := testTTL - 3*(testTTL/3)/2 - 100*time.Millisecond; freed < low {
		t.Errorf("seats free after %s, before the lease could have run out (%s)", freed, low)
	}
	for i := range seats {
		acquire(t, live.pool, fmt.Sprintf("l%d", i))
	}
	wantNoSeat(t, live.pool, "full-again")

	// The pool cut off from NATS gave its seats up by itself, and before
	// the server freed them: its sessions never overlap their seats' next
	// holders.
	for n := range seats {
		select {
		case at := <-lostAt:
			if at.After(freedAt) {
				t.Errorf("cut-off pool gave a seat up %s after it was free again", at.Sub(freedAt))
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("OnLost for %d of %d seats of the cut-off pool", n, seats)
		}
	}
	if dead.pool.Held() != 0 {
		t.Fatalf("cut-off pool still holds %d", dead.pool.Held())
	}
}

// A live holder keeps its seats well past LeaseTTL thanks to renewal.
func TestLiveHolderKeepsSeats(t *testing.T) {
	s := natstest.Server(t)
	kv := seatBucket(t, s, testTTL)
	const seats = 3
	cfg := Config{Seats: seats, LeaseTTL: testTTL}
	a := startGateway(t, s, cfg)
	b := startGateway(t, s, cfg)
	var held []*Seat
	var firstRev []uint64
	for i := range seats {
		st := acquire(t, a.pool, fmt.Sprintf("a%d", i))
		held = append(held, st)
		firstRev = append(firstRev, st.revision())
	}
	start := time.Now()
	for time.Since(start) < 3*testTTL {
		if a.pool.Held() != seats {
			t.Fatalf("after %s: holds %d, want %d", time.Since(start), a.pool.Held(), seats)
		}
		select {
		case id := <-a.lost:
			t.Fatalf("after %s: lost %s", time.Since(start), id)
		case <-time.After(100 * time.Millisecond):
		}
	}
	wantNoSeat(t, b.pool, "b")
	ctx := ctxT(t, 5*time.Second)
	for i, st := range held {
		e, err := kv.Get(ctx, slotKey(st.Slot()))
		if err != nil {
			t.Fatalf("slot %d after 3 TTLs: %v", st.Slot(), err)
		}
		if !strings.Contains(string(e.Value()), a.pool.Holder()) || !strings.Contains(string(e.Value()), st.SessionID()) {
			t.Fatalf("slot %d holds %s", st.Slot(), e.Value())
		}
		if e.Revision() <= firstRev[i] {
			t.Fatalf("slot %d never renewed", st.Slot())
		}
	}
}

// Close releases everything; Release twice is fine; Acquire after Close
// fails with ErrClosed.
func TestCloseReleasesEverything(t *testing.T) {
	s := natstest.Server(t)
	seatBucket(t, s, DefaultLeaseTTL)
	const seats = 5
	a := startGateway(t, s, Config{Seats: seats})
	b := startGateway(t, s, Config{Seats: seats})
	ctx := ctxT(t, 10*time.Second)

	first := acquire(t, a.pool, "a0")
	for i := 1; i < seats; i++ {
		acquire(t, a.pool, fmt.Sprintf("a%d", i))
	}
	for range 2 {
		if err := first.Release(ctx); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	if a.pool.Held() != seats-1 {
		t.Fatalf("held %d after one release", a.pool.Held())
	}
	if _, err := a.pool.Acquire(ctx, "a1"); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("second seat for one session: %v", err)
	}

	for range 2 {
		if err := a.pool.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	if a.pool.Held() != 0 {
		t.Fatalf("held %d after close", a.pool.Held())
	}
	if _, err := a.pool.Acquire(ctx, "late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire after close: %v, want ErrClosed", err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatalf("release after close: %v", err)
	}
	waitFor(t, 15*time.Second, "b sees every seat free", func() bool { return b.pool.InUse() == 0 })
	for i := range seats {
		acquire(t, b.pool, fmt.Sprintf("b%d", i))
	}
}

// OnLost reports a lease changed under its holder, and the slot follows
// what happened to it.
func TestOnLost(t *testing.T) {
	tests := []struct {
		name     string
		change   func(ctx context.Context, kv jetstream.KeyValue, key string) error
		nowTaken bool
	}{
		{"deleted", func(ctx context.Context, kv jetstream.KeyValue, key string) error { return kv.Delete(ctx, key) }, false},
		{"purged", func(ctx context.Context, kv jetstream.KeyValue, key string) error { return kv.Purge(ctx, key) }, false},
		{"overwritten", func(ctx context.Context, kv jetstream.KeyValue, key string) error {
			_, err := kv.Put(ctx, key, []byte(`{"holder":"intruder","session":"x"}`))
			return err
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.Server(t)
			kv := seatBucket(t, s, DefaultLeaseTTL)
			a := startGateway(t, s, Config{Seats: 2})
			ctx := ctxT(t, 10*time.Second)
			keep := acquire(t, a.pool, "keep")
			victim := acquire(t, a.pool, "victim")

			if err := tt.change(ctx, kv, slotKey(victim.Slot())); err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-a.lost:
				if id != "victim" {
					t.Fatalf("OnLost(%q), want victim", id)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("OnLost not called")
			}
			if a.pool.Held() != 1 {
				t.Fatalf("held %d, want 1", a.pool.Held())
			}
			if err := victim.Release(ctx); err != nil {
				t.Fatalf("release of a lost seat: %v", err)
			}
			if tt.nowTaken {
				waitFor(t, 15*time.Second, "2 in use", func() bool { return a.pool.InUse() == 2 })
				wantNoSeat(t, a.pool, "again")
				if e, err := kv.Get(ctx, slotKey(victim.Slot())); err != nil || !strings.Contains(string(e.Value()), "intruder") {
					t.Fatalf("the release of a lost seat touched the new holder's lease: %v", err)
				}
			} else {
				waitFor(t, 15*time.Second, "1 in use", func() bool { return a.pool.InUse() == 1 })
				acquire(t, a.pool, "again")
			}
			select {
			case id := <-a.lost:
				t.Fatalf("OnLost(%q) too", id)
			default:
			}
			_ = keep
		})
	}
}

// A bucket without the lease TTL, with another TTL, or without markers is
// refused with ErrBucket.
func TestBucketMisconfigured(t *testing.T) {
	tests := []struct {
		name string
		cfg  func() jetstream.KeyValueConfig
	}{
		{"no TTL", func() jetstream.KeyValueConfig { c := BucketConfig(1, true); c.TTL = 0; return c }},
		{"other TTL", func() jetstream.KeyValueConfig { c := BucketConfig(1, true); c.TTL = time.Minute; return c }},
		{"no markers", func() jetstream.KeyValueConfig { c := BucketConfig(1, true); c.LimitMarkerTTL = 0; return c }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.Server(t)
			_, js := natstest.Connect(t, s)
			if _, err := js.CreateKeyValue(ctxT(t, 5*time.Second), tt.cfg()); err != nil {
				t.Fatal(err)
			}
			a := startGateway(t, s, Config{Seats: 1})
			if _, err := a.pool.Acquire(ctxT(t, 5*time.Second), "x"); !errors.Is(err, ErrBucket) {
				t.Fatalf("acquire: %v, want ErrBucket", err)
			}
		})
	}
}

// With NATS out of reach, Acquire fails with the context's error, not
// ErrNoSeat.
func TestAcquireNATSUnreachable(t *testing.T) {
	s := natstest.Server(t)
	seatBucket(t, s, DefaultLeaseTTL)
	nc, js := natstest.Connect(t, s)
	kv, err := js.KeyValue(ctxT(t, 5*time.Second), subjects.BucketSeats)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	a := startPool(t, nc, kv, Config{Seats: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = a.pool.Acquire(ctx, "x")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNoSeat) {
		t.Fatalf("acquire: %v, want a deadline error", err)
	}
	t.Log(err)
}

// A picture that missed a slot coming free (a marker lost while the watch
// was away) still grants the seat when it believes the pool full, and heals
// itself by watching the bucket again.
func TestStalePictureHeals(t *testing.T) {
	s := natstest.Server(t)
	seatBucket(t, s, testTTL)
	cfg := Config{Seats: 2, LeaseTTL: testTTL}
	a := startGateway(t, s, cfg)
	b := startGateway(t, s, cfg)
	held := acquire(t, a.pool, "a")
	waitFor(t, 15*time.Second, "b sees a's seat", func() bool { return b.pool.InUse() == 1 })
	freeSlot := 1 - held.Slot()
	corrupt := func() {
		b.pool.mu.Lock()
		defer b.pool.mu.Unlock()
		b.pool.slots[freeSlot].seen = time.Now().Add(-time.Hour)
		b.pool.setTaken(freeSlot, true)
	}

	corrupt()
	if b.pool.InUse() != 2 {
		t.Fatalf("in use %d after corrupting the picture", b.pool.InUse())
	}
	st := acquire(t, b.pool, "b") // the picture says full; the probe finds the slot free
	if st.Slot() != freeSlot {
		t.Fatalf("got slot %d, want %d", st.Slot(), freeSlot)
	}
	if err := st.Release(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}

	corrupt()
	waitFor(t, 2*testTTL+15*time.Second, "the stale picture to heal", func() bool { return b.pool.InUse() == 1 })
	if a.pool.Held() != 1 {
		t.Fatalf("a lost its seat")
	}
}

// Close while Acquire calls are in flight: each gets a seat or ErrClosed,
// and every seat granted is released by Close.
func TestCloseDuringAcquire(t *testing.T) {
	s := natstest.Server(t)
	seatBucket(t, s, DefaultLeaseTTL)
	const seats = 20
	a := startGateway(t, s, Config{Seats: seats})
	b := startGateway(t, s, Config{Seats: seats})
	acquire(t, a.pool, "warm-up")

	var wg sync.WaitGroup
	for w := range seats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				_, err := a.pool.Acquire(context.Background(), fmt.Sprintf("w%d-%d", w, n))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil && !errors.Is(err, ErrNoSeat) {
					t.Errorf("acquire: %v", err)
					return
				}
			}
		}()
	}
	waitFor(t, 15*time.Second, "a to hold seats", func() bool { return a.pool.Held() > 1 })
	if err := a.pool.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("close: %v", err)
	}
	wg.Wait()
	if a.pool.Held() != 0 {
		t.Fatalf("held %d after close", a.pool.Held())
	}
	waitFor(t, 15*time.Second, "b sees every seat free", func() bool { return b.pool.InUse() == 0 })
}

// A write of the seat's own lease that the pool did not see the answer to
// (a renewal that timed out but landed) is not a loss: renewal and Release
// carry on from its revision.
func TestOwnLateWriteIsNotALoss(t *testing.T) {
	s := natstest.Server(t)
	kv := seatBucket(t, s, testTTL)
	a := startGateway(t, s, Config{Seats: 1, LeaseTTL: testTTL})
	ctx := ctxT(t, 30*time.Second)
	st := acquire(t, a.pool, "a")
	e, err := kv.Get(ctx, slotKey(st.Slot()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, e.Key(), e.Value(), e.Revision()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < testTTL {
		select {
		case id := <-a.lost:
			t.Fatalf("lost %s", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if a.pool.Held() != 1 {
		t.Fatalf("held %d", a.pool.Held())
	}
	if err := st.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, e.Key()); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after release: %v, want ErrKeyNotFound", err)
	}
}
