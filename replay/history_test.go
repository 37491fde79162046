package replay

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// exportRange writes the history from..to of the bus.
func (b *bus) exportRange(t *testing.T, from, to Bound) ([]byte, Trailer) {
	t.Helper()
	rec, err := NewRecorder(testCtx(t), b.js, RecordConfig{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tr, err := rec.History(testCtx(t), &buf, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), tr
}

// baseState returns the queues a capture starts from.
func baseState(t *testing.T, data []byte) map[string][]queue.Session {
	t.Helper()
	recs, _, _, err := readAll(t, data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]queue.Session{}
	for _, r := range recs {
		if r.Kind == KindEvent {
			break
		}
		if r.Kind == KindBase {
			out[r.Base.Group] = r.Base.Sessions
		}
	}
	return out
}

func streamInfo(t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(testCtx(t), subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestHistoryRanges splits the whole history at a stream sequence: the
// first part's final state is the second part's starting state, and the
// second part ends in the adapter's state.
func TestHistoryRanges(t *testing.T) {
	src := newBus(t)
	src.runSim(t, newSim(t, 3), 6000)
	want := src.adapterHash(t)
	last := streamInfo(t, src.js).State.LastSeq
	mid := last / 2

	all, trAll := src.exportRange(t, Bound{}, Bound{})
	first, trFirst := src.exportRange(t, Bound{}, Bound{Seq: mid})
	second, trSecond := src.exportRange(t, Bound{Seq: mid + 1}, Bound{})
	if trAll.Hash != want || trSecond.Hash != want {
		t.Fatalf("whole history ends in %s, second half in %s; the adapter holds %s", trAll.Hash, trSecond.Hash, want)
	}
	if got := StateHash(baseState(t, second)); got != trFirst.Hash {
		t.Fatalf("second half starts from %s, first half ends in %s", got, trFirst.Hash)
	}
	if n := trFirst.Counts.Events + trSecond.Counts.Events; n != trAll.Counts.Events || n != src.a.Stats().Published {
		t.Fatalf("events: %d + %d, whole %d", trFirst.Counts.Events, trSecond.Counts.Events, trAll.Counts.Events)
	}

	// The same split by time: the stream time of message mid+1.
	s, _ := src.js.Stream(testCtx(t), subjects.StreamEvents)
	msg, err := s.GetMsg(testCtx(t), mid+1)
	if err != nil {
		t.Fatal(err)
	}
	byTime, _ := src.exportRange(t, Bound{Time: msg.Time}, Bound{})
	if got := StateHash(baseState(t, byTime)); got != StateHash(baseState(t, second)) {
		t.Fatal("a range from a time starts elsewhere than the one from its stream sequence")
	}

	dst := newBus(t)
	dst.play(t, second, PlayConfig{Speed: -1})
	if got, _ := dst.busHash(t); got != want {
		t.Fatalf("playing the second half ends in %s, want %s", got, want)
	}
	if trAll.Counts.Bases != 9 || len(first) == 0 || len(all) == 0 {
		t.Fatalf("whole history %+v", trAll.Counts)
	}
}

// TestHistoryGone exports a range whose earlier history was purged: groups
// without a known state are named in the header, and the export still
// plays to its own trailer.
func TestHistoryGone(t *testing.T) {
	src := newBus(t)
	src.runSim(t, newSim(t, 4), 4000)
	last := streamInfo(t, src.js).State.LastSeq
	s, _ := src.js.Stream(testCtx(t), subjects.StreamEvents)
	if err := s.Purge(context.Background(), jetstream.WithPurgeSequence(last/2)); err != nil {
		t.Fatal(err)
	}
	data, tr := src.exportRange(t, Bound{Seq: last/2 + 100}, Bound{})
	x, err := Scan(bytes.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Header.Notes) == 0 || !strings.Contains(x.Header.Notes[0], "incomplete") {
		t.Fatalf("header %+v", x.Header)
	}
	dst := newBus(t)
	dst.play(t, data, PlayConfig{Speed: -1})
	if got, _ := dst.busHash(t); got != tr.Hash {
		t.Fatalf("state %s, trailer %s", got, tr.Hash)
	}
}

// TestHistoryRefusesWhatCannotBeRecorded: a range that ends before it
// starts, and a filter naming a tenant or group the bus does not hold, are
// errors, not empty captures.
func TestHistoryRefusesWhatCannotBeRecorded(t *testing.T) {
	src := newBus(t)
	src.runSim(t, newSim(t, 3), 200)
	for _, tc := range []struct {
		name     string
		filter   Filter
		from, to Bound
		want     error
	}{
		{"sequences the wrong way", Filter{}, Bound{Seq: 100}, Bound{Seq: 5}, ErrRange},
		{"times the wrong way", Filter{}, Bound{Time: time.Now()}, Bound{Time: time.Now().Add(-time.Hour)}, ErrRange},
		{"an unknown tenant", Filter{Tenants: []string{"nosuch"}}, Bound{}, Bound{}, ErrUnknownFilter},
		{"an unknown group", Filter{Groups: []string{"nosuch"}}, Bound{}, Bound{}, ErrUnknownFilter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := NewRecorder(testCtx(t), src.js, RecordConfig{Source: "test", Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if _, err := rec.History(testCtx(t), &out, tc.from, tc.to); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
