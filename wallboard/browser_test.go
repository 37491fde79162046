package wallboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
	"github.com/sisbridge/sisbridge/wallboard"
)

// env is the stack the tests drive (stacktest.Env) and the seats of the
// gateway that serve started.
type env struct {
	*stacktest.Env
	seats *seats
}

func newEnv(t *testing.T) *env { return &env{Env: stacktest.New(t), seats: &seats{}} }

// enqueue adds a session, queued for wait, at the tail of a group.
func (e *env) enqueue(group, callID, customer string, media queue.MediaType, agent int, wait time.Duration) {
	e.TB.Helper()
	e.Apply(group, queue.Change{Op: queue.OpEnqueue, CallID: callID, Session: queue.Session{
		MediaType: media, PreferredAgentID: agent, CustomerInformation: customer,
		TimeEnteredQueue: time.Now().UTC().Add(-wait)}})
}

// linkUp reports the router connected again, with its whole state.
func (e *env) linkUp() {
	e.TB.Helper()
	if err := e.Adapter.LinkUp(e.Ctx, e.State()); err != nil {
		e.TB.Fatal(err)
	}
}

// serve starts a gateway and serves it beside the wallboard, the way the
// binary mounts them; it returns the base URL.
func (e *env) serve(cfg bridge.Config, users bridge.Authenticator) (*bridge.Server, string) {
	e.TB.Helper()
	srv := e.Gateway(cfg, e.seats, users)
	mux := http.NewServeMux()
	mux.Handle("/", wallboard.Handler())
	for _, p := range []string{protocol.Path, "/v1/groups", "/healthz", "/readyz", "/metrics"} {
		mux.Handle(p, srv)
	}
	hs := httptest.NewServer(mux)
	e.TB.Cleanup(hs.Close)
	return srv, hs.URL
}

// seats never runs out; it remembers the sessions it served.
type seats struct {
	mu  sync.Mutex
	ids []string
}

func (s *seats) Acquire(_ context.Context, sessionID string) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, sessionID)
	return func(context.Context) error { return nil }, nil
}

func (s *seats) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return ""
	}
	return s.ids[len(s.ids)-1]
}

// admin is the only host administrator.
type admin struct{}

func (admin) Authenticate(_ context.Context, logonID, password string) error {
	if logonID == "admin" && password == "secret" {
		return nil
	}
	return errors.New("not a host administrator")
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	stacktest.WaitFor(t, what, cond)
}

// chromium finds the browser, or skips the test (fails with
// SIS_REQUIRE_ALL=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium or chromium-browser in PATH: the browser test needs it (Debian: apt-get install chromium)"
	if os.Getenv("SIS_REQUIRE_ALL") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newEnvWith is newEnv with a directory of the test's own.
func newEnvWith(t *testing.T, dir router.State) *env {
	return &env{Env: stacktest.NewWith(t, dir, router.Config{}), seats: &seats{}}
}

// directory makes a directory of n groups, g000 to g<n-1>, over tenants.
func directory(n int, tenants ...string) router.State {
	var st router.State
	for _, t := range tenants {
		st.Tenants = append(st.Tenants, subjects.Tenant{TenantID: t, Name: strings.ToUpper(t[:1]) + t[1:]})
	}
	for i := range n {
		t := tenants[i%len(tenants)]
		st.Groups = append(st.Groups, subjects.Group{ServiceGroupID: fmt.Sprintf("g%03d", i), TenantID: t, Name: fmt.Sprintf("Group %03d", i)})
	}
	return st
}

// remove takes a session out of a group's queue for a cause.
func (e *env) remove(group, callID string, cause queue.RemoveCause) {
	e.TB.Helper()
	e.Apply(group, queue.Change{Op: queue.OpRemove, CallID: callID, Cause: cause})
}

