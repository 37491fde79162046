package feed_test

import (
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sisbridge/sisbridge/router/feed"
)

// setup is a body that creates the tenant and group of the examples.
const setup = lnTenant + "\n" + lnGroup + "\n"

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestHTTPEveryOp(t *testing.T) {
	r := start(t, feed.Config{}, true)
	steps := []struct {
		line string
		want string // the event the line records
	}{
		{lnTenant, "tenant:acme:Acme Corp"},
		{lnGroup, "group:acme-sales:acme:Sales"},
		{lnEnqueue, "enqueue:acme-sales:c1@1"},
		{`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"c2","MediaType":"Chat"}`, "enqueue:acme-sales:c2@2"},
		{lnMove, "move:acme-sales:c1@1"},
		{`{"op":"move","ServiceGroupID":"acme-sales","CallID":"c1","QueuePosition":2}`, "move:acme-sales:c1@2"},
		{lnRemove, "remove:acme-sales:c1@0"},
		{lnSync, "sync:acme-sales:3"}, // remove c2, enqueue c7 and c8
		{lnLinkDn, "down:ACD maintenance"},
		{lnLinkUp, "up"},
		{lnRmGroup, "removegroup:acme-sales"},
	}
	for _, s := range steps {
		status, a := r.post(t, s.line)
		if status != http.StatusOK || a.Accepted != 1 || a.Rejected != 0 || len(a.Errors) != 0 {
			t.Fatalf("%s: %d %+v", s.line, status, a)
		}
		if ev := r.h.Events(); ev[len(ev)-1] != s.want {
			t.Fatalf("%s: last event %q, want %q", s.line, ev[len(ev)-1], s.want)
		}
	}
	if q := r.h.Queue("acme-sales"); len(q) != 0 {
		t.Errorf("queue of the removed group %v", q)
	}
	if st := r.f.Stats(); st != (feed.Stats{Accepted: uint64(len(steps))}) {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTPBadLines(t *testing.T) {
	r := start(t, feed.Config{MaxLine: 300}, true)
	if status, a := r.post(t, setup+lnEnqueue+"\n"); status != http.StatusOK || a.Accepted != 3 {
		t.Fatalf("setup: %d %+v", status, a)
	}
	tests := []struct{ name, line, want string }{
		{"bad JSON", `{"op":"enqueue",`, "bad line: malformed JSON"},
		{"unknown op", `{"op":"transfer","ServiceGroupID":"acme-sales","CallID":"c1"}`, `bad line: unknown op "transfer"`},
		{"malformed ID", `{"op":"remove","ServiceGroupID":"acme-sales","CallID":"c 1"}`, "bad line: malformed identifier"},
		{"unknown enum", `{"op":"remove","ServiceGroupID":"acme-sales","CallID":"c1","RemoveCause":"disconnect"}`, `bad line: RemoveCause: unknown member "disconnect"`},
		{"too long", `{"op":"tenant","TenantID":"acme","Name":"` + strings.Repeat("A", 300) + `"}`, "bad line: line longer than 300 bytes"},
		{"duplicate enqueue", `{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"c1"}`, "rejected: group acme-sales: call already queued"},
		{"unknown call", `{"op":"move","ServiceGroupID":"acme-sales","CallID":"c9","QueuePosition":1}`, "rejected: group acme-sales: call not queued"},
		{"impossible position", `{"op":"move","ServiceGroupID":"acme-sales","CallID":"c1","QueuePosition":5}`, "rejected: group acme-sales: impossible queue position"},
		{"unknown group", `{"op":"remove","ServiceGroupID":"nope","CallID":"c1"}`, "rejected: unknown service group"},
		{"group of unknown tenant", `{"op":"group","ServiceGroupID":"x","TenantID":"nobody"}`, "rejected: unknown service group or tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.h.Events()
			status, a := r.post(t, tt.line)
			if status != http.StatusUnprocessableEntity || a.Accepted != 0 || a.Rejected != 1 || len(a.Errors) != 1 {
				t.Fatalf("%d %+v", status, a)
			}
			if e := a.Errors[0]; e.Line != 1 || !strings.HasPrefix(e.Error, tt.want) {
				t.Errorf("error %+v, want line 1 and %q", e, tt.want)
			}
			if after := r.h.Events(); !reflect.DeepEqual(before, after) {
				t.Errorf("a bad line changed things: %q", after[len(before):])
			}
		})
	}
	if q := r.h.Queue("acme-sales"); !reflect.DeepEqual(q, []string{"c1"}) {
		t.Errorf("queue %v", q)
	}
}

func TestHTTPMixedBody(t *testing.T) {
	r := start(t, feed.Config{}, true)
	body := lines(
		lnTenant, // 1
		lnGroup,  // 2
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"a"}`, // 3
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"a"}`, // 4: duplicate
		`not json`, // 5
		``,         // 6: blank, skipped
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"b"}`,                   // 7
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"c","MediaType":"Fax"}`, // 8
		`{"op":"move","ServiceGroupID":"acme-sales","CallID":"b","QueuePosition":1}`,    // 9
	)
	status, a := r.post(t, body)
	if status != http.StatusUnprocessableEntity || a.Accepted != 5 || a.Rejected != 3 {
		t.Fatalf("%d %+v", status, a)
	}
	var got []int
	for _, e := range a.Errors {
		got = append(got, e.Line)
	}
	if !reflect.DeepEqual(got, []int{4, 5, 8}) {
		t.Errorf("error lines %v: %+v", got, a.Errors)
	}
	if q := r.h.Queue("acme-sales"); !reflect.DeepEqual(q, []string{"b", "a"}) {
		t.Errorf("queue %v", q)
	}
	if st := r.f.Stats(); st != (feed.Stats{Accepted: 5, Rejected: 3}) {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTPRefused(t *testing.T) {
	r := start(t, feed.Config{MaxBody: 1000}, true)
	big := setup + strings.Repeat(" ", 1000)
	tests := []struct {
		name, method, auth, path, body string
		status                         int
		header                         string // a header the answer must have
	}{
		{"no token", http.MethodPost, "", feed.DefaultPath, setup, 401, "WWW-Authenticate"},
		{"wrong token", http.MethodPost, "Bearer nope", feed.DefaultPath, setup, 401, "WWW-Authenticate"},
		{"token prefix", http.MethodPost, "Bearer " + testToken[:5], feed.DefaultPath, setup, 401, "WWW-Authenticate"},
		{"basic auth", http.MethodPost, "Basic " + testToken, feed.DefaultPath, setup, 401, "WWW-Authenticate"},
		{"GET", http.MethodGet, "Bearer " + testToken, feed.DefaultPath, "", 405, "Allow"},
		{"PUT", http.MethodPut, "Bearer " + testToken, feed.DefaultPath, setup, 405, "Allow"},
		{"other path", http.MethodPost, "Bearer " + testToken, "/v1/other", setup, 404, ""},
		{"body too large", http.MethodPost, "Bearer " + testToken, feed.DefaultPath, big, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := *r
			rr.url = strings.TrimSuffix(r.url, feed.DefaultPath) + tt.path
			status, a := rr.do(t, tt.method, tt.auth, tt.body)
			if status != tt.status || a.Accepted != 0 {
				t.Errorf("%d %+v, want %d", status, a, tt.status)
			}
		})
	}
	// Without Content-Length the limit applies while reading.
	req, _ := http.NewRequest(http.MethodPost, r.url, io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", "bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
		t.Errorf("chunked: %d (ContentLength %d)", resp.StatusCode, req.ContentLength)
	}
	if ev := r.h.Events(); !reflect.DeepEqual(ev, []string{"up"}) {
		t.Errorf("refused requests changed things: %q", ev)
	}
	if strings.Contains(r.log.String(), testToken[:8]) {
		t.Error("the log shows the token")
	}
}

// TestHTTPConcurrent posts from several clients at once: every line is
// applied, one at a time, in order within its request.
func TestHTTPConcurrent(t *testing.T) {
	r := start(t, feed.Config{}, true)
	if status, a := r.post(t, setup); status != http.StatusOK {
		t.Fatalf("%d %+v", status, a)
	}
	const clients, perClient = 4, 50
	var wg sync.WaitGroup
	for c := range clients {
		var b strings.Builder
		for i := range perClient {
			fmt.Fprintf(&b, `{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"k%d-%03d"}`+"\n", c, i)
		}
		wg.Go(func() {
			if status, a := r.post(t, b.String()); status != http.StatusOK || a.Accepted != perClient {
				t.Errorf("client %d: %d %+v", c, status, a)
			}
		})
	}
	wg.Wait()
	last := map[string]string{}
	for _, id := range r.h.Queue("acme-sales") {
		client := id[:strings.Index(id, "-")]
		if id < last[client] {
			t.Errorf("%s queued after %s", id, last[client])
		}
		last[client] = id
	}
	if n := len(r.h.Queue("acme-sales")); n != clients*perClient {
		t.Errorf("%d queued", n)
	}
}
