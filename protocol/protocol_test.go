package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/vmihailenco/msgpack/v5"
)

func sampleUpdates() []Update {
	t := time.Date(2026, 11, 25, 9, 30, 1, 123e6, time.UTC)
	return []Update{
		{Type: queue.UpdateAdd, Session: queue.Session{ServiceGroupID: "g", CallID: "c1", QueuePosition: 1, PreferredAgentID: 7,
			MediaType: queue.MediaVoice, TimeEnteredQueue: t, CustomerInformation: "+44 20 7946 0123", DialedNumber: "+442079460000",
			IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "Svenska \"<&>\"\n\x01"}}}},
		{Type: queue.UpdateModify, Session: queue.Session{ServiceGroupID: "g", CallID: "c2", QueuePosition: 2, MediaType: queue.MediaEmail,
			TimeEnteredQueue: time.Unix(1<<35, 5).UTC(), CustomerInformation: "ana@example.com"}},
		{Type: queue.UpdateRemove, Cause: queue.CauseCampaignNotRunning, Session: queue.Session{ServiceGroupID: "g", CallID: "c3",
			QueuePosition: 3, MediaType: queue.MediaCampaign, TimeEnteredQueue: time.Unix(100, 0).UTC(), CustomerInformation: "bad \xff utf8"}},
	}
}

func wantUpdates() []SessionUpdate {
	var out []SessionUpdate
	for _, u := range sampleUpdates() {
		s := u.Session
		info := SessionInfo{ServiceGroupID: s.ServiceGroupID, CallID: s.CallID, QueuePosition: s.QueuePosition, PreferredAgentID: s.PreferredAgentID,
			MediaType: s.MediaType.String(), TimeEnteredQueue: s.TimeEnteredQueue, CustomerInformation: s.CustomerInformation,
			DialedNumber: s.DialedNumber, IVRInformation: []IVRInfo{}}
		for _, iv := range s.IVRInformation {
			info.IVRInformation = append(info.IVRInformation, IVRInfo(iv))
		}
		out = append(out, SessionUpdate{UpdateType: u.Type.String(), Session: info, RemoveCause: u.Cause.String()})
	}
	out[2].Session.CustomerInformation = "bad \uFFFD utf8"
	return out
}

func TestSessionsUpdatedRoundTrip(t *testing.T) {
	for _, f := range []Format{JSON, Msgpack} {
		data := AppendSessionsUpdated(f, nil, "g", 42, sampleUpdates())
		if f == JSON && !json.Valid(data) {
			t.Fatalf("invalid JSON: %s", data)
		}
		m, err := DecodeMessage(f, data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Event != EventSessionsUpdated || m.ServiceGroupID != "g" || m.Seq != 42 {
			t.Fatalf("format %d: %+v", f, m)
		}
		want := wantUpdates()
		for i := range want {
			got := m.SessionUpdates[i]
			got.Session.TimeEnteredQueue = got.Session.TimeEnteredQueue.UTC()
			if f == JSON { // JSON carries milliseconds
				want[i].Session.TimeEnteredQueue = want[i].Session.TimeEnteredQueue.Truncate(time.Millisecond)
			}
			if !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("format %d update %d:\n got %+v\nwant %+v", f, i, got, want[i])
			}
		}
	}
}

func TestJSONShape(t *testing.T) {
	data := AppendSessionsUpdated(JSON, nil, "g", 1, sampleUpdates()[:1])
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	s := raw["SessionUpdates"].([]any)[0].(map[string]any)["Session"].(map[string]any)
	if s["TimeEnteredQueue"] != "2026-11-25T09:30:01.123Z" || s["MediaType"] != "Voice" {
		t.Fatalf("session %v", s)
	}
}

func TestMsgpackUsesStringsForEnums(t *testing.T) {
	data := AppendSessionsUpdated(Msgpack, nil, "g", 1, sampleUpdates()[:1])
	var raw map[string]any
	if err := msgpack.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	u := raw["SessionUpdates"].([]any)[0].(map[string]any)
	if u["UpdateType"] != "Add" || u["Session"].(map[string]any)["MediaType"] != "Voice" {
		t.Fatalf("update %v", u)
	}
	if _, ok := u["Session"].(map[string]any)["TimeEnteredQueue"].(time.Time); !ok {
		t.Fatal("time is not a msgpack timestamp")
	}
}

