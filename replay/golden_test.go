package replay

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// goldenFrames is the encoding of goldenBodies, as docs/replay.md
// specifies it; regenerate it (only for a new format version) with:
//
//	go test ./replay -run TestFramesGolden -update
const goldenFrames = "testdata/frames.golden"

// goldenBodies encodes event and base bodies whose integers, strings and
// times take every form the encoder writes.
func goldenBodies() []byte {
	ints := []int64{0, 31, 127, 128, 255, 256, 1<<16 - 1, 1 << 16, 1<<32 - 1, 1 << 32, math.MaxInt32, -1, -32, -33,
		-128, -129, -1 << 15, -1<<15 - 1, -1 << 31, -1<<31 - 1, math.MinInt64 / 1000}
	lens := []int{0, 1, 31, 32, 255, 256, 1<<16 - 1, 1 << 16}
	var out []byte
	base := Base{Tenant: "t", Group: "g", Seq: math.MaxUint64, Time: t0.Add(-time.Hour)}
	for i, v := range ints {
		at := t0.Add(time.Duration(v) * time.Microsecond)
		n := lens[i%len(lens)]
		if i >= len(lens) {
			n = min(n, 300) // the long strings once
		}
		s := queue.Session{CallID: "c", PreferredAgentID: int(v), MediaType: queue.MediaType(i % 6), TimeEnteredQueue: at,
			CustomerInformation: strings.Repeat("x", n), DialedNumber: "\xff"}
		for j := range i % 3 {
			s.IVRInformation = append(s.IVRInformation, queue.IVRInfo{Label: strings.Repeat("l", j), Data: "d"})
		}
		e := subjects.Event{Tenant: "t", Group: "g", Seq: uint64(v), Time: at, Epoch: uint64(i), Change: queue.Change{
			Op: queue.Op(1 + i/2%3), CallID: "c", Position: int(max(v, 0) % math.MaxInt32), Session: s, Cause: queue.RemoveCause(i % 5)}}
		if e.Change.Op != queue.OpEnqueue {
			e.Change.Session = queue.Session{}
		}
		out = appendEvent(out, &e, t0)
		s.CustomerInformation = s.CustomerInformation[:min(len(s.CustomerInformation), 300)]
		base.Sessions = append(base.Sessions, s)
	}
	out = appendBase(out, &base, t0)
	return appendBase(out, emptyBase("t", "g", time.Time{}), t0)
}

func TestFramesGolden(t *testing.T) {
	got := goldenBodies()
	if *update {
		must(t, os.WriteFile(goldenFrames, got, 0o644))
	}
	want, err := os.ReadFile(goldenFrames)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the frame encoding changed: %d bytes, want %d; first difference at byte %d", len(got), len(want), i)
	}
}

// TestReencodeTestdata decodes every event and base of the committed
// capture and encodes it again: the bytes must be the ones on file.
func TestReencodeTestdata(t *testing.T) {
	data, err := os.ReadFile(testdataCapture)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fr := frameReader{ra: bytes.NewReader(data), size: int64(len(data))}
	d, origin := newDecoder(r.Header().Start), r.Header().Start
	var events, bases int
	for off := r.Offset(); off < fr.size; {
		payload, next, bad, err := fr.frameAt(off)
		if err != nil || bad != nil {
			t.Fatalf("frame at %d: %v %v", off, err, bad)
		}
		body, again := payload[1:], []byte(nil)
		switch Kind(payload[0]) {
		case KindEvent:
			var e subjects.Event
			must(t, d.event(body, &e))
			again, events = appendEvent(nil, &e, origin), events+1
		case KindBase:
			b, err := d.base(body)
			must(t, err)
			again, bases = appendBase(nil, b, origin), bases+1
		default:
			again = body
		}
		if !bytes.Equal(again, body) {
			t.Fatalf("%s frame at %d encodes again as\n% x\nnot\n% x", Kind(payload[0]), off, again, body)
		}
		off = next
	}
	if events != 2000 || bases == 0 {
		t.Fatalf("%d events, %d bases", events, bases)
	}
}
