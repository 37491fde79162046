package wallboard_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sisbridge/sisbridge/internal/asyncapi"
)

// page is the one tab of a headless Chromium, driven with chromedp over
// the DevTools protocol.
//
// Why not --dump-dom with --virtual-time-budget: virtual time does not wait
// for WebSocket traffic, so the dump races the gateway's replies and often
// shows the page still "connecting". Over DevTools the test waits, in real
// time, for what it expects, and can change the queues while the page runs.
type page struct {
	t      testing.TB
	ctx    context.Context // the tab's; the browser lives as long as it
	output *tail           // the browser's stdout and stderr
	mu     sync.Mutex
	errs   []string // problems the page reported
	frames []string // WebSocket frames the page received
	sent   []string // and those it sent
}

// browserTimeout bounds each browser's whole life, callTimeout each
// command to its tab.
const browserTimeout, callTimeout = 60 * time.Second, 20 * time.Second

// openPage starts a headless Chromium and opens url in a 1400×900 tab.
func openPage(t testing.TB, bin, url string) *page {
	t.Helper()
	return openPageSized(t, bin, url, 1400, 900)
}

// openPageSized starts a headless Chromium and opens url in a tab of
// width×height CSS pixels. At cleanup, the problems the page reported fail
// the test, every frame it sent and received is checked against
// docs/asyncapi.yaml, and the browser is closed and waited for.
func openPageSized(t testing.TB, bin, url string, width, height int) *page {
	t.Helper()
	p := &page{t: t, output: &tail{max: 8 << 10}}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height), chromedp.CombinedOutput(p.output))
	life, lcancel := context.WithTimeout(actx, browserTimeout)
	// the listener sees the tab's events from its first message on
	ctx, cancel := chromedp.NewContext(life, chromedp.WithListener(p.note))
	p.ctx = ctx
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		if err := chromedp.Cancel(cctx); err != nil && ctx.Err() == nil { // closes the browser gracefully
			t.Logf("closing chromium: %v", err)
		}
		cancel() // kills it if it is still there, and waits for it
		lcancel()
		acancel() // waits for the allocator's goroutines
	})

	// The first run starts the browser, whose life is then ctx's: give it
	// no shorter deadline. Enable what reports script errors and CSP
	// violations before the page loads.
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err1 := cdp.Call(ctx, tg, runtime.Enable, cdp.Empty{})
		_, err2 := cdp.Call(ctx, tg, log.Enable, cdp.Empty{})
		_, err3 := cdp.Call(ctx, tg, network.Enable, network.EnableParams{})
		_, err4 := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: int64(width), Height: int64(height), DeviceScaleFactor: 1, Mobile: false})
		// chromedp enables DOM and CSS too, which the page pays for in frames
		_, err5 := cdp.Call(ctx, tg, css.Disable, cdp.Empty{})
		_, err6 := cdp.Call(ctx, tg, dom.Disable, cdp.Empty{})
		return errors.Join(err1, err2, err3, err4, err5, err6)
	}))
	if err != nil {
		t.Fatalf("start chromium: %v\nchromium output:\n%s", err, p.output)
	}
	t.Cleanup(func() {
		if errs := p.problems(); len(errs) > 0 {
			t.Errorf("the page reported problems:\n%s", strings.Join(errs, "\n"))
		}
		p.conforms()
	})
	cdpRun(p, "navigate to "+url, chromedp.Navigate(url)) // until the load event; the WebSocket may stay open
	return p
}

// cdpRun runs action in p's tab within callTimeout and returns its value;
// an error fails the test.
func cdpRun[T any](p *page, what string, action chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, callTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if errors.As(err, new(*chromedp.ExceptionError)) {
		p.t.Fatalf("%s: %v", what, err) // the page's fault, not the browser's
	} else if err != nil {
		p.t.Fatalf("%s: %v\nchromium output:\n%s", what, err, p.output)
	}
	return v
}

// cdpCall sends one DevTools command to p's tab and returns its result; an
// error fails the test.
func cdpCall[P, R any](p *page, c cdp.Command[P, R], params P) R {
	p.t.Helper()
	return cdpRun(p, c.Method, func(ctx context.Context, tg *chromedp.Target) (R, error) { return cdp.Call(ctx, tg, c, params) })
}

