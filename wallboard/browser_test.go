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
func chromium(t testing.TB) string {
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
func newEnvWith(t testing.TB, dir router.State) *env {
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

// TestBrowserSessionListOnClick: a click on a tile lists the group's
// sessions in queue order, customer numbers masked, waits ticking, and the
// departures with their causes in words; closing it goes back to
// statistics only. With mask=off the numbers are shown whole.
func TestBrowserSessionListOnClick(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 95*time.Second)
	e.enqueue("acme-sales", "call-2", "jane@example.org", queue.MediaEmail, 1042, 61*time.Second)
	e.enqueue("acme-sales", "call-3", "+442079460003", queue.MediaChat, 0, 5*time.Second)
	e.enqueue("acme-support", "call-9", "+442079460009", queue.MediaVoice, 0, 5*time.Second)
	_, base := e.serve(bridge.Config{}, nil)
	p := openPage(t, bin, base+"/")
	waitTile(t, p, "acme-sales", "its sessions", func(v tileView) bool { return v.Waiting == "3" })
	if _, n := p.framesSince(0); n == 0 {
		t.Fatal("no WebSocket frame recorded")
	}
	if frames, _ := p.framesSince(0); events(frames)["SessionsUpdated"] != 0 {
		t.Fatalf("sessions reached the page before any tile was opened: %v", events(frames))
	}

	click(p, `.tile[data-group="acme-sales"]`)
	waitDetailRows(t, p, "call-1@1 +•••0001,call-2@2 j•••@example.org,call-3@3 +•••0003")
	dom := p.dom()
	for _, secret := range []string{"+442079460001", "jane@example.org", "+442079460003"} {
		if strings.Contains(dom, secret) {
			t.Errorf("the page shows %s unmasked", secret)
		}
	}
	var wait string
	p.eval(`document.querySelector('#detail .session[data-call-id="call-1"] .wait').textContent`, &wait)
	if !strings.HasPrefix(wait, "01:3") {
		t.Errorf("call-1 has waited %q, want 01:3x", wait)
	}

	// departures in words; positions follow
	e.remove("acme-sales", "call-1", queue.CauseSessionAllocatedToAgent)
	e.remove("acme-sales", "call-3", queue.CauseDisconnect)
	waitDetailRows(t, p, "call-2@1 j•••@example.org")
	p.waitDOM("the departures", []string{">answered after 01:3", ">abandoned after 00:0", "+•••0003"})
	e.enqueue("acme-sales", "call-4", "+442079460004", queue.MediaSMS, 0, 0)
	waitDetailRows(t, p, "call-2@1 j•••@example.org,call-4@2 +•••0004")
	p.screenshot("detail")

	// closed: statistics only again; later changes bring no sessions
	key(p, "Escape")
	waitFor(t, "the list closed", func() bool {
		var hidden bool
		p.eval(`document.getElementById('detail').hidden`, &hidden)
		return hidden
	})
	waitFor(t, "statistics only again", func() bool {
		frames, _ := p.framesSince(0)
		return events(frames)["InitialDataComplete acme-sales"] == 3 // first, opened, closed
	})
	_, mark := p.framesSince(0)
	e.enqueue("acme-sales", "call-5", "+442079460005", queue.MediaVoice, 0, 0)
	waitTile(t, p, "acme-sales", "the new arrival", func(v tileView) bool { return v.Waiting == "3" })
	if frames, _ := p.framesSince(mark); events(frames)["SessionsUpdated"] != 0 {
		t.Errorf("sessions reached the page after the list was closed: %v", events(frames))
	}

	// another tile's list, unmasked on request
	q := openPage(t, bin, base+"/?mask=off")
	waitTile(t, q, "acme-support", "its session", func(v tileView) bool { return v.Waiting == "1" })
	click(q, `.tile[data-group="acme-support"]`)
	waitDetailRows(t, q, "call-9@1 +442079460009")
}

// TestBrowserSettingsFromTheURL: the groups and tenants to show, their
// order, the colour thresholds and the theme come from the URL; settings
// it cannot read, and groups not in the directory, are named on the page;
// the settings dialog changes them in place and writes them to the URL.
func TestBrowserSettingsFromTheURL(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 40*time.Second)
	e.enqueue("acme-sales", "call-2", "+442079460002", queue.MediaVoice, 0, 10*time.Second)
	e.enqueue("globex-chat", "call-3", "+15555550103", queue.MediaChat, 0, 10*time.Second)
	srv, base := e.serve(bridge.Config{}, nil)

	cases := []struct {
		query, order string
		notice       []string
	}{
		{"?groups=globex-chat,Sales", "globex-chat,acme-sales", nil},
		{"?tenants=acme", "acme-sales,acme-support", nil},
		{"?tenants=Globex,acme&groups=support,CHAT", "acme-support,globex-chat", nil},
		{"?groups=acme-sales,nope&wait=abc&color=red&sl=50,80", "acme-sales",
			[]string{"Not in the directory: nope", "wait: two numbers (s) are needed", `unknown setting "color"`, "sl: amber (50) must come above red (80)"}},
	}
	for _, c := range cases {
		p := openPage(t, bin, base+"/"+c.query)
		p.waitDOM("the tiles of "+c.query, []string{live})
		waitFor(t, "tiles "+c.order+" for "+c.query, func() bool { return tileOrder(p) == c.order })
		var notice string
		p.eval(`document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent`, &notice)
		for _, want := range c.notice {
			if !strings.Contains(notice, want) {
				t.Errorf("%s: notice %q lacks %q", c.query, notice, want)
			}
		}
		if len(c.notice) == 0 && notice != "" {
			t.Errorf("%s: notice %q, want none", c.query, notice)
		}
	}
	waitFor(t, "the pages' subscriptions", func() bool { return srv.Stats().Subscriptions == 2+2+2+1 })

	// thresholds and theme: waiting 2 is red from 2, the longest wait (40 s
	// at the start of the test, more on a slow machine) amber from 30
	p := openPage(t, bin, base+"/?groups=acme-sales&waiting=1,2&wait=30,600&theme=dark")
	v := waitTile(t, p, "acme-sales", "its figures", func(v tileView) bool { return v.Waiting == "2" && v.Longest != "—" && v.Longest >= "00:40" })
	var levels, background string
	p.eval(`['waiting', 'longest'].map(c => document.querySelector('.tile .' + c).dataset.level).join(',')`, &levels)
	p.eval(`getComputedStyle(document.body).backgroundColor`, &background)
	if levels != "alert,warn" || v.Level != "alert" || background != "rgb(13, 17, 23)" {
		t.Errorf("levels %q (tile %q), background %q: want alert,warn (alert) on the dark background", levels, v.Level, background)
	}
	p.screenshot("dark")

	// the dialog: amber from 3 waiting, red from 5; theme light
	click(p, "#settings-open")
	p.eval(`(() => { const f = document.querySelector('#settings form');
		f.elements['waiting-warn'].value = '3'; f.elements['waiting-alert'].value = '5'; f.elements.theme.value = 'light';
		f.requestSubmit(f.querySelector('button[value="apply"]')); return true; })()`, nil)
	var search string
	waitFor(t, "the new settings in the URL", func() bool {
		p.eval(`location.search`, &search)
		return strings.Contains(search, "waiting=3,5")
	})
	if search != "?groups=acme-sales&theme=light&wait=30,600&waiting=3,5" {
		t.Errorf("URL after the dialog: %q, want every setting that is not a default, and only those", search)
	}
	p.eval(`getComputedStyle(document.body).backgroundColor`, &background)
	v, _ = tile(p, "acme-sales")
	if background != "rgb(243, 245, 248)" || v.Level != "warn" {
		t.Errorf("after the dialog: background %q, tile level %q; want light and warn (the 40 s wait; 2 waiting is below 3)", background, v.Level)
	}
	// a setting the dialog cannot take is refused there, the page unchanged
	click(p, "#settings-open")
	var problem string
	p.eval(`(() => { const f = document.querySelector('#settings form');
		f.elements['wait-warn'].value = '90'; f.elements['wait-alert'].value = '10';
		f.requestSubmit(f.querySelector('button[value="apply"]'));
		return document.querySelector('.settings-problems').textContent; })()`, &problem)
	if !strings.Contains(problem, "wait: amber (90) must come below red (10)") {
		t.Errorf("the dialog says %q of wait=90,10", problem)
	}
}

