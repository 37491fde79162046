// Package wallboard is the live queue wallboard: a static web page (HTML,
// plain JavaScript and CSS, embedded in the binary) that connects to the
// gateway it is served beside, subscribes to every service group listed by
// GET /v1/groups and shows each group's queue as it changes.
//
// The page needs the gateway on the same host and port: mount Handler at "/"
// and the gateway (bridge.Server) at its own paths, for example
//
//	mux := http.NewServeMux()
//	mux.Handle("/", wallboard.Handler())
//	for _, p := range []string{"/sis/v1", "/v1/groups", "/healthz", "/readyz", "/metrics"} {
//		mux.Handle(p, gateway)
//	}
//
// The page loads nothing from anywhere else, so it works offline. See
// docs/wallboard.md for what it shows and how it behaves.
package wallboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

// ContentSecurityPolicy is the Content-Security-Policy header sent with every
// asset: only the page's own scripts, styles and images, and WebSocket
// connections to the host it came from.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed static/index.html static/app.js static/style.css
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets maps a request path to its asset; "/" is the page itself.
var assets = func() map[string]asset {
	load := func(name, contentType string) asset {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("wallboard: embedded asset missing: " + name)
		}
		sum := sha256.Sum256(b)
		return asset{body: b, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	index := load("index.html", "text/html; charset=utf-8")
	return map[string]asset{
		"/":           index,
		"/index.html": index,
		"/app.js":     load("app.js", "text/javascript; charset=utf-8"),
		"/style.css":  load("style.css", "text/css; charset=utf-8"),
	}
}()

// Handler returns the handler that serves the wallboard: the page at "/"
// (and "/index.html"), its script at "/app.js" and its style sheet at
// "/style.css". Every answer carries Cache-Control: no-cache (browsers
// revalidate with the ETag, so a new binary's page is picked up at once) and
// the ContentSecurityPolicy header. Any other path is 404; methods other than
// GET and HEAD are 405.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	a, ok := assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
