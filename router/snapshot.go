package router

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/subjects"
)

// snapshotLocked copies g's queue now and hands it to the writer once every
// event up to it is stored, so a snapshot never runs ahead of the stream
// (one whose events an aborted Close abandoned is dropped). It never waits:
// while g has changes waiting, the snapshot goes with the last of them.
func (a *Adapter) snapshotLocked(g *group) {
	snap := &subjects.Snapshot{Tenant: g.info.TenantID, Group: g.info.ServiceGroupID, Seq: g.seq, Time: time.Now().UTC(), Sessions: g.q.Sessions()}
	g.snapSeq, g.snapAt = g.seq, snap.Time
	if len(g.pending) > 0 {
		g.snapNext = snap
		a.holdLocked(g)
		return
	}
	a.markSnapshotLocked(g, snap)
}

// markSnapshotLocked queues snap behind every event of g sent so far.
func (a *Adapter) markSnapshotLocked(g *group, snap *subjects.Snapshot) {
	a.pub.mark(g, func(seq, streamSeq uint64) {
		if seq < snap.Seq {
			return
		}
		snap.StreamSeq = streamSeq
		a.snaps.submit(snap)
	})
}

// snapshotDue snapshots every group that changed since its last snapshot
// and has not had one for a SnapshotInterval.
func (a *Adapter) snapshotDue() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	cutoff := time.Now().Add(-a.cfg.SnapshotInterval / 2)
	for _, g := range a.groups {
		if g.seq > g.snapSeq && g.snapAt.Before(cutoff) {
			a.snapshotLocked(g)
		}
	}
}

// snapshotWriter stores snapshots in the background, keeping only the
// newest waiting one of each group.
type snapshotWriter struct {
	hist  *subjects.History
	log   zerolog.Logger
	stats *counters
	ctx   context.Context
	fence func() error // nil while the adapter may write

	mu      sync.Mutex
	pending map[string]*subjects.Snapshot
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

func newSnapshotWriter(ctx context.Context, hist *subjects.History, log zerolog.Logger, st *counters, fence func() error) *snapshotWriter {
	w := &snapshotWriter{hist: hist, log: log, stats: st, ctx: ctx, fence: fence, pending: map[string]*subjects.Snapshot{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *snapshotWriter) submit(s *subjects.Snapshot) {
	w.mu.Lock()
	w.pending[subjects.SnapshotName(s.Tenant, s.Group)] = s
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// close writes what is pending and stops the writer.
func (w *snapshotWriter) close() {
	close(w.quit)
	<-w.done
}

func (w *snapshotWriter) run() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
			w.flush()
		case <-w.quit:
			w.flush()
			return
		case <-w.ctx.Done():
			return
		}
	}
}

func (w *snapshotWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = map[string]*subjects.Snapshot{}
	w.mu.Unlock()
	for _, s := range batch {
		if w.fence() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
		err := w.hist.PutSnapshot(ctx, s)
		cancel()
		if err != nil {
			w.stats.snapshotErrors.Add(1)
			w.log.Error().Err(err).Msg("snapshot not stored; the next one will be")
			continue
		}
		w.stats.snapshots.Add(1)
	}
}
