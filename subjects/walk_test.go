package subjects_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// bus is a NATS server with the bus's streams and a History on them.
type bus struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	hist *subjects.History
	ctx  context.Context
}

func newBus(t *testing.T) *bus {
	t.Helper()
	s := natstest.Server(t)
	nc, js := natstest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := subjects.Ensure(ctx, js, subjects.Config{}); err != nil {
		t.Fatal(err)
	}
	h, err := subjects.OpenHistory(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return &bus{nc: nc, js: js, hist: h, ctx: ctx}
}

// publish stores the events of one group as one message.
func (b *bus) publish(t *testing.T, events ...subjects.Event) *jetstream.PubAck {
	t.Helper()
	data, err := subjects.EncodeEvents(events)
	if err != nil {
		t.Fatal(err)
	}
	e := events[0]
	ack, err := b.js.Publish(b.ctx, subjects.Events(e.Tenant, e.Group), data,
		jetstream.WithMsgID(subjects.MsgID("test", e.Tenant, e.Group, events[len(events)-1].Seq)))
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func enqueueEvent(tenant, group string, seq uint64) subjects.Event {
	return subjects.Event{Tenant: tenant, Group: group, Seq: seq, Time: time.Now().UTC(),
		Change: queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("c%d", seq), Position: int(seq), Session: queue.Session{MediaType: queue.MediaChat}}}
}

// TestWalkReadsEveryChangeInOrder walks a group's history across several
// batches, with other groups' messages interleaved and messages that hold
// several changes, whole and by ranges of stream sequences.
func TestWalkReadsEveryChangeInOrder(t *testing.T) {
	b := newBus(t)
	var acks []uint64 // stream seq of each of g's messages
	seq := uint64(0)
	for i := range 1500 {
		b.publish(t, enqueueEvent("t", "other", uint64(i+1)))
		n := 1 + i%3
		batch := make([]subjects.Event, n)
		for j := range batch {
			seq++
			batch[j] = enqueueEvent("t", "g", seq)
		}
		acks = append(acks, b.publish(t, batch...).Sequence)
	}
	cases := []struct {
		name         string
		from, to     uint64
		first, count int // expected first message index and message count
	}{
		{"all", 1, 0, 0, 1500},
		{"from the middle", acks[700], 0, 700, 800},
		{"a closed range", acks[10], acks[1200], 10, 1191},
		{"between two messages", acks[5] + 1, acks[7], 6, 2},
		{"nothing after the end", acks[1499] + 1, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []uint64
			var seqs []uint64
			err := b.hist.Walk(b.ctx, subjects.Events("t", "g"), tc.from, tc.to, func(e *subjects.Event, streamSeq uint64) error {
				if len(got) == 0 || got[len(got)-1] != streamSeq {
					got = append(got, streamSeq)
				}
				seqs = append(seqs, e.Seq)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.count {
				t.Fatalf("%d messages, want %d", len(got), tc.count)
			}
			for i, s := range got {
				if s != acks[tc.first+i] {
					t.Fatalf("message %d: stream seq %d, want %d", i, s, acks[tc.first+i])
				}
			}
			for i := 1; i < len(seqs); i++ {
				if seqs[i] != seqs[i-1]+1 {
					t.Fatalf("change %d has Seq %d after %d", i, seqs[i], seqs[i-1])
				}
			}
		})
	}
}

// TestWalkStopsAtTheFirstError hands back the callback's error.
func TestWalkStopsAtTheFirstError(t *testing.T) {
	b := newBus(t)
	for i := range 5 {
		b.publish(t, enqueueEvent("t", "g", uint64(i+1)))
	}
	stop := errors.New("stop")
	calls := 0
	err := b.hist.Walk(b.ctx, subjects.Events("t", "g"), 1, 0, func(*subjects.Event, uint64) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

// TestSeqAt finds the first event at or after a time.
func TestSeqAt(t *testing.T) {
	b := newBus(t)
	first := b.publish(t, enqueueEvent("t", "g", 1))
	time.Sleep(20 * time.Millisecond) // two distinct store times
	mid := time.Now()
	second := b.publish(t, enqueueEvent("t", "g", 2))
	for _, tc := range []struct {
		at    time.Time
		want  uint64
		found bool
	}{{mid.Add(-time.Hour), first.Sequence, true}, {mid, second.Sequence, true}, {time.Now().Add(time.Hour), 0, false}} {
		seq, found, err := b.hist.SeqAt(b.ctx, subjects.AllEvents, tc.at)
		if err != nil || seq != tc.want || found != tc.found {
			t.Fatalf("at %s: %d %v %v, want %d %v", tc.at, seq, found, err, tc.want, tc.found)
		}
	}
}

// TestLiveCarriesOnlyStoredEvents follows a group's live subject: every
// stored event arrives once, with its stream sequence and the previous
// one's; a duplicate publish and a publish the stream refuses do not.
func TestLiveCarriesOnlyStoredEvents(t *testing.T) {
	b := newBus(t)
	sub, err := b.nc.SubscribeSync(subjects.Live("t", "g"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a1 := b.publish(t, enqueueEvent("t", "g", 1))
	b.publish(t, enqueueEvent("t", "other", 1))
	if dup := b.publish(t, enqueueEvent("t", "g", 1)); !dup.Duplicate {
		t.Fatal("the repeated publish was stored again")
	}
	data, _ := subjects.EncodeEvents([]subjects.Event{enqueueEvent("t", "g", 2)})
	_, err = b.js.Publish(b.ctx, subjects.Events("t", "g"), data, jetstream.WithExpectLastSequencePerSubject(a1.Sequence+100))
	if err == nil {
		t.Fatal("a fenced publish was stored")
	}
	a2 := b.publish(t, enqueueEvent("t", "g", 2))
	for _, want := range []struct{ seq, last, group uint64 }{{a1.Sequence, 0, 1}, {a2.Sequence, a1.Sequence, 2}} {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		last, _ := strconv.ParseUint(m.Header.Get(jetstream.LastSequenceHeader), 10, 64)
		events, err := subjects.DecodeEvents(m.Data)
		if err != nil || seq != want.seq || last != want.last || events[0].Seq != want.group {
			t.Fatalf("live message: stream seq %d last %d group seq %v (%v), want %+v", seq, last, events, err, want)
		}
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("an extra live message: %s", m.Header)
	}
}

// TestRepublishesNamesAnOldStream: a stream made before the live subjects
// is named as such, with what to do.
func TestRepublishesNamesAnOldStream(t *testing.T) {
	b := newBus(t)
	if err := b.hist.Republishes(); err != nil {
		t.Fatal(err)
	}
	cfg := subjects.Config{}.WithDefaults().EventsStream()
	cfg.RePublish = nil
	if _, err := b.js.UpdateStream(b.ctx, cfg); err != nil {
		t.Fatal(err)
	}
	h, err := subjects.OpenHistory(b.ctx, b.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Republishes(); !errors.Is(err, subjects.ErrSchema) {
		t.Fatalf("got %v", err)
	}
}
