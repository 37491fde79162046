package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Adapter keeps the authoritative queue state of every group and publishes
// each accepted change. It implements Handler; Run drives it from a Source.
type Adapter struct {
	js      jetstream.JetStream
	log     zerolog.Logger
	rejects zerolog.Logger
	cfg     Config
	hist    *subjects.History
	dir     jetstream.KeyValue
	status  jetstream.KeyValue
	pub     *publisher
	snaps   *snapshotWriter
	stats   counters

	mu      sync.Mutex // guards everything below
	tenants map[string]subjects.Tenant
	groups  map[string]*group
	dirty   []*group // groups with changes held back during a backlog
	link    subjects.RouterStatus
	linkVer uint64 // grows with each change of link
	closed  bool

	statusMu      sync.Mutex // serializes status writes, outside mu
	statusWritten uint64     // linkVer of the last status written

	ctx       context.Context // cancelled when Close gives up waiting
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ Handler = (*Adapter)(nil)

// group is one service group's authoritative state.
type group struct {
	info    subjects.Group
	subject string
	q       *queue.Queue
	seq     uint64           // last published sequence number
	snapSeq uint64           // sequence of the last snapshot taken
	snapAt  time.Time        // when it was taken
	pending []subjects.Event // numbered changes not yet published
	dirty   bool             // listed in Adapter.dirty

	ackMu     sync.Mutex
	ackSeq    uint64 // last stored sequence number
	ackStream uint64 // its stream sequence
}

func (g *group) setAcked(seq, streamSeq uint64) {
	g.ackMu.Lock()
	g.ackSeq, g.ackStream = seq, streamSeq
	g.ackMu.Unlock()
}

func (g *group) acked() (seq, streamSeq uint64) {
	g.ackMu.Lock()
	defer g.ackMu.Unlock()
	return g.ackSeq, g.ackStream
}

// Open prepares the bus (subjects.Ensure), rebuilds every group of the
// directory from its snapshot and later events, and starts publishing the
// router status (disconnected until a source reports LinkUp). Cancelling ctx
// aborts the rebuild only.
func Open(ctx context.Context, js jetstream.JetStream, log zerolog.Logger, cfg Config) (*Adapter, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("adapter config: %w", err)
	}
	a := &Adapter{js: js, log: log, cfg: cfg, tenants: map[string]subjects.Tenant{}, groups: map[string]*group{}}
	a.rejects = log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second})
	if err := a.bind(ctx); err != nil {
		return nil, err
	}
	if err := a.checkAlone(ctx); err != nil {
		return nil, err
	}
	if err := a.restore(ctx); err != nil {
		return nil, err
	}
	// The bus is taken from now on: another adapter that starts sees it.
	// (One taking over writes when its link comes up, as before.)
	if !cfg.TakeOver {
		starting := subjects.RouterStatus{Epoch: a.link.Epoch, Since: time.Now().UTC(), Reason: "adapter starting"}
		if err := a.writeStatus(ctx, starting, 0); err != nil {
			return nil, err
		}
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.pub = newPublisher(a.ctx, js, log, cfg.Window, cfg.AckTimeout, &a.stats)
	a.snaps = newSnapshotWriter(a.ctx, a.hist, log, &a.stats)
	a.link.Since = time.Now().UTC()
	a.link.Reason = "no router link yet"
	a.wg.Add(1)
	go a.drainLoop()
	a.goLoop(cfg.StatusInterval, a.refreshStatus)
	a.goLoop(cfg.SnapshotInterval, a.snapshotDue)
	return a, nil
}

func (a *Adapter) bind(ctx context.Context) (err error) {
	if err = subjects.Ensure(ctx, a.js, a.cfg.Bus); err != nil {
		return err
	}
	if a.hist, err = subjects.OpenHistory(ctx, a.js); err != nil {
		return err
	}
	if a.dir, err = a.js.KeyValue(ctx, subjects.BucketDirectory); err != nil {
		return fmt.Errorf("open bucket %s: %w", subjects.BucketDirectory, err)
	}
	if a.status, err = a.js.KeyValue(ctx, subjects.BucketRouter); err != nil {
		return fmt.Errorf("open bucket %s: %w", subjects.BucketRouter, err)
	}
	return nil
}