// served enqueues a session that waited wait and takes it out for cause:
// answered (SessionAllocatedToAgent) or abandoned (Disconnect) after wait.
func (e *env) served(group, callID string, cause queue.RemoveCause, wait time.Duration) {
	e.TB.Helper()
	e.enqueue(group, callID, "+15555550100", queue.MediaVoice, 0, wait)
	e.remove(group, callID, cause)
}

// tileView is what a tile shows.
type tileView struct {
	Waiting, Longest, SL, SLLabel, Est, Abandoned, Answered string
	Media, Foot, Level, Note                                string
	Hidden, Loading                                         bool
}

// tile reads a group's tile; ok is false when the page has none.
func tile(p *page, group string) (v tileView, ok bool) {
	p.eval(`(() => {
		const t = document.querySelector('.tile[data-group="`+group+`"]');
		if (!t) return null;
		const f = (c) => t.querySelector('.' + c + ' .fig-value').textContent;
		return {Waiting: f('waiting'), Longest: f('longest'), SL: f('sl'), SLLabel: t.querySelector('.sl .fig-label').textContent,
			Est: f('est'), Abandoned: f('abandoned'), Answered: f('answered'),
			Media: Array.from(t.querySelectorAll('.tile-media li')).map(l => l.textContent).join(','),
			Foot: t.querySelector('.tile-foot').textContent, Level: t.dataset.level || '', Note: t.querySelector('.tile-note').textContent,
			Hidden: t.hidden, Loading: t.classList.contains('loading')};
	})()`, &v)
	return v, v != (tileView{})
}

// waitTile waits until a group's tile satisfies ok, or fails showing it.
func waitTile(t *testing.T, p *page, group, what string, ok func(tileView) bool) tileView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, found := tile(p, group)
		if found && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("tile %s: waiting for %s; it shows %+v (found %v)", group, what, v, found)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tileOrder lists the groups of the tiles on the page, in order.
func tileOrder(p *page) string {
	var s string
	p.eval(`Array.from(document.querySelectorAll('.tile')).map(t => t.dataset.group).join(',')`, &s)
	return s
}

// events counts the page's received events by kind and group ("QueueStatistics acme-sales").
func events(frames []string) map[string]int {
	n := map[string]int{}
	for _, f := range frames {
		var m struct {
			Event          string `json:"event"`
			ServiceGroupID string `json:"ServiceGroupID"`
		}
		if json.Unmarshal([]byte(f), &m) == nil && m.Event != "" {
			n[m.Event+" "+m.ServiceGroupID]++
			n[m.Event]++
		}
	}
	return n
}

// detailRows lists the session list's rows as "CallID@position customer".
func detailRows(p *page) string {
	var s string
	p.eval(`Array.from(document.querySelectorAll('#detail .session')).map(r => r.dataset.callId + '@' + r.querySelector('.pos').textContent + ' ' + r.querySelector('.cust').textContent).join(',')`, &s)
	return s
}

func waitDetailRows(t *testing.T, p *page, want string) {
	t.Helper()
	waitFor(t, "the session list "+want, func() bool { return detailRows(p) == want })
}

func click(p *page, selector string) {
	p.t.Helper()
	b, _ := json.Marshal(selector)
	p.eval(`(() => { document.querySelector(`+string(b)+`).click(); return true; })()`, nil)
}

func key(p *page, k string) {
	p.t.Helper()
	b, _ := json.Marshal(k)
	p.eval(`(() => { document.dispatchEvent(new KeyboardEvent('keydown', {key: `+string(b)+`, bubbles: true})); return true; })()`, nil)
}

const live = `<div id="status" class="status" data-state="live"`

