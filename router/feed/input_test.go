package feed_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rs/zerolog"

	"github.com/sisbridge/sisbridge/router/feed"
)

func TestInputContinuesAfterBadLines(t *testing.T) {
	in := lines(
		lnTenant,
		lnGroup,
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"a"}`,
		`{"op":"enqueue"`, // 4: bad JSON
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"a"}`,                            // 5: duplicate
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"`+strings.Repeat("x", 100)+`"}`, // 6: too long
		"   ", // 7: blank
		`{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"b"}`,
	)
	in = strings.TrimSuffix(in, "\n") // the last line has no line end
	r := start(t, feed.Config{Input: strings.NewReader(in), InputName: "stdin", MaxLine: 90}, false)
	waitLog(t, r.log, `"message":"input finished"`)
	if st := r.f.Stats(); st != (feed.Stats{Accepted: 4, Rejected: 3}) {
		t.Errorf("stats %+v", st)
	}
	if q := r.h.Queue("acme-sales"); !reflect.DeepEqual(q, []string{"a", "b"}) {
		t.Errorf("queue %v", q)
	}
	logs := r.log.String()
	for _, n := range []int{4, 5, 6} {
		if want := fmt.Sprintf(`"level":"warn","input":"stdin","line":%d,`, n); !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if want := `"input":"stdin","lines":8,"accepted":4,"rejected":3`; !strings.Contains(logs, want) {
		t.Errorf("log lacks the summary %s:\n%s", want, logs)
	}
	// At the end of the input the feed keeps running until cancelled.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if ev := r.h.Events(); ev[0] != "up" || ev[len(ev)-1] != "down:"+feed.ReasonStopped {
		t.Errorf("events %q", ev)
	}
}

func TestLinkLines(t *testing.T) {
	no := false
	in := lines(
		lnTenant,
		`{"op":"link","Up":true,"Reason":"ignored"}`,
		`{"op":"link","Up":false}`,
		lnLinkDn,
		lnLinkUp,
		`{"op":"link","Up":false,"Reason":"bye"}`,
	)
	r := start(t, feed.Config{Input: strings.NewReader(in), StartUp: &no}, false)
	waitLog(t, r.log, `"message":"input finished"`)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	want := []string{"tenant:acme:Acme Corp", "up", "down:" + feed.ReasonDown, "down:ACD maintenance", "up", "down:bye"}
	if ev := r.h.Events(); !reflect.DeepEqual(ev, want) {
		t.Errorf("events %q, want %q", ev, want)
	}
}

func TestIdleTimeout(t *testing.T) {
	client, server := net.Pipe() // a net.Conn: Run can interrupt its Read
	defer client.Close()
	r := start(t, feed.Config{Input: server, IdleTimeout: 50 * time.Millisecond}, false)
	write := func(s string) {
		t.Helper()
		if _, err := client.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	r.h.waitFor(t, "idle link down", has("down:"+feed.ReasonIdle))
	write(setup)
	r.h.waitFor(t, "the group", has("group:acme-sales:acme:Sales"))
	ev := r.h.Events()
	want := []string{"up", "down:" + feed.ReasonIdle, "up", "tenant:acme:Acme Corp", "group:acme-sales:acme:Sales"}
	if !reflect.DeepEqual(ev[:5], want) {
		t.Errorf("events %q, want %q first", ev, want)
	}
	// A bad line shows the feed is alive but does not bring the link up;
	// a blank line does.
	r.h.waitFor(t, "idle again", func(ev []string) bool { return len(ev) >= 6 })
	write("garbage\n")
	waitStats(t, r.f, feed.Stats{Accepted: 2, Rejected: 1})
	if ev := r.h.Events(); len(ev) != 6 || ev[5] != "down:"+feed.ReasonIdle {
		t.Fatalf("events %q", ev)
	}
	write("\n")
	r.h.waitFor(t, "up after a blank line", func(ev []string) bool { return len(ev) >= 7 })
	if ev := r.h.Events(); ev[6] != "up" {
		t.Errorf("events %q", ev)
	}
	if st := r.f.Stats(); st != (feed.Stats{Accepted: 2, Rejected: 1}) {
		t.Errorf("stats %+v", st)
	}
	// Run returns although the input is still open.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRunLifecycle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := feed.New(feed.Config{Listen: ln.Addr().String(), Token: testToken}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if f.Addr() != nil {
		t.Error("Addr before Run")
	}
	if err := f.Run(context.Background(), newRecorder()); err == nil {
		t.Error("Run listened on an address in use")
	}
	if err := f.Run(context.Background(), newRecorder()); err == nil {
		t.Error("second Run accepted")
	}

	// A listener that fails stops Run with an error, the link reported down.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f2, err := feed.New(feed.Config{Listener: ln2, Token: testToken}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h := newRecorder()
	done := make(chan error, 1)
	go func() { done <- f2.Run(context.Background(), h) }()
	<-f2.Ready()
	ln2.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "feed: http:") {
			t.Errorf("Run after its listener failed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its listener failed")
	}
	if ev := h.Events(); !reflect.DeepEqual(ev, []string{"up", "down:" + feed.ReasonStopped}) {
		t.Errorf("events %q", ev)
	}

	r := start(t, feed.Config{}, true)
	if status, _ := r.post(t, setup); status != 200 {
		t.Fatal(status)
	}
	addr := r.f.Addr().String()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still listening after Run returned")
	}
}

func TestConfig(t *testing.T) {
	c := feed.Config{Listen: ":8470", Token: "t"}.WithDefaults()
	if c.Path != "/v1/feed" || c.MaxLine != 1<<20 || c.MaxBody != 64<<20 || c.InputName != "input" ||
		c.StartUp == nil || !*c.StartUp || c.IdleTimeout != 0 {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	bad := feed.Config{Listen: "nohost", Token: " t\n", Path: "v1", MaxLine: -1, MaxBody: -1, IdleTimeout: -time.Second}
	err := bad.Validate()
	for _, want := range []string{"Listen", "white space", "Path", "MaxLine", "MaxBody", "IdleTimeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want a problem with %s", err, want)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 6 {
		t.Errorf("want 6 joined errors: %v", err)
	}
	for _, c := range []feed.Config{{}, {Listen: "127.0.0.1:0"}} {
		if _, err := feed.New(c, zerolog.Nop()); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}

// waitStats waits until the feed's counts are want.
func waitStats(t *testing.T, f *feed.Feed, want feed.Stats) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for f.Stats() != want {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", f.Stats(), want)
		}
		<-tick.C
	}
}

// waitLog waits until the log holds s.
func waitLog(t *testing.T, log *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %s:\n%s", s, log.String())
		}
		<-tick.C
	}
}

func TestMaxLine(t *testing.T) {
	big := `{"op":"tenant","TenantID":"big","Name":"` + strings.Repeat("n", 200<<10) + `"}` // longer than the read buffer
	tests := []struct {
		name    string
		maxLine int
		in      string
		want    feed.Stats
	}{
		{"exactly MaxLine", len(lnLinkUp), lnLinkUp + "\n" + lnLinkUp, feed.Stats{Accepted: 2}},
		{"CRLF not counted", len(lnLinkUp), lnLinkUp + "\r\n" + lnLinkUp + "\r\n", feed.Stats{Accepted: 2}},
		{"one byte over", len(lnLinkUp), lnLinkUp + " \n" + lnLinkUp + "\n", feed.Stats{Accepted: 1, Rejected: 1}},
		{"over, last line", len(lnLinkUp), lnLinkUp + "\n" + lnLinkUp + " ", feed.Stats{Accepted: 1, Rejected: 1}},
		{"big line, default MaxLine", 0, big + "\n" + lnTenant + "\n", feed.Stats{Accepted: 2}},
		{"big line over MaxLine", 100 << 10, big + "\n" + lnTenant + "\n", feed.Stats{Accepted: 1, Rejected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, feed.Config{Input: strings.NewReader(tt.in), MaxLine: tt.maxLine}, false)
			waitLog(t, r.log, `"message":"input finished"`)
			if st := r.f.Stats(); st != tt.want {
				t.Errorf("stats %+v, want %+v", st, tt.want)
			}
		})
	}
}

func TestInputReadError(t *testing.T) {
	in := io.MultiReader(strings.NewReader(lnTenant+"\n"+`{"op":"link",`), iotest.ErrReader(errors.New("disk gone")))
	r := start(t, feed.Config{Input: in, InputName: "acd.ndjson"}, true)
	waitLog(t, r.log, `"message":"input finished"`)
	logs := r.log.String()
	for _, want := range []string{`"level":"error","input":"acd.ndjson","line":2,"error":"disk gone"`, `"why":"read error: disk gone"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if st := r.f.Stats(); st != (feed.Stats{Accepted: 1}) {
		t.Errorf("stats %+v", st)
	}
	// HTTP goes on.
	if status, a := r.post(t, lnGroup); status != 200 || a.Accepted != 1 {
		t.Errorf("%d %+v", status, a)
	}
}

// TestBlockedInput: an input whose Read cannot be interrupted (like stdin on
// a terminal) holds Run up for at most 5 s, and what it reads afterwards is
// not applied.
func TestBlockedInput(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pw.Close()
	r := start(t, feed.Config{Input: pr, InputName: "pipe"}, false)
	if _, err := pw.Write([]byte(lnTenant + "\n")); err != nil {
		t.Fatal(err)
	}
	waitStats(t, r.f, feed.Stats{Accepted: 1})
	began := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 8*time.Second {
		t.Errorf("Run took %v to return", d)
	}
	before := r.h.Events()
	if _, err := pw.Write([]byte(lnGroup + "\n")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, r.log, `"why":"feed stopping"`)
	if after := r.h.Events(); !reflect.DeepEqual(before, after) || r.f.Stats() != (feed.Stats{Accepted: 1}) {
		t.Errorf("a line read after Run returned was applied: %q", after)
	}
	if !strings.Contains(r.log.String(), "input read still blocked at shutdown") {
		t.Error("no warning about the blocked input")
	}
}