// goLoop runs fn every interval until the adapter closes.
func (a *Adapter) goLoop(interval time.Duration, fn func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-a.ctx.Done():
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

// Run drives the adapter from src until ctx is cancelled or src fails; it
// returns src's error. The router is reported disconnected when src stops.
func (a *Adapter) Run(ctx context.Context, src Source) error {
	err := src.Run(ctx, a)
	reason := "source stopped"
	if err != nil {
		reason = "source failed: " + err.Error()
	}
	a.LinkDown(context.WithoutCancel(ctx), reason)
	if err != nil {
		return fmt.Errorf("router source: %w", err)
	}
	return nil
}

// Flush returns once every change accepted so far is stored in JetStream.
func (a *Adapter) Flush(ctx context.Context) error {
	done := make(chan struct{})
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.flushDirtyLocked()
	a.pub.mark(nil, func(uint64) { close(done) })
	a.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush: %w", ctx.Err())
	}
}

// Close stops the adapter: it waits for every accepted change to be
// stored, writes a last snapshot of each changed group and reports the router
// disconnected. If ctx ends first, it abandons what is left (the next
// adapter's reconciliation heals it). Close is safe to call twice; it returns
// once every goroutine of the adapter has ended.
func (a *Adapter) Close(ctx context.Context) error {
	a.closeOnce.Do(func() { a.closeErr = a.close(ctx) })
	return a.closeErr
}

func (a *Adapter) close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	a.flushDirtyLocked()
	for _, g := range a.groups {
		if g.seq > g.snapSeq {
			a.snapshotLocked(g)
		}
	}
	a.pub.close()
	a.mu.Unlock()
	stop := context.AfterFunc(ctx, a.cancel)
	defer stop()
	<-a.pub.done
	a.snaps.close()
	a.mu.Lock()
	st, ver := a.setLinkLocked(subjects.RouterStatus{Connected: false, Epoch: a.link.Epoch, Since: time.Now().UTC(), Reason: stoppedReason})
	a.mu.Unlock()
	err := a.writeStatus(ctx, st, ver)
	a.cancel()
	a.wg.Wait()
	if ctx.Err() != nil {
		return errors.Join(fmt.Errorf("close adapter: %w", ctx.Err()), err)
	}
	return err
}

// Stats is a snapshot of the adapter's counters.
type Stats struct {
	// Accepted counts changes applied to the state; Rejected those refused.
	Accepted, Rejected uint64
	// Published counts changes stored in JetStream, in Messages messages
	// (several changes of a group share one while publishing has a backlog);
	// Retries counts the publishes retried; Lost the changes abandoned by an
	// aborted Close.
	Published, Messages, Retries, Lost uint64
	// Snapshots counts snapshots stored; SnapshotErrors those that failed.
	Snapshots, SnapshotErrors uint64
	// Conflicts counts events whose sequence number another writer had
	// already stored: two adapters fed the same groups.
	Conflicts uint64
}

type counters struct {
	accepted, rejected, published, messages, retries, lost, snapshots, snapshotErrors, conflicts atomic.Uint64
}

// Stats returns the adapter's counters.
func (a *Adapter) Stats() Stats {
	s := &a.stats
	return Stats{Accepted: s.accepted.Load(), Rejected: s.rejected.Load(), Published: s.published.Load(), Messages: s.messages.Load(),
		Retries: s.retries.Load(), Lost: s.lost.Load(), Snapshots: s.snapshots.Load(), SnapshotErrors: s.snapshotErrors.Load(), Conflicts: s.conflicts.Load()}
}

// Group returns a copy of a group's queue and its sequence number.
func (a *Adapter) Group(id string) (seq uint64, sessions []queue.Session, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.groups[id]
	if !ok {
		return 0, nil, false
	}
	return g.seq, g.q.Sessions(), true
}

// Depth returns how many groups the adapter holds and how many sessions
// are queued in all of them.
func (a *Adapter) Depth() (groups, sessions int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, g := range a.groups {
		sessions += g.q.Len()
	}
	return len(a.groups), sessions
}