// pageOf reads the board's paging: the page shown, how many, and which
// tiles are visible and whether each lies inside the window.
type pageOf struct {
	Page, Pages int
	Visible     []string
	Inside      bool
}

func paging(p *page) pageOf {
	var v pageOf
	p.eval(`(() => {
		const b = document.getElementById('board');
		const vis = Array.from(document.querySelectorAll('.tile')).filter(t => !t.hidden);
		const inside = vis.every(t => { const r = t.getBoundingClientRect();
			return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5 && r.right <= innerWidth + 0.5; });
		return {Page: +b.dataset.page, Pages: +b.dataset.pages, Visible: vis.map(t => t.dataset.group), Inside: inside};
	})()`, &v)
	return v
}

// TestBrowserFitsOrRotates: 100 groups fit one 1920×1080 screen, every
// tile inside it; on a small screen the tiles are split into pages that
// rotate (every group on exactly one page); rotate=0 scrolls instead.
func TestBrowserFitsOrRotates(t *testing.T) {
	bin := chromium(t)
	e := newEnvWith(t, directory(100, "acme", "globex", "initech"))
	_, base := e.serve(bridge.Config{}, nil)

	wall := openPageSized(t, bin, base+"/", 1920, 1080)
	wall.waitDOM("the tiles", []string{live, `<dd id="total-groups">100</dd>`})
	waitFor(t, "every tile's figures", func() bool {
		var loading int
		wall.eval(`document.querySelectorAll('.tile.loading').length`, &loading)
		return loading == 0
	})
	if v := paging(wall); v.Pages != 1 || len(v.Visible) != 100 || !v.Inside {
		t.Errorf("100 groups at 1920×1080: %d pages, %d tiles visible, all inside: %v", v.Pages, len(v.Visible), v.Inside)
	}
	wall.screenshot("100-groups")

	small := openPageSized(t, bin, base+"/?rotate=1", 800, 500)
	small.waitDOM("the tiles", []string{live, `<dd id="total-groups">100</dd>`, `<span id="pager-text">page 1 of`})
	seen := map[string]int{}
	first := paging(small)
	if first.Pages < 2 || !first.Inside {
		t.Fatalf("100 groups at 800×500: %+v, want pages with every tile inside the window", first)
	}
	for page := 1; page <= first.Pages; page++ {
		var v pageOf
		waitFor(t, fmt.Sprintf("page %d of %d", page, first.Pages), func() bool { v = paging(small); return v.Page == page })
		if !v.Inside {
			t.Errorf("page %d: a tile lies outside the window", page)
		}
		for _, g := range v.Visible {
			seen[g]++
		}
	}
	if len(seen) != 100 {
		t.Errorf("the pages showed %d groups, want 100", len(seen))
	}
	for g, n := range seen {
		if n != 1 {
			t.Errorf("group %s on %d pages", g, n)
		}
	}
	small.screenshot("paged")

	scroll := openPageSized(t, bin, base+"/?rotate=0", 800, 500)
	scroll.waitDOM("the tiles", []string{live, `<dd id="total-groups">100</dd>`, `<div id="pager" class="pager" hidden="">`})
	if v := paging(scroll); v.Pages != 1 || len(v.Visible) != 100 {
		t.Errorf("rotate=0: %+v, want every tile on one scrolling page", v)
	}
}