// conforms checks every message the page sent and received against
// docs/asyncapi.yaml.
func (p *page) conforms() {
	p.t.Helper()
	s, err := asyncapi.Load()
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var bad []string
	for _, f := range p.sent {
		if err := s.CheckClient([]byte(f)); err != nil {
			bad = append(bad, err.Error())
		}
	}
	for _, f := range p.frames {
		if err := s.CheckServer([]byte(f)); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		p.t.Errorf("%d of %d messages of the page do not conform to %s, first:\n%s", len(bad), len(p.sent)+len(p.frames),
			asyncapi.Document, strings.Join(bad[:min(3, len(bad))], "\n"))
	}
}

// problems returns the script errors and CSP violations the page reported.
func (p *page) problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// note keeps the WebSocket frames and the events that mean the page went
// wrong: an uncaught exception, console.error, a log entry of the browser
// other than a failed request (the login test's 401 is expected), e.g. a
// CSP violation. It runs on the goroutine reading the tab's messages.
func (p *page) note(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventWebSocketFrameReceived:
		p.frames = append(p.frames, string(ev.Response.PayloadData))
	case *network.EventWebSocketFrameSent:
		p.sent = append(p.sent, string(ev.Response.PayloadData))
	case *runtime.EventExceptionThrown:
		if ev.ExceptionDetails != nil {
			p.errs = append(p.errs, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			args := make([]string, len(ev.Args))
			for i, a := range ev.Args {
				args[i] = cmp.Or(string(a.Value), a.Description)
			}
			p.errs = append(p.errs, "console.error: "+strings.Join(args, " "))
		}
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Source != log.EntrySourceNetwork && (e.Level == log.EntryLevelError || e.Level == log.EntryLevelWarning) {
			p.errs = append(p.errs, fmt.Sprintf("%s %s: %s", e.Source, e.Level, e.Text))
		}
	}
}

// eval evaluates a JavaScript expression in the page, awaiting a promise,
// and decodes its value, as JSON, into out (if not nil). An exception fails
// the test.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	v := cdpRun(p, fmt.Sprintf("eval %q", expr), chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if out != nil && len(v) > 0 {
		if err := json.Unmarshal(v, out); err != nil {
			p.t.Fatalf("eval %q: %v", expr, err)
		}
	}
}

// dom is the page's serialized DOM, as --dump-dom prints it.
func (p *page) dom() string {
	p.t.Helper()
	var s string
	p.eval("document.documentElement ? document.documentElement.outerHTML : ''", &s) // empty while the tab is still navigating
	return s
}

// waitDOM polls the DOM until it contains every string of want (and none
// of not, if given), or fails after 20 s showing the DOM.
func (p *page) waitDOM(what string, want []string, not ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dom := p.dom()
		missing := ""
		for _, w := range want {
			if !strings.Contains(dom, w) {
				missing = fmt.Sprintf("lacks %q", w)
				break
			}
		}
		for _, n := range not {
			if missing == "" && strings.Contains(dom, n) {
				missing = fmt.Sprintf("still has %q", n)
			}
		}
		if missing == "" {
			return dom
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %s: the page %s\nDOM:\n%s", what, missing, dom)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// framesSince returns the WebSocket frames the page received from the n-th
// on, and how many it received in all.
func (p *page) framesSince(n int) ([]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.frames[n:]...), len(p.frames)
}

// sentFrames returns the WebSocket frames the page sent.
func (p *page) sentFrames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sent...)
}

// screenshot saves a PNG of the tab in the directory $WALLBOARD_SCREENSHOTS
// names (make test: artifacts/wallboard), as <test>-<name>.png; nothing
// without it.
func (p *page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("WALLBOARD_SCREENSHOTS")
	if dir == "" {
		return
	}
	r := cdpCall(p, cdppage.CaptureScreenshot, cdppage.CaptureScreenshotParams{Format: cdppage.CaptureScreenshotFormatPng})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	file := filepath.Join(dir, strings.ReplaceAll(p.t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(file, r.Data, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", file)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write keeps b, dropping what comes before the last max bytes.
func (w *tail) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, b...)
	if len(w.b) > w.max {
		w.b = w.b[len(w.b)-w.max:]
	}
	return len(b), nil
}

// String returns the bytes kept.
func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