func TestOtherMessagesRoundTrip(t *testing.T) {
	id := int64(7)
	yes := true
	for _, f := range []Format{JSON, Msgpack} {
		cases := []struct {
			data []byte
			want Message
		}{
			{AppendInitialDataComplete(f, nil, "g", 9), Message{Event: EventInitialDataComplete, ServiceGroupID: "g", Seq: 9}},
			{AppendEvent(f, nil, EventKeepAlive), Message{Event: EventKeepAlive}},
			{AppendKeepAlive(f, nil, map[string]uint64{"g2": 7, "g1": 41, "g0": 0}), Message{Event: EventKeepAlive, Seqs: map[string]uint64{"g0": 0, "g1": 41, "g2": 7}}},
			{AppendKeepAlive(f, nil, nil), Message{Event: EventKeepAlive, Seqs: map[string]uint64{}}},
			{AppendServiceGroupRemoved(f, nil, "g"), Message{Event: EventServiceGroupRemoved, ServiceGroupID: "g"}},
			{AppendReply(f, nil, &id, &Result{Succeeded: &yes, ServiceGroupIDs: []string{"a", "b"}}), Message{ID: &id, Result: &Result{Succeeded: &yes, ServiceGroupIDs: []string{"a", "b"}}}},
			{AppendReply(f, nil, &id, nil), Message{ID: &id, Result: &Result{}}},
			{AppendReply(f, nil, &id, &Result{Succeeded: &yes, ServiceGroupID: "g"}), Message{ID: &id, Result: &Result{Succeeded: &yes, ServiceGroupID: "g"}}},
			{AppendFault(f, nil, &id, Faultf(NoLicenseFault, "all %d seats taken", 5)), Message{ID: &id, Fault: &Fault{Type: NoLicenseFault, Message: "all 5 seats taken"}}},
		}
		for _, c := range cases {
			m, err := DecodeMessage(f, c.data)
			if err != nil || !reflect.DeepEqual(m, c.want) {
				t.Fatalf("format %d: %s\n got %+v (%v)\nwant %+v", f, c.data, m, err, c.want)
			}
		}
	}
	if string(AppendReply(JSON, nil, &id, nil)) != `{"id":7,"result":{}}` {
		t.Fatalf("%s", AppendReply(JSON, nil, &id, nil))
	}
	if got := string(AppendKeepAlive(JSON, nil, map[string]uint64{"G2": 7, "G1": 41})); got != `{"event":"KeepAlive","Seqs":{"G1":41,"G2":7}}` {
		t.Fatalf("KeepAlive %s", got)
	}
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		wantOp string
		wantID int64
		fault  bool
	}{
		{"initialize", `{"op":"Initialize","id":1,"SendQueuePositionUpdates":true,"extra":{"x":1}}`, OpInitialize, 1, false},
		{"no op", `{"id":3}`, "", 3, true},
		{"not json", `hello`, "", 0, true},
		{"array", `[1,2]`, "", 0, true},
		{"wrong type keeps id", `{"id":4,"op":5}`, "", 4, true},
		{"string id", `{"id":"x","op":"Heartbeat"}`, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, fault := DecodeRequest(JSON, []byte(tt.data))
			if (fault != nil) != tt.fault {
				t.Fatalf("fault %v", fault)
			}
			if fault != nil && fault.Type != InvalidRequestFault {
				t.Fatalf("fault type %s", fault.Type)
			}
			if r.Op != tt.wantOp && fault == nil {
				t.Fatalf("op %q", r.Op)
			}
			if got := r.ID; tt.wantID != 0 && (got == nil || *got != tt.wantID) {
				t.Fatalf("id %v", got)
			}
		})
	}
	data, _ := msgpack.Marshal(map[string]any{"op": "Subscribe", "id": 2, "TenantID": "t", "ServiceGroupName": "Sales", "ResumeFromSeq": 5})
	r, fault := DecodeRequest(Msgpack, data)
	if fault != nil || r.Op != OpSubscribe || *r.ID != 2 || r.TenantID != "t" || *r.ResumeFromSeq != 5 {
		t.Fatalf("msgpack request %+v %v", r, fault)
	}
	data, _ = msgpack.Marshal(map[string]any{"op": "Subscribe", "id": 3, "TenantID": "t", "AllGroups": true, "MediaTypes": []string{"Voice", "Chat"}})
	r, fault = DecodeRequest(Msgpack, data)
	if fault != nil || !*r.AllGroups || len(r.MediaTypes) != 2 || r.MediaTypes[1] != "Chat" {
		t.Fatalf("msgpack tenant-wide request %+v %v", r, fault)
	}
	r, fault = DecodeRequest(JSON, []byte(`{"op":"Initialize","id":1,"SendQueuePositionUpdates":false,"MaxEventsPerSecond":4}`))
	if fault != nil || *r.MaxEventsPerSecond != 4 {
		t.Fatalf("capped Initialize %+v %v", r, fault)
	}
	if _, fault := DecodeRequest(Msgpack, []byte{0xc6, 0xff, 0xff, 0xff, 0xff}); fault == nil {
		t.Fatal("hostile msgpack accepted")
	}
}

func TestFaultIsAnError(t *testing.T) {
	var err error = Faultf(InvalidServiceGroupFault, "no group %q", "x")
	var f *Fault
	if !errors.As(err, &f) || f.Type != InvalidServiceGroupFault || err.Error() != `InvalidServiceGroupFault: no group "x"` {
		t.Fatal(err)
	}
}