// TestBrowserRouterDisconnected: where the tiles were, the page says the
// router is down and why (the adapter's reason); once it is back, the
// figures are the router's again.
func TestBrowserRouterDisconnected(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 10*time.Second)
	e.enqueue("globex-chat", "call-2", "+15555550102", queue.MediaChat, 0, 10*time.Second)
	srv, base := e.serve(bridge.Config{}, nil)
	p := openPage(t, bin, base+"/")
	waitTile(t, p, "acme-sales", "its session", func(v tileView) bool { return v.Waiting == "1" })

	e.Adapter.LinkDown(e.Ctx, "test cut the link")
	p.waitDOM("the router to be reported down", []string{`data-state="router"`, ">router disconnected<",
		`<section id="down" class="down" role="alert">`, ">test cut the link (since 20", "Queues unknown since "})
	var boardHidden bool
	p.eval(`document.getElementById('board').hidden`, &boardHidden)
	if !boardHidden {
		t.Error("the tiles are shown while the router is down")
	}
	p.screenshot("router-disconnected")

	// the queues change while the router is away; the page shows the new state once back
	e.ApplyUnheard("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "call-1", Cause: queue.CauseSessionAllocatedToAgent})
	e.linkUp()
	p.waitDOM("the page to be live again", []string{live, `<section id="down" class="down" role="alert" hidden="">`})
	waitTile(t, p, "acme-sales", "the router's state", func(v tileView) bool { return v.Waiting == "0" })
	waitTile(t, p, "globex-chat", "the router's state", func(v tileView) bool { return v.Waiting == "1" })
	waitFor(t, "the page to subscribe again", func() bool { return srv.Stats().Subscriptions == 3 })
}

