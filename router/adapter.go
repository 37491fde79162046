package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
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
	stream  jetstream.Stream
	writer  string // this instance's part of every Nats-Msg-Id
	dir     jetstream.KeyValue
	status  jetstream.KeyValue
	leases  jetstream.KeyValue
	lease   *lease // held from Open (or Standby.Await) to Close
	pub     *publisher
	snaps   *snapshotWriter
	stats   counters

	mu      sync.Mutex // guards everything below
	tenants map[string]subjects.Tenant
	groups  map[string]*group
	// removed are groups removed from the directory, kept for their
	// sequence: one added again goes on after its last Seq.
	removed map[string]*group
	dirty   []*group // groups with changes held back during a backlog
	closed  bool
	// dirPending are directory entries changed and not yet written.
	dirPending []dirPut
	dirMu      sync.Mutex // serializes directory writes, outside mu

	// linkMu guards the link; it is taken inside mu by those who change
	// it, alone by those who only read it (status refresh, health), so that
	// they never wait behind a change that waits for the store.
	linkMu     sync.Mutex
	link       subjects.RouterStatus
	linkVer    uint64 // grows with each change of link or store fault
	storeFault string // why the store refuses writes; "" while it takes them
	storeSince time.Time
	stopped    bool  // Close has ended the link for good
	clock      Clock // the source's, when it has one

	statusMu      sync.Mutex // serializes status writes, outside mu
	statusWritten uint64     // linkVer of the last status written

	ctx       context.Context // cancelled when Close gives up waiting, or by a failure
	cancel    context.CancelFunc
	failed    chan struct{} // closed by fail
	failOnce  sync.Once
	failErr   error // why the adapter failed; set before failed is closed
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
	// snapNext is a snapshot that waits for the last of pending to be sent.
	snapNext *subjects.Snapshot
	dirty    bool // listed in Adapter.dirty

	ackMu     sync.Mutex
	ackSeq    uint64        // last stored sequence number
	ackStream uint64        // its stream sequence
	busy      chan struct{} // while a message is in flight; closed once settled
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

// Open prepares the bus (subjects.Ensure), takes the adapter lease
// (waiting one lease time for a holder that died to let it lapse; then
// ErrAdapterLive, unless Config.TakeOver), rebuilds every group of the
// directory from its snapshot and later events, and starts publishing the
// router status (disconnected until a source reports LinkUp). Cancelling
// ctx aborts the rebuild only. An adapter that stands by for the lease
// instead is a Standby.
func Open(ctx context.Context, js jetstream.JetStream, log zerolog.Logger, cfg Config) (*Adapter, error) {
	a, err := newAdapter(ctx, js, log, cfg)
	if err != nil {
		return nil, err
	}
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	if err := a.restore(ctx); err != nil {
		a.releaseLease(ctx)
		return nil, err
	}
	if err := a.start(ctx); err != nil {
		a.releaseLease(ctx)
		return nil, err
	}
	return a, nil
}

// newAdapter checks cfg and binds a new adapter to the bus.
func newAdapter(ctx context.Context, js jetstream.JetStream, log zerolog.Logger, cfg Config) (*Adapter, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("adapter config: %w", err)
	}
	a := &Adapter{js: js, log: log, cfg: cfg, tenants: map[string]subjects.Tenant{}, groups: map[string]*group{}, removed: map[string]*group{}, failed: make(chan struct{})}
	a.writer = instanceID()
	a.rejects = log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second})
	return a, a.bind(ctx)
}

