// Package feed is a router.Source that takes the changes of a real ACD as
// NDJSON lines (one JSON object per line; see docs/feed.md), posted over
// HTTP with a bearer token and/or read from a stream such as stdin or a
// file. Each line is validated, then applied to the router.Handler; a bad
// or refused line is reported with its line number and changes nothing,
// and the lines around it go on. Lines from every input are applied one at
// a time, in order within one request or input.
package feed

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sisbridge/sisbridge/router"
)

var _ router.Source = (*Feed)(nil)

// HTTP server limits.
const (
	readHeaderTimeout = 10 * time.Second
	idleConnTimeout   = 2 * time.Minute
	// shutdownTimeout bounds the graceful HTTP shutdown and the wait for
	// the reader input when Run stops.
	shutdownTimeout = 5 * time.Second
)

// Feed is an NDJSON router source. Create it with New and start it with Run.
type Feed struct {
	cfg      Config
	log      zerolog.Logger
	tokenSum [sha256.Size]byte
	started  atomic.Bool
	ready    chan struct{}
	addr     net.Addr // set before ready is closed

	accepted, rejected atomic.Uint64

	mu       sync.Mutex // serializes lines and guards the link state below
	up       bool       // the link as last reported to the handler
	idleDown bool       // the link was reported down for idleness
	last     time.Time  // when the last line arrived
	stopped  bool       // Run is returning: no more lines

	reqMu    sync.Mutex // guards draining and reqs.Add
	draining bool
	reqs     sync.WaitGroup
}

// Stats counts the lines of every input since New. Blank lines count in
// neither.
type Stats struct {
	// Accepted counts the lines applied.
	Accepted uint64
	// Rejected counts the lines refused: malformed, or refused by the
	// handler.
	Rejected uint64
}

// New checks cfg (after WithDefaults) and returns a feed that logs to log.
// It opens nothing: Run does.
func New(cfg Config, log zerolog.Logger) (*Feed, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Feed{
		cfg:      cfg,
		log:      log,
		tokenSum: sha256.Sum256([]byte(cfg.Token)),
		ready:    make(chan struct{}),
	}, nil
}

// Stats returns the line counts so far; safe to call at any time.
func (f *Feed) Stats() Stats {
	return Stats{Accepted: f.accepted.Load(), Rejected: f.rejected.Load()}
}

// Ready is closed once Run listens (when HTTP is configured), has reported
// the link up (when StartUp) and takes lines.
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// Addr returns the address the HTTP endpoint listens on, or nil before
// Ready is closed or without an HTTP endpoint.
func (f *Feed) Addr() net.Addr {
	select {
	case <-f.ready:
		return f.addr
	default:
		return nil
	}
}

// Run serves the HTTP endpoint (if configured) and reads Input (if set)
// until ctx is cancelled; after Input's end it keeps serving HTTP. It
// reports the link up at the start when StartUp, and down ("feed stopped")
// on the way out if it is up. It returns nil on cancellation, once the
// HTTP server has shut down (gracefully, within 5 s) and the goroutines it
// started have ended; it returns an error if it cannot listen or the
// server fails. A Read of Input that cannot be interrupted (see
// docs/feed.md) is waited for at most 5 s; it applies nothing afterwards.
// Run may be called once.
func (f *Feed) Run(ctx context.Context, h router.Handler) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("feed: Run called twice")
	}
	ln, err := f.listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f.begin(ctx, h)
	w := f.launch(ctx, h, ln)
	close(f.ready)
	select {
	case <-ctx.Done():
	case err = <-w.fatal:
		f.log.Error().Err(err).Msg("HTTP server failed; stopping")
	}
	cancel()
	f.stop(w)
	f.end(ctx, h)
	f.log.Info().Uint64("accepted", f.accepted.Load()).Uint64("rejected", f.rejected.Load()).Msg("feed stopped")
	return err
}

// workers are the goroutines of one Run.
type workers struct {
	srv       *http.Server
	wg        sync.WaitGroup // the HTTP server and the idle watch
	fatal     chan error     // a failure of the HTTP server
	inputDone <-chan struct{}
}

// launch starts serving ln (if any), reading Input (if set) and watching
// for idleness (if IdleTimeout is set).
func (f *Feed) launch(ctx context.Context, h router.Handler, ln net.Listener) *workers {
	w := &workers{fatal: make(chan error, 1)}
	w.srv = f.startHTTP(ctx, h, ln, &w.wg, w.fatal)
	w.inputDone = f.startInput(ctx, h)
	if f.cfg.IdleTimeout > 0 {
		w.wg.Go(func() { f.watchIdle(ctx, h) })
	}
	return w
}

// stop ends what launch started; ctx is cancelled already.
func (f *Feed) stop(w *workers) {
	f.stopHTTP(w.srv)
	if w.inputDone != nil {
		f.stopInput(w.inputDone)
	}
	w.wg.Wait()
}

// listen opens the HTTP listener, if any, and records its address.
func (f *Feed) listen() (net.Listener, error) {
	switch {
	case f.cfg.Listener != nil:
		f.addr = f.cfg.Listener.Addr()
		return f.cfg.Listener, nil
	case f.cfg.Listen != "":
		ln, err := net.Listen("tcp", f.cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("feed: %w", err)
		}
		f.addr = ln.Addr()
		return ln, nil
	}
	return nil, nil
}

// startHTTP serves ln, if any; a failure of the server goes to fatal.
func (f *Feed) startHTTP(ctx context.Context, h router.Handler, ln net.Listener, wg *sync.WaitGroup, fatal chan<- error) *http.Server {
	if ln == nil {
		return nil
	}
	fresh := &newConns{m: map[net.Conn]struct{}{}}
	srv := &http.Server{
		Handler:           f.httpHandler(ctx, h),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleConnTimeout,
		ErrorLog:          stdlog.New(f.log.With().Str("component", "http").Logger(), "", 0),
		ConnState:         fresh.track,
	}
	srv.RegisterOnShutdown(fresh.closeAll)
	f.log.Info().Str("addr", ln.Addr().String()).Str("path", f.cfg.Path).Msg("feed listening")
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("feed: http: %w", err)
		}
	})
	return srv
}

// stopHTTP shuts srv down gracefully, closes it if that takes too long, and
// waits for the requests in flight.
func (f *Feed) stopHTTP(srv *http.Server) {
	if srv == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		f.log.Warn().Err(err).Msg("HTTP shutdown timed out; closing connections")
		_ = srv.Close()
	}
	f.drain()
}

// startInput reads Input, if set, in a goroutine; the channel is closed
// when it ends.
func (f *Feed) startInput(ctx context.Context, h router.Handler) <-chan struct{} {
	if f.cfg.Input == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.readInput(ctx, h)
	}()
	return done
}
