package subjects

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true}, {"Sales_EMEA-2", true}, {strings.Repeat("x", 64), true},
		{"", false}, {strings.Repeat("x", 65), false}, {"a.b", false}, {"a b", false},
		{"a*", false}, {"a>", false}, {"é", false}, {"a/b", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v", tt.id, got)
		}
		if err := CheckID("X", tt.id); (err == nil) != tt.want || (err != nil && !errors.Is(err, ErrMalformedID)) {
			t.Errorf("CheckID(%q) = %v", tt.id, err)
		}
	}
}

func TestSubjectsRoundTrip(t *testing.T) {
	subj := Events("acme", "acme-sales")
	if subj != "sis.v1.evt.acme.acme-sales" {
		t.Fatal(subj)
	}
	if tn, g, ok := ParseEvents(subj); !ok || tn != "acme" || g != "acme-sales" {
		t.Fatal(tn, g, ok)
	}
	for _, bad := range []string{"sis.v1.evt.acme", "sis.v1.other.a.b", "sis.v1.evt.a.b.c", "sis.v1.evt..b"} {
		if _, _, ok := ParseEvents(bad); ok {
			t.Errorf("ParseEvents(%q) accepted", bad)
		}
	}
	if kind, id, ok := ParseDirectoryKey(GroupKey("g1")); !ok || kind != "group" || id != "g1" {
		t.Fatal(kind, id)
	}
	if kind, id, ok := ParseDirectoryKey(TenantKey("t1")); !ok || kind != "tenant" || id != "t1" {
		t.Fatal(kind, id)
	}
	if TenantEvents("acme") != "sis.v1.evt.acme.>" || MsgID("w1", "acme", "g", 7) != "acme.g:7@w1" {
		t.Fatal("builders changed")
	}
}

func TestConfigValidateJoinsEveryProblem(t *testing.T) {
	c := Config{Replicas: 2, EventRetention: time.Second, DuplicateWindow: -1, MaxEventBytes: -5}
	err := c.Validate()
	for _, want := range []string{"replicas", "retention", "duplicate window", "max event bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	ev := Config{}.WithDefaults().EventsStream()
	if ev.MaxAge != 24*time.Hour || ev.Duplicates != 2*time.Minute || ev.Replicas != 1 || ev.Subjects[0] != AllEvents {
		t.Fatalf("events stream %+v", ev)
	}
}

func sampleSession() queue.Session {
	return queue.Session{CallID: "c1", PreferredAgentID: 42, MediaType: queue.MediaSMS,
		TimeEnteredQueue: time.Date(2026, 11, 25, 9, 30, 1, 123e6, time.UTC), CustomerInformation: "+447700900123",
		IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "Svenska"}, {Label: "Account", Data: "12345678"}}}
}