func TestBrowserReconnects(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-support", "call-1", "+442079460001", queue.MediaVoice, 0, 10*time.Second)
	srv, base := e.serve(bridge.Config{}, nil)
	p := openPage(t, bin, base+"/")
	waitTile(t, p, "acme-support", "its session", func(v tileView) bool { return v.Waiting == "1" })
	first := e.seats.last()

	srv.SeatLost(first) // the gateway closes the connection with 1001
	p.waitDOM("the page to reconnect", []string{live, "last close: 1001 license seat lost"})
	waitTile(t, p, "acme-support", "its session again", func(v tileView) bool { return v.Waiting == "1" && !v.Loading })
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
	if strings.Contains(dom, ">Sales<") {
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
	p.waitDOM("the tiles", []string{live, ">Sales<", `<form id="login" class="login" autocomplete="on" hidden="">`})
	waitTile(t, p, "acme-sales", "its session", func(v tileView) bool { return v.Waiting == "1" })
	var leftover string
	p.eval(`document.getElementById('login-pass').value + localStorage.length + sessionStorage.length + document.cookie + location.search`, &leftover)
	if leftover != "00" {
		t.Errorf("credentials left in the page, its storage or its URL: %q", leftover)
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
	waitTile(t, p, "acme-sales", "the wait by the router clock", func(v tileView) bool { return strings.HasPrefix(v.Longest, "01:3") })
	click(p, `.tile[data-group="acme-sales"]`)
	var wait string
	waitFor(t, "the session's wait by the router clock", func() bool {
		p.eval(`(document.querySelector('#detail .session .wait') || {}).textContent || ''`, &wait)
		return strings.HasPrefix(wait, "01:3")
	})
}

// TestBrowserFormatting runs the page's own modules in the browser: the
// masking of customer data, causes and media in words, durations, and the
// settings read from and written to a URL.
func TestBrowserFormatting(t *testing.T) {
	bin := chromium(t)
	hs := httptest.NewServer(wallboard.Handler())
	t.Cleanup(hs.Close)
	p := openPage(t, bin, hs.URL+"/format.js") // a page of the origin, without the app
	call := func(module, expr string) string {
		t.Helper()
		var s string
		p.eval(`import('/`+module+`').then(m => JSON.stringify(`+expr+`))`, &s)
		return s
	}
	for _, c := range []struct{ module, expr, want string }{
		{"format.js", `m.mask('+442079460001')`, `"+•••0001"`},
		{"format.js", `m.mask('0044 20 7946 0001')`, `"•••0001"`},
		{"format.js", `m.mask('jane.doe@example.org')`, `"j•••@example.org"`},
		{"format.js", `m.mask('Jane Doe')`, `"J•••"`},
		{"format.js", `m.mask('1234')`, `"1•••"`},
		{"format.js", `m.mask('')`, `""`},
		{"format.js", `m.mask(undefined)`, `""`},
		{"format.js", `['SessionAllocatedToAgent', 'Disconnect', 'Overflow', 'ServiceGroupClosed', 'CallTransferred', 'SessionFailed', 'CampaignNotRunning', 'None', 'Novel'].map(m.cause)`,
			`["answered","abandoned","overflowed","group closed","transferred","failed","campaign stopped","left","novel"]`},
		{"format.js", `['WebCallBack', 'OpenMedia', 'Nope'].map(x => m.media(x)[0])`, `["Web callback","Open media","Nope"]`},
		{"format.js", `[0, 59.9, 61, 3599, 3600, 86399, -5].map(m.duration)`, `["00:00","00:59","01:01","59:59","1:00:00","23:59:59","00:00"]`},
		{"format.js", `[900, 3600, 90, 7200].map(m.windowText)`, `["15 min","1 h","90 s","2 h"]`},
		{"settings.js", `m.parse('').settings`, `{"tenants":[],"groups":[],"theme":"auto","mask":true,"rotate":15,"wait":[60,180],"waiting":[5,10],"sl":[80,60],"est":[60,180]}`},
		{"settings.js", `m.parse('?groups=a,%20b,,c&mask=off&rotate=0&sl=90,70&theme=dark')`,
			`{"settings":{"tenants":[],"groups":["a","b","c"],"theme":"dark","mask":false,"rotate":0,"wait":[60,180],"waiting":[5,10],"sl":[90,70],"est":[60,180]},"problems":[]}`},
		{"settings.js", `m.parse('?rotate=-1&mask=maybe&theme=pink&waiting=9,3&est=1&x=1').problems`,
			`["rotate: seconds per page (0: scroll instead)","mask: on or off","theme: one of auto, light, dark","waiting: amber (9) must come below red (3)","est: two numbers (s) are needed, amber then red, like est=60,180","unknown setting \"x\""]`},
		{"settings.js", `m.query(m.parse('?groups=b,a&wait=30,90&mask=off').settings)`, `"?groups=b,a&mask=off&wait=30,90"`},
		{"settings.js", `m.query(m.DEFAULTS)`, `""`},
		{"settings.js", `[m.level(m.DEFAULTS, 'wait', 59), m.level(m.DEFAULTS, 'wait', 60), m.level(m.DEFAULTS, 'wait', 180), m.level(m.DEFAULTS, 'wait', null)]`, `["","warn","alert",""]`},
		{"settings.js", `[m.level(m.DEFAULTS, 'sl', 80), m.level(m.DEFAULTS, 'sl', 79.9), m.level(m.DEFAULTS, 'sl', 59), m.level(m.DEFAULTS, 'sl', null)]`, `["","warn","alert",""]`},
		{"settings.js", `[m.worst('', 'warn', ''), m.worst('warn', 'alert'), m.worst('', undefined)]`, `["warn","alert",""]`},
	} {
		if got := call(c.module, c.expr); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.module, c.expr, got, c.want)
		}
	}
}