// TestBrowserTilesShowStatistics: a tile per group, fed by statistics-only
// subscriptions (no SessionsUpdated reaches the page), showing what the
// gateway's QueueStatistics say, with colours from the default thresholds,
// and following live changes.
func TestBrowserTilesShowStatistics(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 95*time.Second)
	e.enqueue("acme-sales", "call-2", "+442079460002", queue.MediaCallback, 1042, 61*time.Second)
	e.served("acme-support", "done-1", queue.CauseSessionAllocatedToAgent, 10*time.Second)
	e.served("acme-support", "done-2", queue.CauseDisconnect, 40*time.Second)
	e.served("acme-support", "done-3", queue.CauseOverflow, 5*time.Second)
	e.enqueue("globex-chat", "call-4", "+15555550104", queue.MediaChat, 0, 6*time.Minute)
	// short keep-alives: a page that did not answer them would be closed with 4008 within the test
	srv, base := e.serve(bridge.Config{KeepAlive: 300 * time.Millisecond, HeartbeatTimeout: time.Second}, nil)

	p := openPage(t, bin, base+"/")
	p.waitDOM("the tiles", []string{live, ">Sales<", ">Support<", ">Chat<", ">Acme<", ">Globex<", `<dd id="total-groups">3</dd>`})
	sales := waitTile(t, p, "acme-sales", "its two sessions", func(v tileView) bool { return v.Waiting == "2" && strings.HasPrefix(v.Longest, "01:3") })
	if sales.Media != "1 Callback,1 Voice" || sales.Level != "warn" || sales.Loading {
		t.Errorf("acme-sales tile %+v: want media 1 Callback,1 Voice and level warn (a 95 s wait is past the 60 s amber)", sales)
	}
	support := waitTile(t, p, "acme-support", "its departures", func(v tileView) bool { return v.Answered == "1" })
	if support.Abandoned != "1" || support.SL != "50%" || support.SLLabel != "SL ≤ 20 s" || support.Waiting != "0" || support.Longest != "—" ||
		!strings.Contains(support.Foot, "1 overflowed") || !strings.Contains(support.Foot, "3 entered") || support.Level != "alert" {
		t.Errorf("acme-support tile %+v: want 1 answered, 1 abandoned, SL 50%% (alert), 1 overflowed, 3 entered", support)
	}
	chat := waitTile(t, p, "globex-chat", "its long wait", func(v tileView) bool { return strings.HasPrefix(v.Longest, "06:0") })
	if chat.Level != "alert" || chat.Media != "1 Chat" {
		t.Errorf("globex-chat tile %+v: want level alert (6 min past the 3 min red) and 1 Chat", chat)
	}
	p.screenshot("light")

	// live changes reach the tiles; the longest wait ticks
	e.enqueue("acme-sales", "call-5", "+442079460005", queue.MediaWebCallBack, 0, 0)
	waitTile(t, p, "acme-sales", "the arrival", func(v tileView) bool { return v.Waiting == "3" && strings.Contains(v.Media, "1 Web callback") })
	e.remove("acme-sales", "call-1", queue.CauseDisconnect)
	after := waitTile(t, p, "acme-sales", "the hang-up", func(v tileView) bool { return v.Waiting == "2" && v.Abandoned == "1" })
	if !strings.HasPrefix(after.Longest, "01:0") {
		t.Errorf("acme-sales longest wait %q after its oldest left, want 01:0x (call-2's)", after.Longest)
	}
	p.waitDOM("the totals", []string{`<dd id="total-waiting">3</dd>`, `<dd id="total-abandoned">2</dd>`, `<dd id="total-answered">1</dd>`})

	// statistics only: no session reached the page, and the page answered every KeepAlive
	time.Sleep(2500 * time.Millisecond)
	p.waitDOM("the page to stay live", []string{live}, "last close")
	frames, _ := p.framesSince(0)
	n := events(frames)
	if n["SessionsUpdated"] != 0 || n["QueueStatistics acme-sales"] < 3 || n["InitialDataComplete"] != 3 {
		t.Errorf("the page received %v: want no SessionsUpdated, QueueStatistics for every change, 3 InitialDataComplete", n)
	}
	if st := srv.Stats(); st.Sessions != 1 || st.Subscriptions != 3 {
		t.Errorf("gateway holds %+v, want 1 session with 3 subscriptions", st)
	}
}
