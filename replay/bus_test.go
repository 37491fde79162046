package replay

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/sim"
	"github.com/sisbridge/sisbridge/subjects"
)

// simStart is the simulated time of every test capture: a Wednesday
// morning, when the simulated contact centre is busy.
var simStart = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// bus is a NATS server with a router adapter on it.
type bus struct {
	js jetstream.JetStream
	a  *router.Adapter
}

func newBus(t testing.TB) *bus {
	t.Helper()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	a, err := router.Open(testCtx(t), js, natstest.Logger(t).Level(3), router.Config{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	return &bus{js: js, a: a}
}

// runSim runs the simulator into the bus's adapter for n changes and waits
// until they are stored.
func (b *bus) runSim(t testing.TB, s *sim.Sim, n int) {
	t.Helper()
	ctx := testCtx(t)
	if err := b.a.Run(ctx, limited{s, n}); err != nil {
		t.Fatal(err)
	}
	if err := b.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// limited runs a Sim for n changes: Sim.Run stops by itself at MaxChanges,
// which is fixed at New, so each run gets a context that ends with it.
type limited struct {
	s *sim.Sim
	n int
}

func (l limited) Run(ctx context.Context, h router.Handler) error {
	c := &counting{Handler: h, left: l.n}
	ctx, c.stop = context.WithCancel(ctx)
	defer c.stop()
	return l.s.Run(ctx, c)
}

// counting cancels its run after a number of accepted changes, at the end
// of the simulated event that reached it.
type counting struct {
	router.Handler
	left int
	stop context.CancelFunc
}

func (c *counting) Apply(ctx context.Context, group string, ch queue.Change) error {
	err := c.Handler.Apply(ctx, group, ch)
	if c.left--; c.left == 0 {
		c.stop()
	}
	return err
}

func newSim(t testing.TB, seed uint64) *sim.Sim {
	t.Helper()
	return newSimConfig(t, sim.Config{Seed: seed, Speed: -1, Start: simStart})
}

func newSimConfig(t testing.TB, cfg sim.Config) *sim.Sim {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// groupIDs lists the groups of the bus's directory.
func (b *bus) groupIDs(t testing.TB) []string {
	t.Helper()
	kv, err := b.js.KeyValue(testCtx(t), subjects.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	d, err := subjects.ReadDirectory(testCtx(t), kv)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range d.Groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// adapterHash is StateHash of the adapter's queues.
func (b *bus) adapterHash(t testing.TB) string {
	t.Helper()
	groups := map[string][]queue.Session{}
	for _, id := range b.groupIDs(t) {
		_, sessions, _ := b.a.Group(id)
		groups[id] = sessions
	}
	return StateHash(groups)
}

// busHash is StateHash of every group as a gateway would load it.
func (b *bus) busHash(t testing.TB) (string, map[string][]queue.Session) {
	t.Helper()
	ctx := testCtx(t)
	h, err := subjects.OpenHistory(ctx, b.js)
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := b.js.KeyValue(ctx, subjects.BucketDirectory)
	d, err := subjects.ReadDirectory(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]queue.Session{}
	for id, g := range d.Groups {
		st, err := h.Load(ctx, g.TenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		groups[id] = st.Queue.Sessions()
	}
	return StateHash(groups), groups
}

// recording is a live recording running in the background.
type recording struct {
	rec    *Recorder
	buf    bytes.Buffer
	cancel context.CancelFunc
	done   chan error
	tr     Trailer
}

func startRecording(t testing.TB, js jetstream.JetStream, cfg RecordConfig) *recording {
	t.Helper()
	rec, err := NewRecorder(testCtx(t), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	r := &recording{rec: rec, cancel: cancel, done: make(chan error, 1)}
	go func() {
		tr, err := rec.Live(ctx, &r.buf)
		r.tr = tr
		r.done <- err
	}()
	t.Cleanup(func() { r.cancel() })
	return r
}

// stopWhenCaughtUp waits until the recording holds every change the
// adapter made to the groups it records, then stops it.
func (r *recording) stopWhenCaughtUp(t testing.TB, b *bus, groups []string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !r.caughtUp(b, groups) {
		if time.Now().After(deadline) {
			t.Fatalf("recording did not catch up: %+v", r.rec.Progress())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	return r.buf.Bytes()
}

func (r *recording) caughtUp(b *bus, groups []string) bool {
	p := r.rec.Progress()
	for _, id := range groups {
		seq, _, _ := b.a.Group(id)
		if got, ok := p.Seqs[id]; seq > 0 && (!ok || got != seq) {
			return false
		}
	}
	return true
}

// waitReady waits until the recording has written the base of n groups.
func (r *recording) waitReady(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.rec.Progress().Bases < uint64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("recording not ready: %+v", r.rec.Progress())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recordSim makes a capture of the simulator: warmup changes first, then a
// live recording of the next changes. With overlap the simulator starts
// right away, while the recording loads its bases.
func recordSim(t testing.TB, seed uint64, warmup, changes int, overlap bool) (data []byte, src *bus) {
	t.Helper()
	return recordSimConfig(t, newSim(t, seed), warmup, changes, overlap)
}

func recordSimConfig(t testing.TB, s *sim.Sim, warmup, changes int, overlap bool) (data []byte, src *bus) {
	t.Helper()
	src = newBus(t)
	src.runSim(t, s, warmup)
	groups := src.groupIDs(t)
	r := startRecording(t, src.js, RecordConfig{Source: "test"})
	if !overlap {
		r.waitReady(t, len(groups))
	}
	src.runSim(t, s, changes)
	return r.stopWhenCaughtUp(t, src, groups), src
}

// play plays data into the bus's adapter and waits until every change is
// stored.
func (b *bus) play(t testing.TB, data []byte, cfg PlayConfig) *Player {
	t.Helper()
	p, err := NewPlayer(bytes.NewReader(data), int64(len(data)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := b.a.Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := b.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

func trailerOf(t testing.TB, data []byte) *Trailer {
	t.Helper()
	x, err := Scan(bytes.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if x.Trailer == nil {
		t.Fatal("no trailer")
	}
	return x.Trailer
}
