package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/sisbridge/sisbridge/router"
)

// maxErrors is the most line errors one HTTP answer lists; the counts are
// always complete.
const maxErrors = 1000

// Answer is the JSON body of the answer to a POST of feed lines (200, 422,
// or 503 when the feed stopped in the middle of the body).
type Answer struct {
	// Accepted counts the lines applied.
	Accepted int `json:"accepted"`
	// Rejected counts the lines refused; each changed nothing.
	Rejected int `json:"rejected"`
	// Errors lists the rejected lines in order, at most 1000 of them.
	Errors []LineError `json:"errors"`
	// Truncated says Errors was cut at 1000 entries.
	Truncated bool `json:"errors_truncated,omitempty"`
	// Error, on a 503, says from which line on nothing was applied.
	Error string `json:"error,omitempty"`
}

// LineError is one rejected line of an Answer.
type LineError struct {
	// Line is the 1-based line number in the request body.
	Line int `json:"line"`
	// Error says what is wrong with the line.
	Error string `json:"error"`
}

// errorAnswer is the JSON body of an answer refusing the whole request.
type errorAnswer struct {
	Error string `json:"error"`
}

// httpHandler serves the feed endpoint; h gets the lines, with ctx.
func (f *Feed) httpHandler(ctx context.Context, h router.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.enter() {
			writeJSON(w, http.StatusServiceUnavailable, errorAnswer{errStopping.Error()})
			return
		}
		defer f.reqs.Done()
		f.serveHTTP(ctx, h, w, r)
	})
}

func (f *Feed) serveHTTP(ctx context.Context, h router.Handler, w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path != f.cfg.Path:
		writeJSON(w, http.StatusNotFound, errorAnswer{"not found: the feed is posted to " + f.cfg.Path})
	case !f.authorized(r):
		f.log.Warn().Str("remote", r.RemoteAddr).Msg("feed request without a valid bearer token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="sisbridge feed"`)
		writeJSON(w, http.StatusUnauthorized, errorAnswer{"missing or wrong bearer token"})
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorAnswer{"method " + r.Method + " not allowed: use POST"})
	default:
		f.post(ctx, h, w, r)
	}
}

// authorized checks the bearer token in constant time: both sides are
// hashed first, so that not even the length leaks.
func (f *Feed) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimLeft(token, " ")))
	return subtle.ConstantTimeCompare(got[:], f.tokenSum[:]) == 1
}

// post reads the whole body, then applies its lines in order.
func (f *Feed) post(ctx context.Context, h router.Handler, w http.ResponseWriter, r *http.Request) {
	tooLarge := errorAnswer{fmt.Sprintf("body larger than %d bytes: nothing applied", f.cfg.MaxBody)}
	if r.ContentLength > f.cfg.MaxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.cfg.MaxBody))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			writeJSON(w, http.StatusRequestEntityTooLarge, tooLarge)
		} else {
			writeJSON(w, http.StatusBadRequest, errorAnswer{"reading the body: " + err.Error() + ": nothing applied"})
		}
		return
	}
	a := f.applyBody(ctx, h, body)
	status := http.StatusOK
	switch {
	case a.Error != "":
		status = http.StatusServiceUnavailable
	case a.Rejected > 0:
		status = http.StatusUnprocessableEntity
	}
	ev := f.log.Debug()
	if a.Rejected > 0 {
		ev = f.log.Warn().Str("first_error", a.Errors[0].Error).Int("first_line", a.Errors[0].Line)
	}
	ev.Str("remote", r.RemoteAddr).Int("accepted", a.Accepted).Int("rejected", a.Rejected).Msg("feed request")
	writeJSON(w, status, a)
}

// applyBody applies the lines of one request body in order.
func (f *Feed) applyBody(ctx context.Context, h router.Handler, body []byte) Answer {
	a := Answer{Errors: []LineError{}}
	lr := newLineReader(bytes.NewReader(body), f.cfg.MaxLine)
	for {
		raw, err := lr.next()
		if err != nil { // io.EOF: a bytes.Reader fails in no other way
			return a
		}
		res, err := f.handle(ctx, h, raw)
		switch res {
		case stopped:
			a.Error = fmt.Sprintf("%v: lines from %d on were not applied", err, raw.num)
			return a
		case accepted:
			a.Accepted++
		case rejected:
			a.Rejected++
			if len(a.Errors) == maxErrors {
				a.Truncated = true
				continue
			}
			a.Errors = append(a.Errors, LineError{Line: raw.num, Error: err.Error()})
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// enter registers a request in flight; false once Run is draining them.
func (f *Feed) enter() bool {
	f.reqMu.Lock()
	defer f.reqMu.Unlock()
	if f.draining {
		return false
	}
	f.reqs.Add(1)
	return true
}

// drain waits for the requests in flight; no new one is admitted.
func (f *Feed) drain() {
	f.reqMu.Lock()
	f.draining = true
	f.reqMu.Unlock()
	f.reqs.Wait()
}

// newConns tracks the connections that have not sent a byte yet. Shutdown
// would wait 5 s before it takes them as idle; the feed closes them as it
// stops instead.
type newConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (n *newConns) track(c net.Conn, s http.ConnState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s == http.StateNew {
		n.m[c] = struct{}{}
	} else {
		delete(n.m, c)
	}
}

func (n *newConns) closeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.m {
		_ = c.Close()
	}
	clear(n.m)
}