// TestBrowserFollowsTheTenants: the page follows whole tenants (AllGroups,
// §10) with a cap on its events (§12): a group added to a tenant gets a
// tile with its figures, a removed one loses its tile; an event of the
// listed group lost on the way is found by the next KeepAlive (§11) and
// the list loaded again.
func TestBrowserFollowsTheTenants(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 10*time.Second)
	srv, base := e.serve(bridge.Config{KeepAlive: 300 * time.Millisecond, HeartbeatTimeout: time.Minute}, nil)
	p := openPage(t, bin, base+"/")
	waitTile(t, p, "acme-sales", "its session", func(v tileView) bool { return v.Waiting == "1" })
	var initialize, tenantWide int
	for _, f := range p.sentFrames() {
		if strings.Contains(f, `"op":"Initialize"`) && strings.Contains(f, `"MaxEventsPerSecond":10`) {
			initialize++
		}
		if strings.Contains(f, `"AllGroups":true`) && strings.Contains(f, `"Sessions":false`) {
			tenantWide++
		}
	}
	if initialize != 1 || tenantWide != 2 {
		t.Fatalf("the page sent %d capped Initialize and %d tenant-wide Subscribes, want 1 and 2 (acme, globex):\n%s",
			initialize, tenantWide, strings.Join(p.sentFrames(), "\n"))
	}

	// a group added to acme, a session in it: its tile
	if err := e.Adapter.PutGroup(e.Ctx, subjects.Group{ServiceGroupID: "acme-new", TenantID: "acme", Name: "New"}); err != nil {
		t.Fatal(err)
	}
	e.Queues["acme-new"] = queue.New("acme-new")
	e.enqueue("acme-new", "new-1", "+442079460002", queue.MediaChat, 0, 5*time.Second)
	waitTile(t, p, "acme-new", "the new group's session", func(v tileView) bool { return v.Waiting == "1" && v.Media == "1 Chat" })

	// a group removed: its tile goes
	if err := e.Adapter.RemoveGroup(e.Ctx, "acme-support"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "acme-support's tile to go", func() bool { _, found := tile(p, "acme-support"); return !found })
	p.waitDOM("the totals", []string{`<dd id="total-groups">3</dd>`})

	// a lost event of the listed group: the KeepAlive after it tells, the list is loaded again
	click(p, `.tile[data-group="acme-sales"]`)
	waitDetailRows(t, p, "call-1@1 +•••0001")
	p.eval(`window.wallboard.lose(m => m.event === 'SessionsUpdated' && m.ServiceGroupID === 'acme-sales' && !window.lostOne && (window.lostOne = true)); true`, nil)
	e.enqueue("acme-sales", "call-2", "+442079460003", queue.MediaVoice, 0, 0)
	waitDetailRows(t, p, "call-1@1 +•••0001,call-2@2 +•••0003")
	var lost bool
	var repairs int
	p.eval(`window.lostOne === true`, &lost)
	p.eval(`window.wallboard.repairs()`, &repairs)
	if !lost || repairs != 1 {
		t.Fatalf("lost an event: %v, lists loaded again: %d; want true and 1", lost, repairs)
	}
	if st := srv.Stats(); st.Subscriptions != 3 {
		t.Errorf("gateway holds %d subscriptions, want 3 (acme-sales, acme-new, globex-chat)", st.Subscriptions)
	}
}

