package replay

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// benchCapture writes a capture of n changes over 100 groups of one
// tenant, like the router's BenchmarkAdapterThroughput: enqueues with full
// session details, and removals of the oldest once a queue holds 20.
func benchCapture(tb testing.TB, n int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Start: t0, Source: "benchmark"})
	must(tb, err)
	const groups = 100
	dir := Directory{Tenants: []subjects.Tenant{{TenantID: "bench", Name: "Bench"}}}
	for i := range groups {
		id := fmt.Sprintf("group-%d", i)
		dir.Groups = append(dir.Groups, subjects.Group{ServiceGroupID: id, TenantID: "bench", Name: id})
	}
	must(tb, w.Directory(dir))
	seqs := make([]uint64, groups)
	queued := make([][]string, groups)
	for _, g := range dir.Groups {
		must(tb, w.Base(emptyBase("bench", g.ServiceGroupID, t0)))
	}
	for i := range n {
		g := i % groups
		e := subjects.Event{Tenant: "bench", Group: dir.Groups[g].ServiceGroupID, Seq: seqs[g] + 1, Time: t0.Add(time.Duration(i) * time.Millisecond), Epoch: 1}
		if q := queued[g]; len(q) >= 20 {
			e.Change = queue.Change{Op: queue.OpRemove, CallID: q[0], Cause: queue.CauseSessionAllocatedToAgent}
			queued[g] = q[1:]
		} else {
			id := fmt.Sprintf("c%d", i)
			queued[g] = append(q, id)
			e.Change = queue.Change{Op: queue.OpEnqueue, CallID: id, Position: len(q) + 1, Session: queue.Session{
				MediaType: queue.MediaVoice, TimeEnteredQueue: e.Time, CustomerInformation: "+442079460123", DialedNumber: "+442079460000",
				IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "English"}}}}
		}
		seqs[g] = e.Seq
		must(tb, w.Event(&e))
	}
	_, err = w.Close(t0.Add(time.Duration(n)*time.Millisecond), "stopped")
	must(tb, err)
	return buf.Bytes()
}

// BenchmarkPlayMax plays a capture of b.N changes at maximum speed into a
// router adapter on an embedded NATS server with file storage, through
// loopback TCP; the clock stops once the last change is stored. Run it
// with -benchtime 200000x for the figure in docs/replay.md.
func BenchmarkPlayMax(b *testing.B) {
	data := benchCapture(b, b.N)
	p, err := NewPlayer(bytes.NewReader(data), int64(len(data)), PlayConfig{Speed: -1})
	must(b, err)
	s := natstest.Server(b)
	_, js := natstest.Connect(b, s)
	ctx := context.Background()
	a, err := router.Open(ctx, js, natstest.Logger(b).Level(3), router.Config{})
	must(b, err)
	defer a.Close(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	must(b, a.Run(ctx, p))
	must(b, a.Flush(ctx))
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "changes/s")
	if st := p.Progress(); st.Played != uint64(b.N) || st.Rejected != 0 {
		b.Fatalf("progress %+v", st)
	}
}

// BenchmarkDecode measures reading a capture's frames alone.
func BenchmarkDecode(b *testing.B) {
	data := benchCapture(b, 100000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		x, err := Scan(bytes.NewReader(data), int64(len(data)), ReadOptions{})
		if err != nil || x.Events != 100000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100000/b.Elapsed().Seconds(), "changes/s")
}

// benchEvent is an enqueue with full session details, as benchCapture
// writes them.
func benchEvent() subjects.Event {
	at := t0.Add(1234567 * time.Microsecond)
	return subjects.Event{Tenant: "bench", Group: "group-7", Seq: 4242, Time: at, Epoch: 1, Change: queue.Change{
		Op: queue.OpEnqueue, CallID: "c123456", Position: 12, Session: queue.Session{MediaType: queue.MediaVoice,
			TimeEnteredQueue: at, CustomerInformation: "+442079460123", DialedNumber: "+442079460000",
			IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "English"}}}}}
}

// BenchmarkAppendEvent measures encoding one event frame body.
func BenchmarkAppendEvent(b *testing.B) {
	e := benchEvent()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEvent(buf[:0], &e, t0)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeEventFrame measures decoding one event frame body.
func BenchmarkDecodeEventFrame(b *testing.B) {
	e := benchEvent()
	body := appendEvent(nil, &e, t0)
	d := newDecoder(t0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.event(body, &e); err != nil {
			b.Fatal(err)
		}
	}
}
