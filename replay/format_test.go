package replay

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// sampleCapture writes a small capture by hand: two groups, a status, six
// changes, a trailer. It returns the bytes and the events written.
func sampleCapture(t testing.TB, trailer bool) ([]byte, []subjects.Event) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Start: t0, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := Directory{Tenants: []subjects.Tenant{{TenantID: "acme", Name: "Acme"}, {TenantID: "globex", Name: "Globex"}},
		Groups: []subjects.Group{{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"}, {ServiceGroupID: "globex-chat", TenantID: "globex", Name: "Chat"}}}
	must(t, w.Directory(dir))
	must(t, w.Base(&Base{Tenant: "acme", Group: "acme-sales", Seq: 7, Time: t0, Sessions: []queue.Session{
		{CallID: "a1", MediaType: queue.MediaVoice, TimeEnteredQueue: t0.Add(-time.Minute), CustomerInformation: "+442079460001", DialedNumber: "+442079460000",
			IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "English"}}},
	}}))
	must(t, w.Base(emptyBase("globex", "globex-chat", t0)))
	must(t, w.Status(subjects.RouterStatus{Connected: true, Epoch: 3, Since: t0, Updated: t0, Adapter: "test"}))
	events := []subjects.Event{
		{Tenant: "acme", Group: "acme-sales", Seq: 8, Time: t0.Add(time.Second), Epoch: 3, Change: queue.Change{Op: queue.OpEnqueue, CallID: "a2", Position: 1,
			Session: queue.Session{PreferredAgentID: 42, MediaType: queue.MediaSMS, TimeEnteredQueue: t0.Add(time.Second), CustomerInformation: "+447700900123"}}},
		{Tenant: "globex", Group: "globex-chat", Seq: 1, Time: t0.Add(2 * time.Second), Epoch: 3, Change: queue.Change{Op: queue.OpEnqueue, CallID: "g1", Position: 1,
			Session: queue.Session{MediaType: queue.MediaChat, TimeEnteredQueue: t0.Add(2 * time.Second), CustomerInformation: "ana@example.com"}}},
		{Tenant: "acme", Group: "acme-sales", Seq: 9, Time: t0.Add(3 * time.Second), Epoch: 3, Change: queue.Change{Op: queue.OpMove, CallID: "a1", Position: 1}},
		{Tenant: "globex", Group: "globex-chat", Seq: 2, Time: t0.Add(4 * time.Second), Epoch: 3, Change: queue.Change{Op: queue.OpEnqueue, CallID: "g2", Position: 2,
			Session: queue.Session{MediaType: queue.MediaEmail, TimeEnteredQueue: t0.Add(-48 * time.Hour), CustomerInformation: strings.Repeat("x", 300)}}},
		{Tenant: "acme", Group: "acme-sales", Seq: 10, Time: t0.Add(5 * time.Second), Epoch: 3, Change: queue.Change{Op: queue.OpRemove, CallID: "a2", Cause: queue.CauseSessionAllocatedToAgent}},
		{Tenant: "globex", Group: "globex-chat", Seq: 3, Time: t0.Add(6 * time.Second), Epoch: 3, Change: queue.Change{Op: queue.OpRemove, CallID: "g1", Cause: queue.CauseDisconnect}},
	}
	for i := range events {
		must(t, w.Event(&events[i]))
	}
	if trailer {
		if _, err := w.Close(t0.Add(10*time.Second), "stopped"); err != nil {
			t.Fatal(err)
		}
	} else {
		must(t, w.Flush())
	}
	return buf.Bytes(), events
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readAll reads every record; events are copied.
func readAll(t testing.TB, data []byte, opts ReadOptions) ([]Record, []subjects.Event, *Reader, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return nil, nil, nil, err
	}
	var recs []Record
	var events []subjects.Event
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return recs, events, r, nil
		}
		if err != nil {
			return recs, events, r, err
		}
		if rec.Event != nil {
			events = append(events, *rec.Event)
		}
		recs = append(recs, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	data, want := sampleCapture(t, true)
	recs, got, r, err := readAll(t, data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Header(); h.Source != "test" || !h.Start.Equal(t0) {
		t.Fatalf("header %+v", h)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", got, want)
	}
	kinds := ""
	for _, rec := range recs {
		kinds += string(rec.Kind)
	}
	if kinds != "DBBSEEEEEET" {
		t.Fatalf("frame kinds %q", kinds)
	}
	b := recs[1].Base
	if b.Seq != 7 || len(b.Sessions) != 1 || b.Sessions[0].CallID != "a1" || b.Sessions[0].QueuePosition != 1 || b.Sessions[0].IVRInformation[0].Data != "English" {
		t.Fatalf("base %+v", b)
	}
	tr := r.Trailer()
	if tr == nil || tr.Counts.Events != 6 || tr.Counts.Enqueues != 3 || tr.Seqs["acme-sales"] != 10 || tr.Seqs["globex-chat"] != 3 || tr.Sessions != 2 {
		t.Fatalf("trailer %+v", tr)
	}
	final := map[string][]queue.Session{"acme-sales": {{CallID: "a1", MediaType: queue.MediaVoice, CustomerInformation: "+442079460001", DialedNumber: "+442079460000",
		IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "English"}}}}, "globex-chat": {{CallID: "g2", MediaType: queue.MediaEmail, CustomerInformation: strings.Repeat("x", 300)}}}
	if tr.Hash != StateHash(final) {
		t.Fatalf("trailer hash %s, want %s", tr.Hash, StateHash(final))
	}
}

