package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
)

// lease is the active adapter's hold on the bus: a key of BucketLease that
// it rewrites (revision-checked) well within the bucket's TTL. The server
// drops a lease nobody rewrote; a standby's Create then succeeds.
//
// The holder fences itself: it writes nothing once its lease may have
// lapsed by its own clock (a quarter of the TTL before the server could
// drop it), so that an adapter paused or cut off past its lease never
// writes after the one that took over.
type lease struct {
	kv    jetstream.KeyValue
	ttl   time.Duration
	value []byte
	held  subjects.Lease

	mu      sync.Mutex
	rev     uint64
	renewed time.Time // when the last write that succeeded was sent
	lost    error     // set once another holds the lease
}

// leaseValue encodes the lease of the adapter named name.
func leaseValue(name, instance string) (subjects.Lease, []byte, error) {
	l := subjects.Lease{Adapter: name, Instance: instance, Since: time.Now().UTC()}
	data, err := subjects.EncodeLease(l)
	return l, data, err
}

// leaseWatch tells a held lease gone stale: its revision unchanged for a
// whole lease time by this process's own clock. Its holder renews every
// quarter of the lease and writes nothing three quarters of a lease after
// its last renewal, so a lease seen unchanged that long is safe to take,
// whatever the server's expiry (which a cluster re-electing the bucket's
// leader may run late) and whatever the two machines' clocks say.
type leaseWatch struct {
	rev   uint64
	since time.Time
}

// stale notes the revision seen now and says whether it has not changed
// for ttl.
func (w *leaseWatch) stale(rev uint64, ttl time.Duration) bool {
	if rev != w.rev || w.since.IsZero() {
		w.rev, w.since = rev, time.Now()
		return false
	}
	return time.Since(w.since) > ttl
}

// tryLease takes the lease if nobody holds it, or if the holder's went
// stale (w); otherwise it returns the holder's.
func tryLease(ctx context.Context, kv jetstream.KeyValue, ttl time.Duration, name, instance string, w *leaseWatch) (*lease, subjects.Lease, error) {
	held, value, err := leaseValue(name, instance)
	if err != nil {
		return nil, held, err
	}
	sent := time.Now()
	rev, err := kv.Create(ctx, subjects.LeaseKey, value)
	if err == nil {
		return &lease{kv: kv, ttl: ttl, value: value, held: held, rev: rev, renewed: sent}, held, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, held, fmt.Errorf("take the adapter lease: %w", err)
	}
	holder, holderRev, err := readLease(ctx, kv)
	if err != nil || holderRev == 0 || !w.stale(holderRev, ttl) {
		return nil, holder, err
	}
	sent = time.Now()
	if rev, err = kv.Update(ctx, subjects.LeaseKey, value, holderRev); err != nil {
		return nil, holder, nil // renewed or taken meanwhile: look again
	}
	return &lease{kv: kv, ttl: ttl, value: value, held: held, rev: rev, renewed: sent}, held, nil
}

// forceLease takes the lease whoever holds it (replay play --take-over):
// the holder finds its next renewal refused and stands down.
func forceLease(ctx context.Context, kv jetstream.KeyValue, ttl time.Duration, name, instance string) (*lease, error) {
	held, value, err := leaseValue(name, instance)
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	rev, err := kv.Put(ctx, subjects.LeaseKey, value)
	if err != nil {
		return nil, fmt.Errorf("take over the adapter lease: %w", err)
	}
	return &lease{kv: kv, ttl: ttl, value: value, held: held, rev: rev, renewed: sent}, nil
}

// readLease returns the current holder of the lease and its revision
// (zeros if none).
func readLease(ctx context.Context, kv jetstream.KeyValue) (subjects.Lease, uint64, error) {
	entry, err := kv.Get(ctx, subjects.LeaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return subjects.Lease{}, 0, nil
	case err != nil:
		return subjects.Lease{}, 0, fmt.Errorf("read the adapter lease: %w", err)
	}
	l, err := subjects.DecodeLease(entry.Value())
	if err != nil {
		return l, entry.Revision(), fmt.Errorf("read the adapter lease: %w", err)
	}
	return l, entry.Revision(), nil
}

// renew rewrites the lease. A rewrite refused because the key changed or
// lapsed means another adapter holds it (or may at any moment): the lease
// is lost for good. Any other failure leaves it to lapse by the clock
// unless a later renewal succeeds.
func (l *lease) renew(ctx context.Context) error {
	l.mu.Lock()
	rev, lost := l.rev, l.lost
	l.mu.Unlock()
	if lost != nil {
		return lost
	}
	sent := time.Now()
	next, err := l.kv.Update(ctx, subjects.LeaseKey, l.value, rev)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.rev, l.renewed = next, sent
		return nil
	case isWrongLast(err) || errors.Is(err, jetstream.ErrKeyNotFound):
		holder, _, _ := readLease(ctx, l.kv)
		l.lost = fmt.Errorf("%w: it lapsed or was taken (holder now %q)", ErrLeaseLost, holder.Adapter)
		return l.lost
	}
	return fmt.Errorf("renew the adapter lease: %w", err)
}

// valid returns nil while the holder may still write: the lease is not
// lost and its last renewal is recent enough that the server cannot have
// dropped it.
func (l *lease) valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if since := time.Since(l.renewed); since > l.ttl-l.ttl/4 {
		return fmt.Errorf("%w: not renewed for %s (lease %s)", ErrLeaseLost, since.Round(time.Millisecond), l.ttl)
	}
	return nil
}

// release gives the lease up, so that a standby takes over at once; it
// deletes the key only if it is still this holder's.
func (l *lease) release(ctx context.Context) error {
	l.mu.Lock()
	rev, lost := l.rev, l.lost
	l.lost = fmt.Errorf("%w: released", ErrLeaseLost)
	l.mu.Unlock()
	if lost != nil {
		return nil
	}
	if err := l.kv.Delete(ctx, subjects.LeaseKey, jetstream.LastRevision(rev)); err != nil && !isWrongLast(err) {
		return fmt.Errorf("release the adapter lease: %w", err)
	}
	return nil
}
