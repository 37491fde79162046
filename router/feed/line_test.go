package feed_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router/feed"
	"github.com/sisbridge/sisbridge/subjects"
)

// The examples of docs/feed.md, one per op.
const (
	lnTenant  = `{"op":"tenant","TenantID":"acme","Name":"Acme Corp"}`
	lnGroup   = `{"op":"group","ServiceGroupID":"acme-sales","TenantID":"acme","ServiceGroupName":"Sales"}`
	lnEnqueue = `{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"c1","QueuePosition":0,"MediaType":"Voice","TimeEnteredQueue":"2026-11-25T09:00:00.000Z","CustomerInformation":"+442079460123","DialedNumber":"+442079460000","PreferredAgentID":0,"IVRInformation":[{"Label":"Language","Data":"English"}]}`
	lnMove    = `{"op":"move","ServiceGroupID":"acme-sales","CallID":"c1","QueuePosition":1}`
	lnRemove  = `{"op":"remove","ServiceGroupID":"acme-sales","CallID":"c1","RemoveCause":"SessionAllocatedToAgent"}`
	lnSync    = `{"op":"sync","ServiceGroupID":"acme-sales","Sessions":[{"CallID":"c7","MediaType":"Chat","TimeEnteredQueue":"2026-11-25T09:01:00.000Z","CustomerInformation":"ann@example.com"},{"CallID":"c8","QueuePosition":2,"MediaType":"Email","TimeEnteredQueue":"2026-11-25T09:00:00Z"}]}`
	lnLinkUp  = `{"op":"link","Up":true}`
	lnRmGroup = `{"op":"removegroup","ServiceGroupID":"acme-sales"}`
	lnLinkDn  = `{"op":"link","Up":false,"Reason":"ACD maintenance"}`
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func TestParseLine(t *testing.T) {
	enq := queue.Session{
		ServiceGroupID: "acme-sales", CallID: "c1", MediaType: queue.MediaVoice, TimeEnteredQueue: t0,
		CustomerInformation: "+442079460123", DialedNumber: "+442079460000",
		IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "English"}},
	}
	tests := []struct {
		name string
		line string
		want feed.Line
	}{
		{"tenant", lnTenant, feed.Line{Op: feed.OpTenant, Tenant: subjects.Tenant{TenantID: "acme", Name: "Acme Corp"}}},
		{"group", lnGroup, feed.Line{Op: feed.OpGroup, Group: subjects.Group{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"}}},
		{"enqueue", lnEnqueue, feed.Line{Op: feed.OpEnqueue, GroupID: "acme-sales",
			Change: queue.Change{Op: queue.OpEnqueue, CallID: "c1", Session: enq}}},
		{"move", lnMove, feed.Line{Op: feed.OpMove, GroupID: "acme-sales",
			Change: queue.Change{Op: queue.OpMove, CallID: "c1", Position: 1}}},
		{"remove", lnRemove, feed.Line{Op: feed.OpRemove, GroupID: "acme-sales",
			Change: queue.Change{Op: queue.OpRemove, CallID: "c1", Cause: queue.CauseSessionAllocatedToAgent}}},
		{"remove without cause", `{"op":"remove","ServiceGroupID":"g","CallID":"c1"}`, feed.Line{Op: feed.OpRemove, GroupID: "g",
			Change: queue.Change{Op: queue.OpRemove, CallID: "c1", Cause: queue.CauseNone}}},
		{"sync", lnSync, feed.Line{Op: feed.OpSync, GroupID: "acme-sales", Sessions: []queue.Session{
			{ServiceGroupID: "acme-sales", CallID: "c7", QueuePosition: 1, MediaType: queue.MediaChat,
				TimeEnteredQueue: t0.Add(time.Minute), CustomerInformation: "ann@example.com"},
			{ServiceGroupID: "acme-sales", CallID: "c8", QueuePosition: 2, MediaType: queue.MediaEmail, TimeEnteredQueue: t0},
		}}},
		{"sync empty", `{"op":"sync","ServiceGroupID":"g","Sessions":[]}`, feed.Line{Op: feed.OpSync, GroupID: "g", Sessions: []queue.Session{}}},
		{"link up", lnLinkUp, feed.Line{Op: feed.OpLink, Up: true}},
		{"link down", lnLinkDn, feed.Line{Op: feed.OpLink, Reason: "ACD maintenance"}},
		{"unknown fields, nulls and case-mismatched names are ignored",
			`{"op":"move","ServiceGroupID":"g","CallID":"c","queueposition":3,"QueuePosition":null,"Extra":{"x":[1]}}`,
			feed.Line{Op: feed.OpMove, GroupID: "g", Change: queue.Change{Op: queue.OpMove, CallID: "c"}}},
		{"time in another zone, finer than ms", `{"op":"enqueue","ServiceGroupID":"g","CallID":"c","TimeEnteredQueue":"2026-11-25T10:00:00.123999+01:00"}`,
			feed.Line{Op: feed.OpEnqueue, GroupID: "g", Change: queue.Change{Op: queue.OpEnqueue, CallID: "c",
				Session: queue.Session{ServiceGroupID: "g", CallID: "c", TimeEnteredQueue: t0.Add(123 * time.Millisecond)}}}},
		{"white space and CRLF", " {\"op\" : \"link\", \"Up\" : true}\r", feed.Line{Op: feed.OpLink, Up: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := feed.ParseLine([]byte(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseLineDefaults(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Millisecond)
	l, err := feed.ParseLine([]byte(`{"op":"enqueue","ServiceGroupID":"g","CallID":"c"}`))
	after := time.Now().UTC()
	if err != nil {
		t.Fatal(err)
	}
	s := l.Change.Session
	if l.Change.Position != 0 || s.MediaType != queue.MediaNone || s.IVRInformation != nil {
		t.Errorf("defaults: %+v", l.Change)
	}
	tm := s.TimeEnteredQueue
	if tm.Before(before) || tm.After(after) || tm.Location() != time.UTC || tm.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("TimeEnteredQueue %v not now (%v..%v), UTC, in ms", tm, before, after)
	}
}

func TestParseLineErrors(t *testing.T) {
	long := strings.Repeat("x", 65)
	tests := []struct {
		name, line, want string
		is               error
	}{
		{"empty", ``, "malformed JSON", nil},
		{"truncated", `{"op":"tenant"`, "malformed JSON", nil},
		{"two objects", `{"op":"link","Up":true} {}`, "malformed JSON", nil},
		{"array", `[1,2]`, "malformed JSON", nil},
		{"null", `null`, "want an object", nil},
		{"missing op", `{"TenantID":"acme"}`, "missing op", nil},
		{"op not a string", `{"op":3}`, "op: want a string, got 3", nil},
		{"unknown op", `{"op":"frobnicate"}`, `unknown op "frobnicate" (want one of tenant, group, removegroup, enqueue, move, remove, sync, link)`, nil},
		{"op case", `{"op":"Enqueue","ServiceGroupID":"g","CallID":"c"}`, `unknown op "Enqueue"`, nil},
		{"missing TenantID", `{"op":"tenant","Name":"x"}`, "missing TenantID", nil},
		{"malformed CallID", `{"op":"move","ServiceGroupID":"g","CallID":"a b"}`, `CallID "a b"`, subjects.ErrMalformedID},
		{"long group", `{"op":"move","ServiceGroupID":"` + long + `","CallID":"c"}`, "ServiceGroupID", subjects.ErrMalformedID},
		{"empty tenant of group", `{"op":"group","ServiceGroupID":"g","TenantID":""}`, "TenantID", subjects.ErrMalformedID},
		{"dotted group", `{"op":"sync","ServiceGroupID":"a.b","Sessions":[]}`, "ServiceGroupID", subjects.ErrMalformedID},
		{"unknown media", `{"op":"enqueue","ServiceGroupID":"g","CallID":"c","MediaType":"voice"}`, `MediaType: unknown member "voice" (want one of None, Chat,`, queue.ErrInvalid},
		{"media as number", `{"op":"enqueue","ServiceGroupID":"g","CallID":"c","MediaType":4}`, "MediaType: want a string, got 4", nil},
		{"unknown cause", `{"op":"remove","ServiceGroupID":"g","CallID":"c","RemoveCause":"Hangup"}`, `RemoveCause: unknown member "Hangup"`, queue.ErrInvalid},
		{"negative position", `{"op":"move","ServiceGroupID":"g","CallID":"c","QueuePosition":-1}`, "QueuePosition: want an integer >= 0, got -1", nil},
		{"fractional position", `{"op":"move","ServiceGroupID":"g","CallID":"c","QueuePosition":1.5}`, "QueuePosition: want an integer, got 1.5", nil},
		{"string position", `{"op":"move","ServiceGroupID":"g","CallID":"c","QueuePosition":"2"}`, `QueuePosition: want an integer, got "2"`, nil},
		{"negative agent", `{"op":"enqueue","ServiceGroupID":"g","CallID":"c","PreferredAgentID":-4}`, "PreferredAgentID", nil},
		{"bad time", `{"op":"enqueue","ServiceGroupID":"g","CallID":"c","TimeEnteredQueue":"yesterday"}`, "TimeEnteredQueue: want an RFC 3339 time", nil},
		{"time out of range", `{"op":"enqueue","ServiceGroupID":"g","CallID":"c","TimeEnteredQueue":"0000-01-01T00:00:00Z"}`, "out of range", nil},
		{"bad IVR", `{"op":"enqueue","ServiceGroupID":"g","CallID":"c","IVRInformation":[{"Label":1}]}`, "IVRInformation[0]", nil},
		{"sync without Sessions", `{"op":"sync","ServiceGroupID":"g"}`, "missing Sessions", nil},
		{"sync Sessions not array", `{"op":"sync","ServiceGroupID":"g","Sessions":{}}`, "Sessions: want an array", nil},
		{"sync repeated call", `{"op":"sync","ServiceGroupID":"g","Sessions":[{"CallID":"a"},{"CallID":"a"}]}`, `Sessions[1]: CallID "a" repeats Sessions[0]`, nil},
		{"sync session without CallID", `{"op":"sync","ServiceGroupID":"g","Sessions":[{}]}`, "Sessions[0]: missing CallID", nil},
		{"sync other group", `{"op":"sync","ServiceGroupID":"g","Sessions":[{"CallID":"a","ServiceGroupID":"h"}]}`, `Sessions[0]: ServiceGroupID "h" differs`, nil},
		{"sync wrong position", `{"op":"sync","ServiceGroupID":"g","Sessions":[{"CallID":"a","QueuePosition":2}]}`, "Sessions[0]: QueuePosition 2", nil},
		{"sync bad media", `{"op":"sync","ServiceGroupID":"g","Sessions":[{"CallID":"a","MediaType":"Fax"}]}`, `Sessions[0]: MediaType: unknown member "Fax"`, queue.ErrInvalid},
		{"link without Up", `{"op":"link","Reason":"x"}`, "missing Up", nil},
		{"link Up as string", `{"op":"link","Up":"true"}`, "Up: want true or false", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := feed.ParseLine([]byte(tt.line))
			if err == nil {
				t.Fatalf("accepted: %+v", l)
			}
			if !errors.Is(err, feed.ErrLine) {
				t.Errorf("%v does not wrap ErrLine", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestLineRoundTrip(t *testing.T) {
	for _, line := range []string{lnTenant, lnGroup, lnRmGroup, lnEnqueue, lnMove, lnRemove, lnSync, lnLinkUp, lnLinkDn} {
		checkRoundTrip(t, []byte(line))
	}
	b, err := json.Marshal(feed.Line{Op: "bogus"})
	if err == nil {
		t.Errorf("encoded an unknown op: %s", b)
	}
}

// checkRoundTrip checks that a line ParseLine accepts encodes to one line
// that decodes to the same Line.
func checkRoundTrip(t *testing.T, line []byte) {
	t.Helper()
	l, err := feed.ParseLine(line)
	if err != nil {
		return
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatalf("%q: accepted line does not encode: %v", line, err)
	}
	if bytes.ContainsAny(b, "\r\n") {
		t.Fatalf("%q: encoding %q spans lines", line, b)
	}
	again, err := feed.ParseLine(b)
	if err != nil {
		t.Fatalf("%q: encoding %q does not decode: %v", line, b, err)
	}
	if !reflect.DeepEqual(l, again) {
		t.Fatalf("%q: round trip through %q\n got %+v\nwant %+v", line, b, again, l)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, line := range []string{lnTenant, lnGroup, lnEnqueue, lnMove, lnRemove, lnSync, lnLinkUp, lnLinkDn,
		`{"op":"enqueue","ServiceGroupID":"g","CallID":"c","TimeEnteredQueue":"9999-12-31T23:59:59.9999999-01:00"}`,
		`{"op":"sync","ServiceGroupID":"g","Sessions":[{"CallID":"a","IVRInformation":null}]}`,
		`{"op":"tenant","TenantID":"t","Name":"\xff\u2028"}`, `null`, `{}`, ``} {
		f.Add([]byte(line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		_, err := feed.ParseLine(line)
		if err != nil && !errors.Is(err, feed.ErrLine) {
			t.Fatalf("%q: error %v does not wrap ErrLine", line, err)
		}
		checkRoundTrip(t, line)
	})
}
