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

// rows lists a card's rows as "CallID@position".
func rows(p *page, group string) string {
	var s string
	p.eval(`Array.from(document.querySelectorAll('[data-group="`+group+`"] .row')).map(r => r.dataset.callId + '@' + r.querySelector('.pos').textContent).join(',')`, &s)
	return s
}

func waitRows(t *testing.T, p *page, group, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := rows(p, group)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s shows %q, want %q", group, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const live = `<div id="status" class="status" data-state="live"`

func TestBrowserShowsQueues(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 95*time.Second)
	e.enqueue("acme-sales", "call-2", "+442079460002", queue.MediaCallback, 1042, 61*time.Second)
	e.enqueue("acme-support", "call-3", "jane@example.org", queue.MediaEmail, 0, 150*time.Second)
	e.enqueue("globex-chat", "call-4", "+15555550104", queue.MediaChat, 0, 6*time.Minute)
	// a long queue: 15 rows, then "+6 more"
	for i := range 20 {
		e.enqueue("acme-support", fmt.Sprintf("bulk-%d", i), fmt.Sprintf("+3120555%04d", i), queue.MediaSMS, 0, time.Duration(20-i)*time.Second)
	}
	// short keep-alives: a page that did not answer them would be closed with 4008 within the test
	srv, base := e.serve(bridge.Config{KeepAlive: 300 * time.Millisecond, HeartbeatTimeout: time.Second}, nil)

	p := openPage(t, bin, base+"/")
	dom := p.waitDOM("the queues", []string{live, ">live<",
		">Acme<", ">Globex<", ">Sales<", ">Support<", ">Chat<",
		`data-call-id="call-1"`, `data-call-id="call-2"`, `data-call-id="call-3"`, `data-call-id="call-4"`, `data-call-id="bulk-13"`,
		"+442079460001", "+442079460002", "jane@example.org", "+15555550104",
		"agent 1042", `class="media media-callback">Callback<`, `class="media media-sms">SMS<`, ">+6 more<",
		`<dd id="total-groups">3</dd>`, `<dd id="total-waiting">24</dd>`})
	if strings.Contains(dom, `data-call-id="bulk-14"`) {
		t.Error("a card lists more than 15 sessions")
	}
	waitRows(t, p, "acme-sales", "call-1@1,call-2@2")
	var level, longest string
	p.eval(`document.querySelector('[data-group="globex-chat"]').dataset.level`, &level)
	p.eval(`document.querySelector('[data-group="acme-sales"] .longest').textContent`, &longest)
	if level != "alert" || !strings.HasPrefix(longest, "01:3") {
		t.Errorf("globex-chat level %q (want alert), acme-sales longest wait %q (want 01:3x)", level, longest)
	}
	p.screenshot("initial")

	// live changes: an arrival, a hang-up, a move to the front
	p.eval(`window.arrived = new Set();
		new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes)
			if (n.classList && n.classList.contains('new')) arrived.add(n.dataset.callId); })
		.observe(document.getElementById('board'), {subtree: true, childList: true}); true`, nil)
	e.enqueue("acme-sales", "call-5", "+442079460005", queue.MediaWebCallBack, 0, 0)
	waitRows(t, p, "acme-sales", "call-1@1,call-2@2,call-5@3")
	e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "call-1", Cause: queue.CauseDisconnect})
	e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: "call-5", Position: 1})
	waitRows(t, p, "acme-sales", "call-5@1,call-2@2")
	p.waitDOM("the departure", []string{">last left: Disconnect<", `<dd id="total-waiting">24</dd>`, `class="media media-webcallback">Web CB<`})
	var arrived []string
	p.eval(`Array.from(arrived)`, &arrived)
	if strings.Join(arrived, ",") != "call-5" {
		t.Errorf("rows highlighted as new: %v, want [call-5]", arrived)
	}

	// several keep-alives later the session is still there: the page answers them
	time.Sleep(2500 * time.Millisecond)
	dom = p.waitDOM("the page to stay live", []string{live}, "last close")
	if st := srv.Stats(); st.Sessions != 1 || st.Subscriptions != 3 {
		t.Errorf("gateway holds %+v, want 1 session with 3 subscriptions", st)
	}
	if strings.Contains(dom, `data-call-id="call-1"`) {
		t.Error("a removed session is still shown")
	}
	p.screenshot("live")
}