func TestStateHash(t *testing.T) {
	a := []queue.Session{{CallID: "c1", MediaType: queue.MediaVoice}, {CallID: "c2", MediaType: queue.MediaChat}}
	swapped := []queue.Session{a[1], a[0]}
	shifted := []queue.Session{a[0], a[1]}
	shifted[0].TimeEnteredQueue = t0
	base := StateHash(map[string][]queue.Session{"g": a})
	tests := []struct {
		name   string
		groups map[string][]queue.Session
		same   bool
	}{
		{"empty group counts as absent", map[string][]queue.Session{"g": a, "h": nil}, true},
		{"TimeEnteredQueue left out", map[string][]queue.Session{"g": shifted}, true},
		{"order matters", map[string][]queue.Session{"g": swapped}, false},
		{"group matters", map[string][]queue.Session{"h": a}, false},
		{"media matters", map[string][]queue.Session{"g": {a[0], {CallID: "c2", MediaType: queue.MediaSMS}}}, false},
		{"split across groups", map[string][]queue.Session{"g": a[:1], "g2": a[1:]}, false},
	}
	for _, tt := range tests {
		if got := StateHash(tt.groups) == base; got != tt.same {
			t.Errorf("%s: same hash %v, want %v", tt.name, got, tt.same)
		}
	}
	if StateHash(nil) != StateHash(map[string][]queue.Session{"x": {}}) {
		t.Error("no groups and an empty group differ")
	}
}

