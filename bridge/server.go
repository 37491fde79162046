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
	budget *budget
	dir    *directory
	router *routerWatch

	mu        sync.Mutex
	conns     map[*session]struct{} // every connection's session
	sessions  map[string]*session   // initialized ones, by session ID
	perAddr   map[string]int        // connections by remote host (Limits.PerAddress)
	admitting int                   // connections admitted and not registered yet
	closing   bool

	limitLog zerolog.Logger // limit hits: audit lines, sampled (a flood would flood the log)
	audit    zerolog.Logger // sign-ins, seats: one line each ("audit")
	signIns  *signIns

	nextID    atomic.Uint64
	draining  atomic.Bool // Drain was called: /readyz answers 503
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
	if err := hist.Republishes(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s := &Server{cfg: cfg, log: log, nc: deps.Conn, js: deps.JetStream, users: deps.Users, seats: deps.Seats, hist: hist,
		conns: map[*session]struct{}{}, sessions: map[string]*session{}, perAddr: map[string]int{}}
	s.audit = log.With().Bool("audit", true).Logger()
	s.limitLog = s.audit.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second})
	s.signIns = newSignIns(cfg.Limits.SignInFree, cfg.Limits.SignInBackoff)
	s.metrics = newMetrics(deps.Registry)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hub = newHub(s)
	s.budget = newBudget(cfg.InitialBudget, cfg.InitialConcurrency)
	s.flush = newFlusher(cfg.Coalesce, cfg.FixedRounds, runtime.GOMAXPROCS(0))
	if s.dir, err = watchDirectory(ctx, s); err != nil {
		s.cancel()
		return nil, err
	}
	if s.router, err = watchRouter(ctx, s); err != nil {
		s.cancel()
		s.wg.Wait()
		return nil, err
	}
	s.goRun(s.flush.run)
	s.goRun(s.hub.dispatch)
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

// goRun runs fn in a goroutine until Shutdown.
func (s *Server) goRun(fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
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

// Drain makes /readyz answer 503 from now on, so that a load balancer
// stops sending new clients; the gateway serves on (Shutdown ends it).
func (s *Server) Drain() {
	s.draining.Store(true)
	s.log.Info().Msg("draining: /readyz answers 503")
}

// Shutdown stops accepting clients, closes every connection with 1001 and
// stops the gateway's goroutines; it returns once they ended, or when ctx
// ends. The http.Server in front of it is the caller's to shut down. Safe to
// call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.eachSession(func(ss *session) { ss.t.closeWith(protocol.CloseGoingAway, "gateway shutting down") })
		s.cancel()
		s.hub.closeAll()
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
	// InitialBuffered is how many bytes of initial data are made and not
	// yet written (bounded by Config.InitialBudget, give or take a frame
	// per connection); InitialBufferedPeak the most ever.
	InitialBuffered, InitialBufferedPeak int
}

// Stats returns what the gateway holds now.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Connections: len(s.conns), Sessions: len(s.sessions)}
	for _, ss := range s.sessions {
		st.Subscriptions += ss.subscriptionCount()
	}
	s.mu.Unlock()
	st.Views = s.hub.count()
	st.InitialBuffered, st.InitialBufferedPeak = s.budget.inUse()
	return st
}

// RouterConnected reports whether the gateway believes the router is up.
func (s *Server) RouterConnected() bool { return s.router.connected() }

// SeatLost ends the session whose license seat lease was lost (the Seats
// implementation calls it): its connection is closed with 1001, so that the
// client reconnects and initializes again.
func (s *Server) SeatLost(sessionID string) {
	s.mu.Lock()
	ss := s.sessions[sessionID]
	s.mu.Unlock()
	if ss != nil {
		s.log.Warn().Str("session", sessionID).Msg("license seat lease lost; closing the connection")
		ss.t.closeWith(protocol.CloseGoingAway, "license seat lost")
	}
}

// addSession registers an admitted connection: it stops counting as
// admitting and counts as a connection in the same step, so that no
// moment counts it twice against Limits.Connections.
func (s *Server) addSession(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitting--
	if s.closing {
		return false
	}
	s.conns[ss] = struct{}{}
	return true
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	delete(s.conns, ss)
	s.mu.Unlock()
}

// setSession registers an initialized session by its ID (nil: forget it).
func (s *Server) setSession(id string, ss *session) {
	s.mu.Lock()
	if ss == nil {
		delete(s.sessions, id)
	} else {
		s.sessions[id] = ss
	}
	s.mu.Unlock()
}

// eachSession calls fn for a snapshot of the connections' sessions,
// outside the lock.
func (s *Server) eachSession(fn func(*session)) {
	s.mu.Lock()
	all := make([]*session, 0, len(s.conns))
	for ss := range s.conns {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		fn(ss)
	}
}
