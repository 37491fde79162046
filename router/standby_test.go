package router

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// fastLease is a lease short enough for tests: a standby takes over about a
// second after the active stops renewing.
var fastLease = subjects.Config{AdapterLeaseTTL: time.Second}

// openStandby opens a standby, closed at the end of the test.
func openStandby(t *testing.T, js jetstream.JetStream, cfg Config) *Standby {
	t.Helper()
	s, err := OpenStandby(testCtx(t), js, natstest.Logger(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// awaitActive runs s.Await in the background.
func awaitActive(t *testing.T, s *Standby) <-chan *Adapter {
	t.Helper()
	out := make(chan *Adapter, 1)
	go func() {
		a, err := s.Await(testCtx(t))
		if err != nil {
			t.Errorf("await: %v", err)
			close(out)
			return
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = a.Close(ctx)
		})
		out <- a
	}()
	return out
}

// connectTo connects a JetStream context of its own to url.
func connectTo(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestStandbyTakesOverWithoutAGap: a standby follows the active; the active
// dies (its connection cut, its lease unrenewed); the standby takes over
// within the lease time plus a little, holding every group as the stream
// has it, and its next events continue each group's Seq: the whole stream
// replays to the router's queues, with no gap and no duplicate.
func TestStandbyTakesOverWithoutAGap(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	d := newDriver(21)
	nc1, js1 := connectTo(t, s.ClientURL())
	first, err := Open(ctx, js1, natstest.Logger(t), Config{Name: "first", Bus: fastLease, SnapshotEvery: 40})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	drive(t, first, d, 500)
	sb := openStandby(t, js, Config{Name: "second", Bus: fastLease, SnapshotEvery: 40})
	next := awaitActive(t, sb)
	drive(t, first, d, 1500) // followed live
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the standby to see the active", func() bool { return sb.Holder().Adapter == "first" })
	nc1.Close() // the active dies
	died := time.Now()
	second := <-next
	if second == nil {
		t.FailNow()
	}
	took := time.Since(died)
	t.Logf("took over %s after the active died (lease 1s)", took)
	if took > 5*time.Second {
		t.Errorf("took over %s after the active died", took)
	}
	if err := second.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	drive(t, second, d, 500)
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	built := replayAll(t, streamEvents(t, js))
	for id, q := range d.queues {
		sameQueue(t, id+" (replayed)", built[id].Sessions(), q.Sessions())
		_, live, _ := second.Group(id)
		sameQueue(t, id+" (new active)", live, q.Sessions())
	}
	if err := first.Failed(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("the dead adapter: %v, want it stood down (ErrLeaseLost)", err)
	}
}

// TestCleanCloseHandsOverAtOnce: an active that closes cleanly releases
// its lease; the standby takes over without waiting for it to lapse.
func TestCleanCloseHandsOverAtOnce(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	long := subjects.Config{AdapterLeaseTTL: 30 * time.Second}
	_, js1 := connectTo(t, s.ClientURL())
	first, err := Open(ctx, js1, natstest.Logger(t), Config{Name: "first", Bus: long})
	if err != nil {
		t.Fatal(err)
	}
	sb := openStandby(t, js, Config{Name: "second", Bus: long})
	next := awaitActive(t, sb)
	waitFor(t, "the standby to see the active", func() bool { return sb.Holder().Adapter == "first" })
	closed := time.Now()
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if a := <-next; a == nil {
		t.FailNow()
	}
	if took := time.Since(closed); took > 10*time.Second {
		t.Fatalf("took over %s after a clean close (lease 30s): it waited for the lease to lapse", took)
	}
}

// TestTwoAdaptersStartedAtOnce: of two adapters opened at the same moment,
// exactly one gets the bus; the other is refused naming it.
func TestTwoAdaptersStartedAtOnce(t *testing.T) {
	s := natstest.Server(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var opened []*Adapter
	var refused []error
	for _, name := range []string{"left", "right"} {
		_, js := connectTo(t, s.ClientURL())
		wg.Go(func() {
			a, err := Open(ctx, js, natstest.Logger(t), Config{Name: name, Bus: fastLease})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, err)
				return
			}
			opened = append(opened, a)
		})
	}
	wg.Wait()
	for _, a := range opened {
		t.Cleanup(func() { _ = a.Close(context.Background()) })
	}
	if len(opened) != 1 || len(refused) != 1 || !errors.Is(refused[0], ErrAdapterLive) {
		t.Fatalf("opened %d, refused %v: want exactly one of each", len(opened), refused)
	}
	if !strings.Contains(refused[0].Error(), opened[0].cfg.Name) {
		t.Errorf("the refusal does not name the holder %q: %v", opened[0].cfg.Name, refused[0])
	}
}

// writerOf returns the adapter instance that wrote a stored message (the
// part of its Nats-Msg-Id after "@").
func writerOf(m *jetstream.RawStreamMsg) string {
	id := m.Header.Get(jetstream.MsgIDHeader)
	_, w, _ := strings.Cut(id, "@")
	return strings.TrimSuffix(w, "+")
}

// storedWriters returns the writer of every message of the events stream,
// in stream order.
func storedWriters(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var out []string
	eachStored(t, js, func(m *jetstream.RawStreamMsg) { out = append(out, writerOf(m)) })
	return out
}

// TestCutOffAdapterNeverWritesAfterTakeover: the active is cut off from
// NATS (its connection stalls, as under SIGSTOP or a partition) while the
// router goes on sending it changes; the standby takes over and writes to
// every group; when the old active's connection comes back, whatever it
// had queued is refused, it stands down, and no message of it follows the
// new active's first.
func TestCutOffAdapterNeverWritesAfterTakeover(t *testing.T) {
	s, p, js1 := proxiedServer(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	d := newDriver(33)
	first, err := Open(ctx, js1, natstest.Logger(t), Config{Name: "first", Bus: fastLease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close(context.Background()) })
	if err := first.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	drive(t, first, d, 300)
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sb := openStandby(t, js, Config{Name: "second", Bus: fastLease})
	next := awaitActive(t, sb)
	p.pause(true)
	stale := cloneDriver(t, d, 34) // the old active's router goes on: changes the new one never sees
	for range 200 {
		g, c := stale.change()
		if err := first.Apply(ctx, g, c); err != nil {
			break // it may find out it stood down
		}
	}
	second := <-next
	if second == nil {
		t.FailNow()
	}
	if err := second.LinkUp(ctx, d.state()); err != nil {
		t.Fatal(err)
	}
	drive(t, second, d, 400)
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.pause(false)
	waitFor(t, "the old active to stand down", func() bool { return errors.Is(first.Failed(), ErrLeaseLost) })
	drive(t, second, d, 100)
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	writers := storedWriters(t, js)
	firstNew := -1
	for i, w := range writers {
		if w == second.writer && firstNew < 0 {
			firstNew = i
		}
		if firstNew >= 0 && w != second.writer {
			t.Fatalf("message %d of the stream was written by %q after the new active's first (%d)", i, w, firstNew)
		}
	}
	built := replayAll(t, streamEvents(t, js))
	for id, q := range d.queues {
		sameQueue(t, id+" (replayed)", built[id].Sessions(), q.Sessions())
	}
	if err := second.Failed(); err != nil {
		t.Fatalf("the new active failed: %v", err)
	}
}

// cloneDriver returns a driver whose queues are d's now, with its own
// random changes.
func cloneDriver(t *testing.T, d *driver, seed uint64) *driver {
	t.Helper()
	c := newDriver(seed)
	c.next = d.next + 100000
	for id, q := range d.queues {
		for _, s := range q.Sessions() {
			if _, err := c.queues[id].Apply(queue.Change{Op: queue.OpEnqueue, CallID: s.CallID, Session: s}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// TestStaleLeaseIsTaken: a lease whose revision stays unchanged for a
// whole lease time is taken even though the server has not dropped it (a
// cluster re-electing the bucket's leader can run its expiry late); one
// that its holder keeps renewing is not.
func TestStaleLeaseIsTaken(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx := testCtx(t)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "LEASE_TEST", TTL: time.Hour, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	held, value, _ := leaseValue("holder", "h1")
	rev, err := kv.Create(ctx, subjects.LeaseKey, value)
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 400 * time.Millisecond
	var w leaseWatch
	// Renewed: never taken.
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); time.Sleep(ttl / 8) {
		if l, holder, err := tryLease(ctx, kv, ttl, "standby", "s1", &w); err != nil || l != nil || holder.Instance != held.Instance {
			t.Fatalf("a renewed lease: taken %v, holder %+v, %v", l != nil, holder, err)
		}
		if rev, err = kv.Update(ctx, subjects.LeaseKey, value, rev); err != nil {
			t.Fatal(err)
		}
	}
	// Not renewed: taken once a whole lease time has passed.
	start := time.Now()
	for {
		l, _, err := tryLease(ctx, kv, ttl, "standby", "s1", &w)
		if err != nil {
			t.Fatal(err)
		}
		if l != nil {
			if waited := time.Since(start); waited < ttl {
				t.Fatalf("taken %s after the last renewal, before a lease time (%s)", waited, ttl)
			}
			if now, _, _ := readLease(ctx, kv); now.Instance != "s1" {
				t.Fatalf("the bucket says %+v holds it", now)
			}
			return
		}
		if time.Since(start) > 10*ttl {
			t.Fatal("a stale lease was never taken")
		}
		time.Sleep(ttl / 10)
	}
}