func TestWriterRefusesGaps(t *testing.T) {
	w, err := NewWriter(io.Discard, Header{Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	e := subjects.Event{Tenant: "t", Group: "g", Seq: 1, Time: t0, Change: queue.Change{Op: queue.OpRemove, CallID: "c"}}
	if err := w.Event(&e); !errors.Is(err, ErrState) {
		t.Fatalf("event without base: %v", err)
	}
	must(t, w.Base(emptyBase("t", "g", t0)))
	e.Seq = 2
	if err := w.Event(&e); !errors.Is(err, ErrState) {
		t.Fatalf("event after a gap: %v", err)
	}
	e.Seq = 1
	if err := w.Event(&e); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "call not queued") {
		t.Fatalf("remove of an unknown call: %v", err)
	}
	if _, err := w.Close(t0, "stopped"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(t0, "stopped"); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// frameOffsets returns the offset of every frame after the header.
func frameOffsets(t *testing.T, data []byte) []int64 {
	t.Helper()
	recs, _, _, err := readAll(t, data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, r := range recs {
		offs = append(offs, r.Offset)
	}
	return offs
}

func TestDamage(t *testing.T) {
	data, _ := sampleCapture(t, true)
	offs := frameOffsets(t, data)
	ev := offs[5] // the second event
	tests := []struct {
		name    string
		damage  func([]byte) []byte
		wantErr error
		want    string // in the error
		events  int    // events read with SkipCorrupt
		spans   int
	}{
		{"cut mid-frame", func(b []byte) []byte { return b[:ev+5] }, ErrTruncated, "", 1, 1},
		{"bit flip in a body", func(b []byte) []byte { b[ev+4] ^= 0x10; return b }, ErrCorrupt, "checksum mismatch", 5, 1},
		{"bit flip in a length", func(b []byte) []byte { b[ev] ^= 0x01; return b }, ErrCorrupt, "", 5, 1},
		{"bit flip in a checksum", func(b []byte) []byte { b[offs[6]-1] ^= 0x80; return b }, ErrCorrupt, "checksum mismatch", 5, 1},
		{"zero length", func(b []byte) []byte { b[ev] = 0; return b }, ErrCorrupt, "impossible frame length", 5, 1},
		{"garbage inserted", func(b []byte) []byte { return append(b[:ev:ev], append([]byte("garbage!"), b[ev:]...)...) }, ErrCorrupt, "", 6, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.damage(bytes.Clone(data))
			_, _, _, err := readAll(t, bad, ReadOptions{})
			var cerr *CorruptError
			if !errors.As(err, &cerr) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want a CorruptError wrapping %v", err, tt.wantErr)
			}
			if cerr.Offset != ev || !strings.Contains(err.Error(), "offset "+strconv.FormatInt(ev, 10)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q: want offset %d and %q", err, ev, tt.want)
			}
			if _, err := Scan(bytes.NewReader(bad), int64(len(bad)), ReadOptions{}); !errors.Is(err, tt.wantErr) {
				t.Fatalf("scan: %v", err)
			}
			_, events, r, err := readAll(t, bad, ReadOptions{SkipCorrupt: true})
			if err != nil {
				t.Fatalf("skip corrupt: %v", err)
			}
			if len(events) != tt.events || len(r.Skipped()) != tt.spans || r.Skipped()[0].From != ev {
				t.Fatalf("skip corrupt: %d events, skipped %+v", len(events), r.Skipped())
			}
		})
	}
}

func TestNotACapture(t *testing.T) {
	data, _ := sampleCapture(t, true)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotCapture},
		{"text", []byte("{\"op\":\"enqueue\"}\n"), ErrNotCapture},
		{"signature only", []byte(Signature), ErrTruncated},
		{"other version", append([]byte(Signature), 9), ErrVersion},
		{"header cut", data[:20], ErrTruncated},
	}
	for _, tt := range tests {
		_, err := NewReader(bytes.NewReader(tt.data), int64(len(tt.data)), ReadOptions{SkipCorrupt: true})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestNoTrailer(t *testing.T) {
	data, want := sampleCapture(t, false)
	x, err := Scan(bytes.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if x.Trailer != nil || x.Events != uint64(len(want)) || x.End != int64(len(data)) {
		t.Fatalf("index %+v", x)
	}
	s, err := Inspect(bytes.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	must(t, s.WriteText(&out))
	if !strings.Contains(out.String(), "trailer:   none: the file ends at offset "+strconv.Itoa(len(data))) {
		t.Fatalf("inspect:\n%s", out.String())
	}
}

// FuzzReader feeds the reader arbitrary files: it must never panic, and
// never allocate for a length the input cannot hold (the test's memory
// would show it; lengths are checked against the input before any read).
func FuzzReader(f *testing.F) {
	good, _ := sampleCapture(f, true)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(append([]byte(Signature), FormatVersion, 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Add(append(append([]byte(Signature), FormatVersion), appendFrame(nil, []byte{'H', 0x80})...))
	f.Add(append(append([]byte(Signature), FormatVersion), appendFrame(nil, append([]byte{'E'}, 0xdd, 0xff, 0xff, 0xff, 0xff))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, skip := range []bool{false, true} {
			r, err := NewReader(bytes.NewReader(data), int64(len(data)), ReadOptions{SkipCorrupt: skip})
			if err != nil {
				continue
			}
			for range 10000 {
				if _, err := r.Read(); err != nil {
					break
				}
			}
		}
		_, _ = Inspect(bytes.NewReader(data), int64(len(data)), ReadOptions{SkipCorrupt: true})
	})
}

// FuzzEventFrame decodes arbitrary event and base bodies.
func FuzzEventFrame(f *testing.F) {
	_, events := sampleCapture(f, false)
	for i := range events {
		f.Add(appendEvent(nil, &events[i], t0))
	}
	f.Add(appendBase(nil, &Base{Tenant: "t", Group: "g", Sessions: []queue.Session{{CallID: "c"}}}, t0))
	f.Fuzz(func(t *testing.T, body []byte) {
		d := newDecoder(t0)
		var e subjects.Event
		if err := d.event(body, &e); err == nil {
			again := appendEvent(nil, &e, t0)
			var e2 subjects.Event
			if err := d.event(again, &e2); err != nil || !reflect.DeepEqual(e, e2) {
				t.Fatalf("re-encoded event differs: %v\n%+v\n%+v", err, e, e2)
			}
		}
		_, _ = d.base(body)
	})
}