// TestBrowserSisClient: the JavaScript client module (sis-client.js) in
// Chromium against a real gateway: it subscribes, mirrors a group in
// queue order, answers KeepAlives, resumes the group after the gateway
// closed its connection and after RouterDisconnected, with the changes
// made meanwhile.
func TestBrowserSisClient(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.enqueue("acme-sales", "call-1", "+442079460001", queue.MediaVoice, 0, 30*time.Second)
	e.enqueue("acme-sales", "call-2", "+442079460002", queue.MediaChat, 0, 20*time.Second)
	srv, base := e.serve(bridge.Config{KeepAlive: 300 * time.Millisecond, HeartbeatTimeout: 2 * time.Second}, nil)
	p := openPage(t, bin, base+"/sis-client.js") // a page of the gateway's origin
	p.eval(`(async () => {
		const { SisClient } = await import('/sis-client.js');
		window.sis = new SisClient({ url: 'ws://' + location.host + '/sis/v1', positions: true, minBackoff: 50, maxBackoff: 500 });
		await sis.connect();
		await sis.subscribe({ ServiceGroupID: 'acme-sales', Statistics: true });
		return true;
	})()`, nil)
	held := func() string {
		var s string
		p.eval(`(() => { const v = sis.view('acme-sales'); return v.complete ? v.sessions.map(s => s.CallID + '@' + s.QueuePosition).join(',') : ''; })()`, &s)
		return s
	}
	want := func() string {
		var ids []string
		for i, s := range e.Queues["acme-sales"].Sessions() {
			ids = append(ids, fmt.Sprintf("%s@%d", s.CallID, i+1))
		}
		return strings.Join(ids, ",")
	}
	holds := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool { return held() == want() })
	}
	holds("the initial data")
	e.enqueue("acme-sales", "call-3", "+442079460003", queue.MediaSMS, 0, 0)
	e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: "call-3", Position: 1})
	holds("the live changes")

	// the gateway closes the connection; the router goes on meanwhile
	srv.SeatLost(e.seats.last())
	e.remove("acme-sales", "call-1", queue.CauseSessionAllocatedToAgent)
	holds("the group after a reconnection")

	// RouterDisconnected: the router changes its queue while the link is down
	e.Adapter.LinkDown(e.Ctx, "test cut the link")
	e.ApplyUnheard("acme-sales", queue.Change{Op: queue.OpRemove, CallID: "call-2", Cause: queue.CauseDisconnect})
	e.linkUp()
	holds("the group after RouterDisconnected")

	// KeepAlives go on being answered: the session outlives the heartbeat timeout (2 s)
	var from int
	p.eval(`sis.stats.keepAlives`, &from)
	waitFor(t, "eight more KeepAlives answered", func() bool {
		var n int
		p.eval(`sis.stats.keepAlives`, &n)
		return n >= from+8
	})
	var stats struct{ Connects, Resumed, Resent, RouterDisconnects int }
	p.eval(`({Connects: sis.stats.connects, Resumed: sis.stats.resumed, Resent: sis.stats.resent, RouterDisconnects: sis.stats.routerDisconnects})`, &stats)
	if stats.Connects != 3 || stats.Resumed+stats.Resent != 2 || stats.RouterDisconnects != 1 {
		t.Errorf("stats %+v: want 3 sessions, 2 groups taken up again, 1 RouterDisconnected", stats)
	}
	if st := srv.Stats(); st.Sessions != 1 || st.Subscriptions != 1 {
		t.Errorf("gateway holds %+v, want 1 session with 1 subscription", st)
	}
}