func TestBrowserRouterDisconnected(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 10*time.Second)
	e.enqueue("globex-chat", "call-2", "+15555550102", queue.MediaChat, 0, 10*time.Second)
	srv, base := e.serve(bridge.Config{}, nil)
	p := openPage(t, bin, base+"/")
	p.waitDOM("the queues", []string{live, `data-call-id="call-1"`, `data-call-id="call-2"`})

	e.Adapter.LinkDown(e.Ctx, "test cut the link")
	p.waitDOM("the router to be reported down", []string{`data-state="router"`, ">router disconnected<",
		`<div id="banner" class="banner" role="alert">`, `<dd id="total-waiting">0</dd>`}, "data-call-id")
	p.screenshot("router-disconnected")

	// the queues change while the router is away; the page shows the new state once back
	e.ApplyUnheard("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "call-1", Cause: queue.CauseSessionAllocatedToAgent})
	e.linkUp()
	p.waitDOM("the page to be live again", []string{live, `<div id="banner" class="banner" role="alert" hidden="">`,
		`data-call-id="call-2"`, `<dd id="total-waiting">1</dd>`}, `data-call-id="call-1"`)
	waitFor(t, "the page to subscribe again", func() bool { return srv.Stats().Subscriptions == 3 })
}

func TestBrowserReconnects(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-support", "call-1", "+442079460001", queue.MediaVoice, 0, 10*time.Second)
	srv, base := e.serve(bridge.Config{}, nil)
	p := openPage(t, bin, base+"/")
	p.waitDOM("the queues", []string{live, `data-call-id="call-1"`})
	first := e.seats.last()

	srv.SeatLost(first) // the gateway closes the connection with 1001
	p.waitDOM("the page to reconnect", []string{live, `data-call-id="call-1"`, "last close: 1001 license seat lost"})
	p.screenshot("reconnected")
	if second := e.seats.last(); second == first {
		t.Fatal("no new session after the close")
	}
	waitFor(t, "the new session's subscriptions", func() bool { return srv.Stats().Subscriptions == 3 })
}

func TestBrowserLogin(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 10*time.Second)
	_, base := e.serve(bridge.Config{Auth: true}, admin{})
	p := openPage(t, bin, base+"/")
	dom := p.waitDOM("the login form", []string{`data-state="login"`, `<form id="login" class="login" autocomplete="on">`})
	if strings.Contains(dom, "call-1") || strings.Contains(dom, ">Sales<") {
		t.Error("queue data shown without a login")
	}
	p.screenshot("login")

	login := func(user, pass string) {
		b, _ := json.Marshal([]string{user, pass})
		p.eval(`(([u, p]) => {
			document.getElementById('login-user').value = u;
			document.getElementById('login-pass').value = p;
			document.getElementById('login').requestSubmit();
			return true; })(`+string(b)+`)`, nil)
	}
	login("admin", "wrong")
	p.waitDOM("the login error", []string{`data-state="login"`, ">Wrong LogonID or password.<"})
	login("admin", "secret")
	// Initialize took the credentials, and so did GET /v1/groups (Basic)
	p.waitDOM("the queues", []string{live, ">Sales<", `data-call-id="call-1"`, `<form id="login" class="login" autocomplete="on" hidden="">`})
	var leftover string
	p.eval(`document.getElementById('login-pass').value + localStorage.length + sessionStorage.length + document.cookie`, &leftover)
	if leftover != "00" {
		t.Errorf("credentials left in the page or its storage: %q", leftover)
	}
}

// aheadSource is a router source whose clock runs two days ahead of the
// wall clock; it reports nothing.
type aheadSource struct{}

func (aheadSource) RouterClock() (time.Time, float64) { return time.Now().Add(48 * time.Hour), 1 }

func (aheadSource) Run(ctx context.Context, _ router.Handler) error {
	<-ctx.Done()
	return nil
}

// TestBrowserMeasuresWaitsByTheRouterClock: with a router whose clock is
// not the wall clock (the simulator), waits are its time minus
// TimeEnteredQueue, not this machine's.
func TestBrowserMeasuresWaitsByTheRouterClock(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Adapter.Run(ctx, aheadSource{}) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the router clock in use", func() bool {
		err := e.Adapter.Apply(e.Ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "ahead", Session: queue.Session{
			MediaType: queue.MediaVoice, TimeEnteredQueue: time.Now().UTC().Add(48*time.Hour - 95*time.Second)}})
		return err == nil
	})
	_, base := e.serve(bridge.Config{}, nil)
	p := openPage(t, bin, base+"/")
	p.waitDOM("the session", []string{`data-call-id="ahead"`})
	var longest string
	waitFor(t, "the wait by the router clock", func() bool {
		p.eval(`document.querySelector('[data-group="acme-sales"] .longest').textContent`, &longest)
		return strings.HasPrefix(longest, "01:3")
	})
}
