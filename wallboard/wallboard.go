// Package wallboard is the live queue wallboard: a static web page (HTML,
// plain JavaScript and CSS, embedded in the binary) that connects to the
// gateway it is served beside, and shows a tile per service group listed by
// GET /v1/groups (or those its URL chooses), fed by statistics-only
// subscriptions: waiting, longest wait, service level, estimated wait,
// answered and abandoned; a click on a tile lists the group's sessions.
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
// The page loads nothing from anywhere else, so it works offline. Its
// settings (groups shown, colour thresholds, theme, masking, page rotation)
// are in its URL, so a wall screen opens straight onto its view. See
// docs/wallboard.md for what it shows and how it behaves.
package wallboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// ContentSecurityPolicy is the Content-Security-Policy header sent with every
// asset: only the page's own scripts, styles and images, and WebSocket
// connections to the host it came from.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes are the types of the files the page is made of; a file of
// another kind in static/ is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// assets maps a request path to its asset: "/name" for every file in
// static/, and "/" for the page itself.
var assets = func() map[string]asset {
	files, err := fs.ReadDir(static, "static")
	if err != nil {
		panic("wallboard: embedded assets: " + err.Error())
	}
	m := map[string]asset{}
	for _, f := range files {
		ct, ok := contentTypes[path.Ext(f.Name())]
		if !ok || f.IsDir() {
			continue
		}
		b, err := static.ReadFile("static/" + f.Name())
		if err != nil {
			panic("wallboard: embedded asset " + f.Name() + ": " + err.Error())
		}
		sum := sha256.Sum256(b)
		m["/"+f.Name()] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	m["/"] = m["/index.html"]
	return m
}()

// Handler returns the handler that serves the wallboard: the page at "/"
// (and "/index.html"), its script modules ("/app.js" and the modules it
// imports) and its style sheet ("/style.css"). Every answer carries Cache-Control: no-cache (browsers
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