func TestEventRoundTrip(t *testing.T) {
	changes := []queue.Change{
		{Op: queue.OpEnqueue, CallID: "c1", Position: 3, Session: sampleSession()},
		{Op: queue.OpMove, CallID: "c1", Position: 1},
		{Op: queue.OpRemove, CallID: "c1", Cause: queue.CauseCampaignNotRunning},
		{Op: queue.OpRemove, CallID: "c1", Cause: queue.CauseSessionAllocatedToAgent,
			Session: queue.Session{MediaType: queue.MediaSMS, TimeEnteredQueue: time.Date(2026, 1, 2, 3, 1, 0, 0, time.UTC)}},
	}
	for i, c := range changes {
		in := Event{Tenant: "acme", Group: "g", Seq: 99, Epoch: 3, Time: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), Change: c}
		if i%2 == 1 {
			in.RouterTime = time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC) // a router with a clock of its own
		}
		if c.Op == queue.OpEnqueue {
			in.Change.Session.CallID = "" // events carry the CallID once
		}
		data, err := EncodeEvent(&in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := DecodeEvent(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	in := Snapshot{Tenant: "acme", Group: "g", Seq: 5, StreamSeq: 17, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Sessions: []queue.Session{sampleSession(), {CallID: "c2", MediaType: queue.MediaEmail, TimeEnteredQueue: time.Unix(0, 0).UTC()}}}
	data, err := EncodeSnapshot(&in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in.Sessions {
		in.Sessions[i].ServiceGroupID, in.Sessions[i].QueuePosition = "g", i+1
	}
	in.Sessions[1].IVRInformation = nil
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
}

func TestDirectoryAndStatusRoundTrip(t *testing.T) {
	g := Group{ServiceGroupID: "g", TenantID: "t", Name: "Sales"}
	data, _ := EncodeGroup(g)
	if back, err := DecodeGroup(data); err != nil || back != g {
		t.Fatal(back, err)
	}
	st := RouterStatus{Connected: true, Epoch: 4, Since: time.Unix(100, 0).UTC(), Updated: time.Unix(101, 0).UTC(), Adapter: "a"}
	data, _ = EncodeStatus(st)
	if back, err := DecodeStatus(data); err != nil || back != st {
		t.Fatal(back, err)
	}
	if _, err := DecodeTenant(data[:3]); !errors.Is(err, ErrSchema) {
		t.Fatalf("truncated tenant: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	e := Event{Tenant: "t", Group: "g", Seq: 1, Change: queue.Change{Op: queue.OpMove, CallID: "c", Position: 1}}
	good, _ := EncodeEvent(&e)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrSchema},
		{"truncated", good[:len(good)-2], ErrSchema},
		{"not a map", []byte{0x93, 1, 2, 3}, ErrSchema},
		{"no version", []byte{0x80}, ErrVersion},
		{"future version", []byte{0x81, 0xa1, 'v', 0x02}, ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEvent(tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if _, err := DecodeSnapshot(tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("snapshot: got %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, c := range []queue.Change{{Op: queue.OpEnqueue, CallID: "c", Session: sampleSession()}, {Op: queue.OpRemove, CallID: "c"}} {
		data, _ := EncodeEvent(&Event{Tenant: "t", Group: "g", Seq: 1, Change: c})
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data)
		if err != nil {
			return
		}
		again, err := EncodeEvent(&e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeEvent(again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
	})
}

// FuzzDecodeEvents: the batch form a gateway reads from the bus (a message
// of several changes, or one): a decoded batch re-encodes to one that
// decodes to the same events, numbered one after another.
func FuzzDecodeEvents(f *testing.F) {
	batch := []Event{{Tenant: "t", Group: "g", Seq: 7, Change: queue.Change{Op: queue.OpEnqueue, CallID: "a", Session: sampleSession()}},
		{Tenant: "t", Group: "g", Seq: 8, Change: queue.Change{Op: queue.OpRemove, CallID: "a", Cause: queue.CauseDisconnect}}}
	data, _ := EncodeEvents(batch)
	f.Add(data)
	data, _ = EncodeEvents(batch[:1])
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := DecodeEvents(data)
		if err != nil {
			return
		}
		for i := 1; i < len(events); i++ {
			if events[i].Seq != events[0].Seq+uint64(i) {
				t.Fatalf("event %d has seq %d after %d", i, events[i].Seq, events[0].Seq)
			}
		}
		again, err := EncodeEvents(events)
		if err != nil {
			return // a batch EncodeEvents refuses (empty, mixed groups) was never written by it
		}
		back, err := DecodeEvents(again)
		if err != nil || len(back) != len(events) {
			t.Fatalf("re-encoded batch: %d events, %v", len(back), err)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	data, _ := EncodeSnapshot(&Snapshot{Tenant: "t", Group: "g", Sessions: []queue.Session{sampleSession()}})
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSnapshot(data)
		if err != nil {
			return
		}
		if _, err := EncodeSnapshot(&s); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	data, _ := EncodeStatus(RouterStatus{Connected: true, Epoch: 1, Clock: &RouterClock{At: time.Now().UTC(), Rate: 60}})
	f.Add(data)
	data, _ = EncodeTenant(Tenant{TenantID: "acme", Name: "Acme"})
	f.Add(data)
	data, _ = EncodeGroup(Group{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"})
	f.Add(data)
	data, _ = EncodeLease(Lease{Adapter: "router-1", Instance: "a1b2c3", Since: time.Now().UTC()})
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodeStatus(data)
		_, _ = DecodeGroup(data)
		_, _ = DecodeTenant(data)
		if l, err := DecodeLease(data); err == nil {
			again, err := EncodeLease(l)
			if err != nil {
				t.Fatalf("a decoded lease does not encode: %v", err)
			}
			if back, err := DecodeLease(again); err != nil || !back.Since.Equal(l.Since) || back.Adapter != l.Adapter || back.Instance != l.Instance {
				t.Fatalf("lease round trip: %+v, %v; want %+v", back, err, l)
			}
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := Event{Tenant: "acme", Group: "acme-sales", Seq: 12345, Time: time.Now().UTC(), Change: queue.Change{Op: queue.OpEnqueue, CallID: "c-123456", Position: 7, Session: sampleSession()}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	data, _ := EncodeEvent(&Event{Tenant: "acme", Group: "acme-sales", Seq: 12345, Time: time.Now().UTC(), Change: queue.Change{Op: queue.OpEnqueue, CallID: "c-123456", Position: 7, Session: sampleSession()}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeRefusesLengthsPastTheData(t *testing.T) {
	for _, data := range [][]byte{
		[]byte("\x82\xa1v\x01\xa5since\xc6\xfe\xffA0"),  // bin32 of 4 GB
		[]byte("\x81\xa1v\xdd\xff\xff\xff\xff"),         // array32 of 4 G items
		[]byte("\x81\xa1s\xdb\x7f\xff\xff\xff" + "abc"), // str32 of 2 GB
		append([]byte{0x81, 0xa1, 's'}, nest(40)...),    // nested too deep
	} {
		if _, err := DecodeEvent(data); !errors.Is(err, ErrSchema) {
			t.Errorf("event %q: %v", data, err)
		}
		if _, err := DecodeStatus(data); !errors.Is(err, ErrSchema) {
			t.Errorf("status %q: %v", data, err)
		}
	}
}

func nest(n int) []byte {
	out := make([]byte, 0, n+1)
	for range n {
		out = append(out, 0x91)
	}
	return append(out, 0x01)
}

func TestEventsBatchRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	in := []Event{
		{Tenant: "t", Group: "g", Seq: 7, Epoch: 2, Time: t0, Change: queue.Change{Op: queue.OpEnqueue, CallID: "a", Position: 1, Session: sampleSession()}},
		{Tenant: "t", Group: "g", Seq: 8, Epoch: 2, Time: t0.Add(time.Millisecond), Change: queue.Change{Op: queue.OpMove, CallID: "a", Position: 2}},
		{Tenant: "t", Group: "g", Seq: 9, Epoch: 2, Time: t0.Add(2 * time.Millisecond), RouterTime: t0.Add(time.Hour), Change: queue.Change{Op: queue.OpRemove, CallID: "a", Cause: queue.CauseDisconnect,
			Session: queue.Session{MediaType: queue.MediaChat, TimeEnteredQueue: t0.Add(-time.Minute)}}},
	}
	in[0].Change.Session.CallID = ""
	data, err := EncodeEvents(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeEvents(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
	if _, err := DecodeEvent(data); !errors.Is(err, ErrSchema) {
		t.Fatalf("DecodeEvent of a batch: %v", err)
	}
	gap := []Event{in[0], in[2]}
	if _, err := EncodeEvents(gap); err == nil {
		t.Fatal("a batch with a gap was encoded")
	}
	if _, err := EncodeEvents(nil); err == nil {
		t.Fatal("an empty batch was encoded")
	}
}
