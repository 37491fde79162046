package subjects

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SteadyWatch watches every key of a KV bucket, as KeyValue.WatchAll does,
// and replaces its watch when it stalls. A watch is a JetStream consumer:
// one whose NATS node went away can stand still, without an error, for
// many seconds while the bucket changes. WatchStall notices that (the
// bucket's stream moved past the last entry given, which did not move for
// StallChecks seconds); the watch is then replaced by one from the
// revision after the last entry given, so nothing is missed or given
// twice. Updates gives the initial values, one nil, then every change, as
// a KeyWatcher does; it is closed once Stop is called or ctx ends.
//
// Use it only for watches that give every revision (no IgnoreDeletes, no
// MetaOnly filter of keys): one that skips revisions would look stalled.
func SteadyWatch(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) (jetstream.KeyWatcher, error) {
	stream, err := js.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return nil, fmt.Errorf("watch bucket %s: %w", kv.Bucket(), err)
	}
	w := &steadyWatch{kv: kv, out: make(chan jetstream.KeyValueEntry, 64), stalled: make(chan struct{}, 1)}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	inner, err := kv.WatchAll(w.ctx)
	if err != nil {
		w.cancel()
		return nil, fmt.Errorf("watch bucket %s: %w", kv.Bucket(), err)
	}
	stop := context.AfterFunc(ctx, w.cancel)
	w.wg.Add(2)
	go func() { defer w.wg.Done(); defer stop(); w.forward(inner) }()
	go func() {
		defer w.wg.Done()
		WatchStall(w.ctx, stream, w.last.Load, func(uint64, uint64) { w.signalStall() })
	}()
	return w, nil
}

type steadyWatch struct {
	kv      jetstream.KeyValue
	out     chan jetstream.KeyValueEntry
	stalled chan struct{}
	last    atomic.Uint64 // revision of the last entry given
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Updates gives the bucket's entries (see SteadyWatch).
func (w *steadyWatch) Updates() <-chan jetstream.KeyValueEntry { return w.out }

// Stop ends the watch and waits for its goroutines. Safe twice.
func (w *steadyWatch) Stop() error {
	w.cancel()
	w.wg.Wait()
	return nil
}

func (w *steadyWatch) signalStall() {
	select {
	case w.stalled <- struct{}{}:
	default:
	}
}

// forward gives the entries of the current watch, replacing it when it
// stalls or ends, until the watch is stopped.
func (w *steadyWatch) forward(inner jetstream.KeyWatcher) {
	defer close(w.out)
	defer func() { _ = inner.Stop() }()
	initial := true
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.stalled:
			inner = w.replace(inner)
		case e, ok := <-inner.Updates():
			switch {
			case !ok:
				inner = w.replace(inner)
			case e == nil && !initial:
				// a replacement's end of initial values: given once only
			case !w.give(e):
				return
			default:
				initial = initial && e != nil
			}
		}
	}
}

// give passes an entry on; false once the watch is stopped.
func (w *steadyWatch) give(e jetstream.KeyValueEntry) bool {
	if e != nil {
		w.last.Store(e.Revision())
	}
	select {
	case w.out <- e:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// replace stops a watch and starts one from the revision after the last
// given, trying again each second until it works or the watch is stopped.
func (w *steadyWatch) replace(old jetstream.KeyWatcher) jetstream.KeyWatcher {
	_ = old.Stop()
	for {
		fresh, err := w.kv.WatchAll(w.ctx, jetstream.ResumeFromRevision(w.last.Load()+1))
		if err == nil || w.ctx.Err() != nil {
			if err != nil {
				return old
			}
			return fresh
		}
		select {
		case <-w.ctx.Done():
			return old
		case <-time.After(time.Second):
		}
	}
}