func FuzzDecodeRequestJSON(f *testing.F) {
	f.Add([]byte(`{"op":"Subscribe","id":1,"ServiceGroupID":"g"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, fault := DecodeRequest(JSON, data)
		if fault == nil && r.Op == "" {
			t.Fatal("accepted a request without op")
		}
	})
}

func FuzzDecodeRequestMsgpack(f *testing.F) {
	data, _ := msgpack.Marshal(map[string]any{"op": "Initialize", "id": 1, "SendQueuePositionUpdates": false})
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, fault := DecodeRequest(Msgpack, data)
		if fault == nil && r.Op == "" {
			t.Fatal("accepted a request without op")
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendSessionsUpdated(Msgpack, nil, "g", 1, sampleUpdates()), true)
	f.Add(AppendSessionsUpdated(JSON, nil, "g", 1, sampleUpdates()), false)
	avg := 12.5
	st := &Statistics{At: time.Unix(1e9, 0).UTC(), Waiting: 3, WaitingByMedia: map[string]int{"Voice": 3}, Window: 900,
		Removed: map[string]int{"Disconnect": 1}, AverageWaitAllocated: &avg, ServiceLevelThreshold: 20}
	f.Add(AppendQueueStatistics(Msgpack, nil, "g", 2, st), true)
	f.Add(AppendQueueStatistics(JSON, nil, "g", 2, st), false)
	f.Fuzz(func(t *testing.T, data []byte, mp bool) {
		format := JSON
		if mp {
			format = Msgpack
		}
		_, _ = DecodeMessage(format, data)
	})
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\"\\\n<\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, out, err)
		}
	})
}

func BenchmarkSessionsUpdated(b *testing.B) {
	updates := sampleUpdates()
	for _, f := range []Format{JSON, Msgpack} {
		b.Run([]string{"json", "msgpack"}[f], func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = AppendSessionsUpdated(f, buf[:0], "acme-sales", 12345, updates)
			}
		})
	}
}

func BenchmarkDecodeSessionsUpdated(b *testing.B) {
	data := AppendSessionsUpdated(Msgpack, nil, "acme-sales", 12345, benchUpdates())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(Msgpack, data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchUpdates is sampleUpdates in the group the benchmarks encode, so that
// the sessions' ServiceGroupID matches the message's as in real traffic.
func benchUpdates() []Update {
	updates := sampleUpdates()
	for i := range updates {
		updates[i].Session.ServiceGroupID = "acme-sales"
	}
	return updates
}

// TestQueueStatisticsRoundTrip: a QueueStatistics event decodes, in both
// formats, to the figures it was made of; the JSON has §9's shape (the
// figures at the top level, nulls where a figure has no value).
func TestQueueStatisticsCarriesSeqZero(t *testing.T) {
	// a group with no change yet is at Seq 0, and says so
	if got := string(AppendQueueStatistics(JSON, nil, "g", 0, &Statistics{})); !strings.Contains(got, `"Seq":0`) {
		t.Fatalf("QueueStatistics at Seq 0: %s", got)
	}
}

func TestQueueStatisticsRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	oldest := at.Add(-212 * time.Second)
	avg, longest, sl := 41.5, 212.0, 0.71
	full := &Statistics{At: at, Waiting: 12, WaitingByMedia: map[string]int{"Voice": 9, "Chat": 3}, OldestEnteredQueue: &oldest,
		Window: 900, Entered: 140, Removed: map[string]int{"SessionAllocatedToAgent": 118, "Disconnect": 9, "Overflow": 2},
		AverageWaitAllocated: &avg, LongestWaitAllocated: &longest, ServiceLevelThreshold: 20, ServiceLevel: &sl}
	empty := &Statistics{At: at, WaitingByMedia: map[string]int{}, Window: 900, Removed: map[string]int{}, ServiceLevelThreshold: 20}
	for _, f := range []Format{JSON, Msgpack} {
		for _, st := range []*Statistics{full, empty} {
			data := AppendQueueStatistics(f, nil, "g", 77, st)
			m, err := DecodeMessage(f, data)
			want := Message{Event: EventQueueStatistics, ServiceGroupID: "g", Seq: 77, Statistics: st}
			if err != nil || !reflect.DeepEqual(m, want) {
				t.Fatalf("format %d:\n got %+v %+v (%v)\nwant %+v", f, m, m.Statistics, err, st)
			}
		}
	}
	var shape map[string]any
	if err := json.Unmarshal(AppendQueueStatistics(JSON, nil, "g", 77, empty), &shape); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"event": "QueueStatistics", "Seq": 77.0, "Waiting": 0.0, "OldestEnteredQueue": nil,
		"AverageWaitAllocated": nil, "ServiceLevel": nil, "EstimatedWait": nil, "Window": 900.0} {
		if got, ok := shape[key]; !ok || got != want {
			t.Errorf("%s: %v (present %v), want %v", key, got, ok, want)
		}
	}
	if _, ok := shape["WaitingByMedia"].(map[string]any); !ok {
		t.Errorf("WaitingByMedia %v: want an object, even empty", shape["WaitingByMedia"])
	}
}
