package wallboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sisbridge/sisbridge/wallboard"
)

func TestHandlerServesAssets(t *testing.T) {
	hs := httptest.NewServer(wallboard.Handler())
	t.Cleanup(hs.Close)
	for _, c := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="app.js"`},
		{"/index.html", "text/html; charset=utf-8", `<link rel="stylesheet" href="style.css">`},
		{"/app.js", "text/javascript; charset=utf-8", `from './sis-client.js'`},
		{"/sis-client.js", "text/javascript; charset=utf-8", `'sis.v1.json'`},
		{"/board.js", "text/javascript; charset=utf-8", `export class Board`},
		{"/detail.js", "text/javascript; charset=utf-8", `export class Detail`},
		{"/format.js", "text/javascript; charset=utf-8", `export function mask`},
		{"/settings.js", "text/javascript; charset=utf-8", `export function parse`},
		{"/style.css", "text/css; charset=utf-8", `.tile`},
	} {
		res, body := get(t, hs.URL+c.path, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", c.path, res.Status)
		}
		if got := res.Header.Get("Content-Type"); got != c.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.contentType)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", c.path, got)
		}
		checkCSP(t, c.path, res.Header.Get("Content-Security-Policy"))
		if !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
		// no-cache: the browser revalidates, and an unchanged asset is a 304
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", c.path)
		}
		res, _ = get(t, hs.URL+c.path, http.Header{"If-None-Match": {etag}})
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %s, want 304", c.path, res.Status)
		}
	}
	for _, p := range []string{"/nope", "/app.js/", "/static/app.js", "/favicon.ico", "/../go.mod", "/wallboard.go"} {
		res, _ := get(t, hs.URL+p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, res.Status)
		}
	}
	res, err := http.Post(hs.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %s, want 405", res.Status)
	}
}

// TestAssetsStaySelfContained keeps the page working offline and under its
// CSP: no external URLs, no inline scripts or styles, no HTML built from
// strings.
func TestAssetsStaySelfContained(t *testing.T) {
	hs := httptest.NewServer(wallboard.Handler())
	t.Cleanup(hs.Close)
	_, html := get(t, hs.URL+"/", nil)
	_, css := get(t, hs.URL+"/style.css", nil)
	files := map[string]string{"index.html": html, "style.css": css}
	for _, m := range modules {
		_, files[m] = get(t, hs.URL+"/"+m, nil)
	}
	for name, body := range files {
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "url("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
	for _, bad := range []string{"<style", " style=", "onclick=", "onload=", "<script>"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q (blocked by the CSP)", bad)
		}
	}
	for _, m := range modules {
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage", "sessionStorage", "setAttribute('style'"} {
			if strings.Contains(files[m], bad) {
				t.Errorf("%s uses %s", m, bad)
			}
		}
	}
}

// modules are the page's script modules.
var modules = []string{"app.js", "board.js", "detail.js", "format.js", "settings.js", "sis-client.js"}

func checkCSP(t *testing.T, path, csp string) {
	t.Helper()
	for _, d := range []string{"default-src 'self'", "connect-src 'self' ws: wss:", "style-src 'self'", "script-src 'self'", "img-src 'self' data:"} {
		if !strings.Contains(csp, d) {
			t.Errorf("GET %s: Content-Security-Policy %q lacks %q", path, csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("GET %s: Content-Security-Policy %q allows unsafe sources", path, csp)
	}
}

func get(t *testing.T, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}
