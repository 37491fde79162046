package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// Authenticator checks that a LogonID and Password belong to a host
// administrator. Cancelling ctx abandons the check with an error.
type Authenticator interface {
	Authenticate(ctx context.Context, logonID, password string) error
}

// Seats hands out the cluster-wide SessionInformation license seats. Acquire
// returns a function that frees the seat; any error means no seat
// (NoLicenseFault). Cancelling ctx abandons the attempt.
type Seats interface {
	Acquire(ctx context.Context, sessionID string) (release func(context.Context) error, err error)
}

// Server is one gateway. It is an http.Handler serving the WebSocket
// endpoint and the HTTP endpoints beside it.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	users   Authenticator
	seats   Seats
	hist    *subjects.History
	metrics *metrics
	mux     *http.ServeMux

	hub    *hub
	flush  *flusher
	dir    *directory
	router *routerWatch

	mu       sync.Mutex
	conns    map[*conn]struct{}
	sessions map[string]*conn // by session ID
	closing  bool

	nextID    atomic.Uint64
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Deps are the ready things a Server needs.
type Deps struct {
	// Conn is the NATS connection; its status counts towards the router's.
	Conn *nats.Conn
	// JetStream is a JetStream context on Conn.
	JetStream jetstream.JetStream
	// Users checks credentials; required when Config.Auth is set.
	Users Authenticator
	// Seats hands out license seats; required.
	Seats Seats
	// Registry receives the gateway's metrics; nil makes a private one
	// (served on /metrics either way).
	Registry Registry
}

// New starts a gateway: it binds to the bus, watches the directory and the
// router status, and is ready to serve. ctx bounds the start only; Shutdown
// stops the gateway.
func New(ctx context.Context, log zerolog.Logger, cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := errors.Join(cfg.Validate(), deps.check(cfg)); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	hist, err := subjects.OpenHistory(ctx, deps.JetStream)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, nc: deps.Conn, js: deps.JetStream, users: deps.Users, seats: deps.Seats, hist: hist,
		conns: map[*conn]struct{}{}, sessions: map[string]*conn{}}
	s.metrics = newMetrics(deps.Registry)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hub = newHub(s)
	s.flush = newFlusher(cfg.Coalesce, runtime.GOMAXPROCS(0))
	if s.dir, err = watchDirectory(ctx, s); err != nil {
		s.cancel()
		return nil, err
	}
	if s.router, err = watchRouter(ctx, s); err != nil {
		s.cancel()
		s.wg.Wait()
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.flush.run(s.ctx)
	}()
	s.goLoop(sweepEvery, s.sweep)
	s.mux = s.routes()
	return s, nil
}

func (d Deps) check(cfg Config) error {
	var errs []error
	if d.Conn == nil || d.JetStream == nil {
		errs = append(errs, errors.New("NATS connection and JetStream context: required"))
	}
	if d.Seats == nil {
		errs = append(errs, errors.New("seats: required"))
	}
	if cfg.Auth && d.Users == nil {
		errs = append(errs, errors.New("auth on: a user store is required"))
	}
	return errors.Join(errs...)
}

// goLoop runs fn every interval until Shutdown.
func (s *Server) goLoop(interval time.Duration, fn func(now time.Time)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case now := <-t.C:
				fn(now)
			}
		}
	}()
}

// ServeHTTP serves the WebSocket endpoint and the HTTP endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Shutdown stops accepting clients, closes every connection with 1001 and
// stops the gateway's goroutines; it returns once they ended, or when ctx
// ends. The http.Server in front of it is the caller's to shut down. Safe to
// call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.closeWith(protocol.CloseGoingAway, "gateway shutting down")
		}
		s.cancel()
		s.hub.stopAll()
	})
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway shutdown: %w", ctx.Err())
	}
}

// Stats counts what the gateway holds now.
type Stats struct {
	// Connections, Sessions (initialized) and Subscriptions.
	Connections, Sessions, Subscriptions int
	// Views is the number of group views.
	Views int
}

// Stats returns what the gateway holds now.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Connections: len(s.conns), Sessions: len(s.sessions)}
	for _, c := range s.sessions {
		st.Subscriptions += c.subscriptionCount()
	}
	s.mu.Unlock()
	st.Views = s.hub.count()
	return st
}

// RouterConnected reports whether the gateway believes the router is up.
func (s *Server) RouterConnected() bool { return s.router.connected() }

// SeatLost ends the session whose license seat lease was lost (the Seats
// implementation calls it): its connection is closed with 1001, so that the
// client reconnects and initializes again.
func (s *Server) SeatLost(sessionID string) {
	s.mu.Lock()
	c := s.sessions[sessionID]
	s.mu.Unlock()
	if c != nil {
		s.log.Warn().Str("session", sessionID).Msg("license seat lease lost; closing the connection")
		c.closeWith(protocol.CloseGoingAway, "license seat lost")
	}
}

func (s *Server) addConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) setSession(id string, c *conn) {
	s.mu.Lock()
	if c == nil {
		delete(s.sessions, id)
	} else {
		s.sessions[id] = c
	}
	s.mu.Unlock()
}

// eachConn calls fn for a snapshot of the connections, outside the lock.
func (s *Server) eachConn(fn func(*conn)) {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		fn(c)
	}
}