// start begins the adapter's work on the bus, its lease held and its state
// restored: the status (the bus is taken from now on; one taking over
// writes it when its link comes up), the publisher, the snapshots, and
// the lease's renewal.
func (a *Adapter) start(ctx context.Context) error {
	if !a.cfg.TakeOver {
		a.setLinkLocked(subjects.RouterStatus{Epoch: a.link.Epoch, Since: time.Now().UTC(), Reason: "adapter starting"})
		if err := a.writeStatus(ctx); err != nil {
			return err
		}
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	cfg := a.cfg
	a.pub = newPublisher(a.ctx, a.js, a.stream, a.log, cfg, &a.stats, publisherHooks{onFault: a.setStoreFault, onForeign: a.fail, fence: a.fence})
	a.snaps = newSnapshotWriter(a.ctx, a.hist, a.log, &a.stats, a.fence)
	a.setLinkLocked(subjects.RouterStatus{Epoch: a.link.Epoch, Since: time.Now().UTC(), Reason: "no router link yet"})
	a.wg.Add(1)
	go a.drainLoop()
	a.goLoop(cfg.StatusInterval, a.refreshStatus)
	a.goLoop(cfg.StatusInterval, a.retryDirectory)
	a.goLoop(cfg.SnapshotInterval, a.snapshotDue)
	a.goLoop(cfg.Bus.AdapterLeaseTTL/4, a.renewLease)
	return nil
}

func (a *Adapter) bind(ctx context.Context) (err error) {
	if err = subjects.Ensure(ctx, a.js, a.cfg.Bus); err != nil {
		return err
	}
	if a.hist, err = subjects.OpenHistory(ctx, a.js); err != nil {
		return err
	}
	if a.stream, err = a.js.Stream(ctx, subjects.StreamEvents); err != nil {
		return fmt.Errorf("open stream %s: %w", subjects.StreamEvents, err)
	}
	if a.dir, err = a.js.KeyValue(ctx, subjects.BucketDirectory); err != nil {
		return fmt.Errorf("open bucket %s: %w", subjects.BucketDirectory, err)
	}
	if a.status, err = a.js.KeyValue(ctx, subjects.BucketRouter); err != nil {
		return fmt.Errorf("open bucket %s: %w", subjects.BucketRouter, err)
	}
	if a.leases, err = a.js.KeyValue(ctx, subjects.BucketLease); err != nil {
		return fmt.Errorf("open bucket %s: %w", subjects.BucketLease, err)
	}
	return nil
}

// instanceID returns a random name for this adapter instance.
func instanceID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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

// Run drives the adapter from src until ctx is cancelled, src fails or the
// adapter fails (Failed); it returns src's error or the adapter's. The
// router is reported disconnected when src stops.
func (a *Adapter) Run(ctx context.Context, src Source) error {
	if c, ok := src.(Clock); ok {
		a.setClock(c)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.failed:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := src.Run(ctx, a)
	if ferr := a.Failed(); ferr != nil {
		return ferr
	}
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

// fail ends the adapter after a fault it must not go on from: what is in
// flight is abandoned, changes are refused from now on with err, and Run
// returns it.
func (a *Adapter) fail(err error) {
	a.failOnce.Do(func() {
		a.failErr = fmt.Errorf("adapter failed: %w", err)
		close(a.failed)
	})
	if a.cancel != nil {
		a.cancel()
	}
}

// Failed returns why the adapter failed, nil while it has not.
func (a *Adapter) Failed() error {
	select {
	case <-a.failed:
		return a.failErr
	default:
		return nil
	}
}

// Flush returns once every change accepted so far is stored in JetStream.
func (a *Adapter) Flush(ctx context.Context) error {
	done := make(chan struct{})
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	if err := a.flushDirtyLocked(ctx); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("flush: %w", err)
	}
	a.pub.mark(nil, func(uint64, uint64) { close(done) })
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
	// Armed first: an Apply waiting for the store holds the lock until the
	// abort lets it go.
	stop := context.AfterFunc(ctx, a.cancel)
	defer stop()
	a.mu.Lock()
	a.closed = true
	_ = a.flushDirtyLocked(a.ctx) // ends when Close's ctx does
	for _, g := range a.groups {
		if g.seq > g.snapSeq {
			a.snapshotLocked(g)
		}
	}
	a.pub.close()
	a.mu.Unlock()
	<-a.pub.done
	a.snaps.close()
	a.mu.Lock()
	a.countUnsentLocked()
	a.setLinkLocked(subjects.RouterStatus{Connected: false, Epoch: a.link.Epoch, Since: time.Now().UTC(), Reason: stoppedReason})
	a.linkMu.Lock()
	a.stopped = true
	a.linkMu.Unlock()
	a.mu.Unlock()
	// Written even after an abort (briefly): it lets the next adapter
	// start at once.
	wctx, cancelWrite := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancelWrite()
	err := a.writeStatus(wctx)
	a.cancel()
	a.wg.Wait()
	a.releaseLease(wctx)
	if ctx.Err() != nil {
		err = errors.Join(fmt.Errorf("close adapter: %w", ctx.Err()), err)
	}
	return errors.Join(a.Failed(), err)
}

// countUnsentLocked counts as lost the changes an aborted Close never
// sent. a.mu is held.
func (a *Adapter) countUnsentLocked() {
	for _, g := range a.groups {
		if n := len(g.pending); n > 0 {
			a.stats.lost.Add(uint64(n))
			a.log.Error().Str("group", g.info.ServiceGroupID).Int("changes", n).Msg("adapter aborted before these changes were sent")
		}
	}
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
