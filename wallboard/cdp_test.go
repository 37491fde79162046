package wallboard_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/asyncapi"
)

// page is one tab of a headless Chromium, driven over the DevTools protocol
// on a pipe (--remote-debugging-pipe: the browser reads commands on fd 3
// and writes answers on fd 4, each a JSON object ended by a NUL byte).
//
// Why not --dump-dom with --virtual-time-budget: virtual time does not wait
// for WebSocket traffic, so the dump races the gateway's replies and often
// shows the page still "connecting". Over the pipe the test waits, in real
// time, for what it expects, and can change the queues while the page runs.
type page struct {
	t       testing.TB
	out     *os.File // commands to the browser
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpAnswer
	session string
	stderr  *tail
	errs    []string // problems the page reported
	frames  []string // WebSocket frames the page received
	sent    []string // and those it sent
}

type cdpAnswer struct {
	ID     int             `json:"id"`
	Method string          `json:"method"` // events
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// browserTimeout bounds each browser's whole life.
const browserTimeout = 60 * time.Second

// openPage starts a headless Chromium and opens url in a 1400×900 tab.
func openPage(t testing.TB, bin, url string) *page {
	t.Helper()
	return openPageSized(t, bin, url, 1400, 900)
}

// openPageSized opens url in a tab of width×height CSS pixels.
func openPageSized(t testing.TB, bin, url string, width, height int) *page {
	t.Helper()
	toBrowser, browserIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	browserOut, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars",
		"--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser} // fd 3, fd 4
	p := &page{t: t, out: browserIn, waiting: map[int]chan cdpAnswer{}, stderr: &tail{max: 8 << 10}}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start chromium: %v", err)
	}
	_ = toBrowser.Close()
	_ = fromBrowser.Close()
	read := make(chan struct{})
	go p.readLoop(browserOut, read)
	t.Cleanup(func() {
		c := make(chan cdpAnswer, 1)
		_ = p.send("Browser.close", nil, "", c)
		select {
		case <-c:
		case <-time.After(5 * time.Second):
		}
		_ = browserIn.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		<-read
		_ = browserOut.Close()
	})

	var target struct {
		TargetID string `json:"targetId"`
	}
	p.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	p.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	p.session = attached.SessionID
	// report script errors and CSP violations from the first byte on
	p.call("Runtime.enable", nil, nil)
	p.call("Log.enable", nil, nil)
	p.call("Network.enable", nil, nil)
	p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	p.call("Page.navigate", map[string]any{"url": url}, nil)
	t.Cleanup(func() {
		if errs := p.problems(); len(errs) > 0 {
			t.Errorf("the page reported problems:\n%s", strings.Join(errs, "\n"))
		}
		p.conforms()
	})
	return p
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

// noteEvent keeps the events that mean the page went wrong: an uncaught
// exception, console.error, a console entry of the browser other than a
// failed request (the login test's 401 is expected), e.g. a CSP violation.
func (p *page) noteEvent(method string, params json.RawMessage) {
	var ev struct {
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
		Type  string            `json:"type"`
		Args  []json.RawMessage `json:"args"`
		Entry struct {
			Source string `json:"source"`
			Level  string `json:"level"`
			Text   string `json:"text"`
		} `json:"entry"`
	}
	if json.Unmarshal(params, &ev) != nil {
		return
	}
	if method == "Network.webSocketFrameReceived" || method == "Network.webSocketFrameSent" {
		var f struct {
			Response struct {
				PayloadData string `json:"payloadData"`
			} `json:"response"`
		}
		if json.Unmarshal(params, &f) == nil {
			p.mu.Lock()
			if method == "Network.webSocketFrameSent" {
				p.sent = append(p.sent, f.Response.PayloadData)
			} else {
				p.frames = append(p.frames, f.Response.PayloadData)
			}
			p.mu.Unlock()
		}
		return
	}
	var problem string
	switch {
	case method == "Runtime.exceptionThrown" && ev.ExceptionDetails != nil:
		problem = "exception: " + ev.ExceptionDetails.Text + " " + ev.ExceptionDetails.Exception.Description
	case method == "Runtime.consoleAPICalled" && ev.Type == "error":
		problem = fmt.Sprintf("console.error: %s", ev.Args)
	case method == "Log.entryAdded" && ev.Entry.Source != "network" && (ev.Entry.Level == "error" || ev.Entry.Level == "warning"):
		problem = ev.Entry.Source + " " + ev.Entry.Level + ": " + ev.Entry.Text
	}
	if problem != "" {
		p.mu.Lock()
		p.errs = append(p.errs, problem)
		p.mu.Unlock()
	}
}

func (p *page) readLoop(r *os.File, done chan<- struct{}) {
	defer close(done)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var a cdpAnswer
		if json.Unmarshal(msg[:len(msg)-1], &a) != nil {
			continue
		}
		if a.ID == 0 {
			p.noteEvent(a.Method, a.Params)
			continue
		}
		p.mu.Lock()
		c := p.waiting[a.ID]
		delete(p.waiting, a.ID)
		p.mu.Unlock()
		if c != nil {
			c <- a
		}
	}
}

func (p *page) send(method string, params any, session string, c chan cdpAnswer) error {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.waiting[id] = c
	p.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = p.out.Write(append(b, 0))
	return err
}

// call runs one DevTools command (on the tab once attached) and decodes its
// result into out.
func (p *page) call(method string, params, out any) {
	p.t.Helper()
	c := make(chan cdpAnswer, 1)
	if err := p.send(method, params, p.session, c); err != nil {
		p.t.Fatalf("%s: %v\nchromium stderr:\n%s", method, err, p.stderr)
	}
	select {
	case a := <-c:
		if a.Error != nil {
			p.t.Fatalf("%s: %s", method, a.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(a.Result, out); err != nil {
				p.t.Fatalf("%s: %v", method, err)
			}
		}
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s: no answer within 20s\nchromium stderr:\n%s", method, p.stderr)
	}
}

// eval evaluates a JavaScript expression in the page and returns its value
// as JSON-decoded into out.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.ExceptionDetails != nil {
		p.t.Fatalf("eval %q: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
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
	var r struct {
		Data string `json:"data"`
	}
	p.call("Page.captureScreenshot", map[string]any{"format": "png"}, &r)
	b, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	file := filepath.Join(dir, strings.ReplaceAll(p.t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(file, b, 0o644); err != nil {
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

func (w *tail) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, b...)
	if len(w.b) > w.max {
		w.b = w.b[len(w.b)-w.max:]
	}
	return len(b), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
