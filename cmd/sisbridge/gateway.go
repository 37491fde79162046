package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"github.com/sisbridge/sisbridge/wallboard"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/seats"
	"github.com/sisbridge/sisbridge/subjects"
)

// gatewayFlags configure a gateway.
type gatewayFlags struct {
	cfg      bridge.Config
	listen   string
	seats    int
	tlsCert  string
	tlsKey   string
	origins  string
	leaseTTL time.Duration
	// metricsListen, when set, moves /metrics off the public listener.
	metricsListen string
	// drain is how long a stopping gateway reports itself not ready before
	// it closes its clients; drainDefault is the flag's default (run sets
	// 0: nothing balances its one gateway).
	drain, drainDefault time.Duration
}

func (g *gatewayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.listen, "listen", "127.0.0.1:8080", "HTTP address of the gateway (WebSocket "+protocol.Path+", /v1/groups, /metrics)")
	fs.BoolVar(&g.cfg.Auth, "auth", false, "require host-administrator credentials in Initialize (users: sisbridge users)")
	fs.IntVar(&g.seats, "license-seats", 1000, "SessionInformation license seats, shared by every gateway of the cluster")
	fs.DurationVar(&g.leaseTTL, "seat-lease", seats.DefaultLeaseTTL, "how long a crashed gateway's seats stay taken (must match on every gateway)")
	fs.DurationVar(&g.cfg.KeepAlive, "keepalive", 15*time.Second, "KeepAlive interval")
	fs.DurationVar(&g.cfg.HeartbeatTimeout, "heartbeat-timeout", 45*time.Second, "end a session with no Heartbeat this long after a KeepAlive")
	fs.IntVar(&g.cfg.OutboundLimit, "outbound-limit", 4<<20, "bytes that may wait for one client (replies, events, initial data made, live events held behind it) before it is closed as too slow (4009)")
	fs.IntVar(&g.cfg.InitialBudget, "initial-budget", 64<<20, "bytes of initial data made and not yet written, across every client")
	fs.IntVar(&g.cfg.InitialConcurrency, "initial-concurrency", 64, "clients sent initial data at once; the others wait in turn")
	fs.IntVar(&g.cfg.SendBuffer, "send-buffer", 256<<10, "kernel send buffer of each client connection, bytes (negative: the system's default)")
	fs.IntVar(&g.cfg.LoadConcurrency, "load-concurrency", 16, "reads of group history (view loads, repairs, resumes) at once")
	fs.DurationVar(&g.cfg.Coalesce, "coalesce", 10*time.Millisecond, "space delivery rounds at most this far apart: more changes per event and per write, up to that much latency; rounds are spaced by the load up to it (negative: back to back)")
	fs.BoolVar(&g.cfg.FixedRounds, "fixed-rounds", false, "space delivery rounds exactly --coalesce apart, however light the load")
	fs.StringVar(&g.tlsCert, "tls-cert", "", "TLS certificate file: serve https and wss")
	fs.StringVar(&g.tlsKey, "tls-key", "", "TLS key file")
	fs.StringVar(&g.origins, "allowed-origins", "", "comma-separated Origin headers browsers may connect from (default: any)")
	fs.DurationVar(&g.drain, "drain-delay", g.drainDefault, "on SIGTERM, how long /readyz answers 503 before the clients are closed (1001): time for a load balancer's health check to stop sending new ones")
	fs.StringVar(&g.metricsListen, "metrics-listen", "", "serve /metrics (and /healthz, /readyz) on this address of its own instead of --listen, so that it need not face clients")
	l := &g.cfg.Limits
	fs.IntVar(&l.Connections, "max-connections", 10000, "WebSocket connections the gateway holds; one more is refused with HTTP 503 (negative: no limit)")
	fs.IntVar(&l.PerAddress, "max-connections-per-address", 256, "connections from one remote address; one more is refused with HTTP 429 (negative: no limit)")
	fs.DurationVar(&l.InitializeTimeout, "initialize-timeout", time.Minute, "close a connection that has no session this long after it opened (4011)")
	fs.Float64Var(&l.RequestRate, "max-request-rate", 20, "requests per second a connection may make on average; past it and the burst it is closed (4029; negative: no limit)")
	fs.IntVar(&l.RequestBurst, "max-request-burst", 100, "requests a connection may make at once")
	fs.IntVar(&l.Subscriptions, "max-subscriptions", 10000, "groups one session may subscribe to; one more is a fault (negative: no limit)")
	fs.DurationVar(&g.cfg.Statistics.Window, "stats-window", 15*time.Minute, "router time the QueueStatistics window covers (the same on every gateway)")
	fs.DurationVar(&g.cfg.Statistics.ServiceLevelThreshold, "service-level-threshold", 20*time.Second, "wait within which an allocation counts as served in time, for ServiceLevel (the same on every gateway)")
}

// check reports every gateway flag that cannot work, before anything
// starts: the listen address, the TLS files, the seats and their lease.
func (g *gatewayFlags) check() error {
	var errs []error
	if _, _, err := net.SplitHostPort(g.listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %w", g.listen, err))
	}
	switch {
	case (g.tlsCert == "") != (g.tlsKey == ""):
		errs = append(errs, errors.New("--tls-cert and --tls-key: give both or neither"))
	case g.tlsCert != "":
		if _, err := tls.LoadX509KeyPair(g.tlsCert, g.tlsKey); err != nil {
			errs = append(errs, fmt.Errorf("--tls-cert/--tls-key: %w", err))
		}
	}
	if g.seats < 1 {
		errs = append(errs, fmt.Errorf("--license-seats %d: want at least 1", g.seats))
	}
	if g.leaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("--seat-lease %s: want at least 1s", g.leaseTTL))
	}
	if g.drain < 0 {
		errs = append(errs, fmt.Errorf("--drain-delay %s: want 0 or more", g.drain))
	}
	if st := g.cfg.Statistics; st.Window < time.Second || st.ServiceLevelThreshold < time.Second {
		errs = append(errs, fmt.Errorf("--stats-window %s, --service-level-threshold %s: want at least 1s each", st.Window, st.ServiceLevelThreshold))
	}
	return errors.Join(append(errs, g.checkLimits()...)...)
}

// checkLimits refuses a limit of 0, which the configuration would take
// for "the default" and a reader of the command line for "nothing".
func (g *gatewayFlags) checkLimits() []error {
	l := g.cfg.Limits
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
		none bool // a negative value means no limit
	}{
		{"--max-connections", float64(l.Connections), true},
		{"--max-connections-per-address", float64(l.PerAddress), true},
		{"--max-request-rate", l.RequestRate, true},
		{"--max-request-burst", float64(l.RequestBurst), false},
		{"--max-subscriptions", float64(l.Subscriptions), true},
		{"--initialize-timeout", float64(l.InitializeTimeout), false},
	} {
		switch {
		case f.v == 0 && f.none:
			errs = append(errs, fmt.Errorf("%s 0: want at least 1, or a negative value for no limit", f.name))
		case f.v <= 0 && !f.none:
			errs = append(errs, fmt.Errorf("%s: want more than 0", f.name))
		}
	}
	return errs
}

func (g *gatewayFlags) config() bridge.Config {
	c := g.cfg
	for _, o := range strings.Split(g.origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	return c
}

// seatPool adapts a seats.Pool to what the gateway asks of it.
type seatPool struct{ p *seats.Pool }

func (s seatPool) Acquire(ctx context.Context, sessionID string) (func(context.Context) error, error) {
	seat, err := s.p.Acquire(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	return seat.Release, nil
}

// gatewayCmd is the gateway command's flags.
type gatewayCmd struct {
	lf logFlags
	gf gatewayFlags
	nf natsFlags
}

// newGatewayCmd declares the gateway command's flags.
func newGatewayCmd(stderr io.Writer) (*flag.FlagSet, *gatewayCmd) {
	fs := flag.NewFlagSet("sisbridge gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &gatewayCmd{}
	c.nf.register(fs, access.Gateway)
	c.lf.register(fs)
	c.gf.drainDefault = 5 * time.Second
	c.gf.register(fs)
	return fs, c
}

func runGateway(ctx context.Context, args []string, stderr io.Writer) error {
	fs, c := newGatewayCmd(stderr)
	lf, gf, nf := &c.lf, &c.gf, &c.nf
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(gf.check(), gf.config().WithDefaults().Validate()); err != nil {
		return fmt.Errorf("sisbridge gateway: %w", err)
	}
	nc, err := dialNATS(ctx, nf, "sisbridge-gateway", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	return serveGateway(ctx, nc, gf, wallboard.Handler(), log, processRegistry())
}

// serveGateway runs a gateway until ctx ends. extra, when set, serves the
// paths the gateway does not (the wallboard).
func serveGateway(ctx context.Context, nc *nats.Conn, gf *gatewayFlags, extra http.Handler, log zerolog.Logger, reg *prometheus.Registry) error {
	glog := log.With().Str("component", "gateway").Logger()
	defer glog.Info().Msg("gateway stopped")
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := waitForBus(ctx, js, glog); err != nil {
		return err
	}
	var users bridge.Authenticator
	if err := startStep(ctx, glog, "open the user store", func(ctx context.Context) (err error) {
		users, err = gatewayUsers(ctx, js, gf.cfg.Auth)
		return err
	}); err != nil {
		return err
	}
	var srvRef atomic.Pointer[bridge.Server]
	var pool *seats.Pool
	if err := startStep(ctx, glog, "open the seat pool", func(ctx context.Context) (err error) {
		pool, err = openSeats(ctx, js, gf, log, func(id string) {
			if s := srvRef.Load(); s != nil {
				s.SeatLost(id)
			}
		})
		return err
	}); err != nil {
		return err
	}
	defer closeWithin(pool.Close, 5*time.Second)
	registerSeats(reg, pool, gf.seats)
	var srv *bridge.Server
	if err := startStep(ctx, glog, "start the gateway", func(ctx context.Context) (err error) {
		srv, err = bridge.New(ctx, glog, gf.config(), bridge.Deps{Conn: nc, JetStream: js, Users: users, Seats: seatPool{pool}, Registry: reg})
		return err
	}); err != nil {
		return err
	}
	srvRef.Store(srv)
	defer closeWithin(srv.Shutdown, 10*time.Second)
	what := "gateway listening"
	if extra != nil {
		what = "gateway listening; open the url for the wallboard"
	}
	h := mount(srv, extra)
	if gf.metricsListen != "" {
		ln, err := net.Listen("tcp", gf.metricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		defer serveHTTP(ctx, ln, srv, glog)()
		h = withoutMetrics(h)
	}
	return listenAndServe(ctx, gf, h, glog, what, func() { drain(srv, gf.drain, glog) })
}

// drain makes a stopping gateway report itself not ready for d, so that a
// load balancer sends it no new clients, then closes every client with
// 1001 (they reconnect, through the balancer, elsewhere).
func drain(srv *bridge.Server, d time.Duration, log zerolog.Logger) {
	srv.Drain()
	if d > 0 {
		log.Info().Dur("drain_delay", d).Int("connections", srv.Stats().Connections).Msg("stopping: /readyz answers 503; clients are closed after the drain delay")
		time.Sleep(d)
	}
	closeWithin(srv.Shutdown, 10*time.Second)
}

// waitForBus waits until the router adapter has created the streams and
// buckets the gateway uses: a gateway may start first, or while the
// adapter is still creating them.
func waitForBus(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	for attempt := 1; ; attempt++ {
		var missing string
		err := startStep(ctx, log, "look up the bus", func(ctx context.Context) (err error) {
			missing, err = busMissing(ctx, js)
			return err
		})
		if err != nil || missing == "" {
			return err
		}
		if attempt == 10 {
			log.Warn().Str("missing", missing).Msg("waiting for a router adapter to create the bus")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startTimeout bounds the first attempt of a start-up step (the next get
// longer, up to 8 times); startPause is the pause before the next.
const (
	startTimeout = 2 * time.Second
	startPause   = 250 * time.Millisecond
)

// startStep runs a start-up step that asks the bus, again while the bus
// leaves it unanswered (a NATS cluster forming, or electing a JetStream
// leader, drops requests), each attempt bounded (subjects.Retry), saying
// so now and then. It ends with ctx.
func startStep(ctx context.Context, log zerolog.Logger, what string, fn func(context.Context) error) error {
	start := time.Now()
	err := subjects.Retry(ctx, startTimeout, startPause, fn, func(attempt int, err error) {
		if attempt == 1 || attempt%20 == 0 {
			log.Warn().Err(err).Int("attempt", attempt).Dur("waited", time.Since(start).Round(time.Millisecond)).Msgf("%s: the bus did not answer; trying again", what)
		}
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// busMissing names the first stream or bucket of the bus not there yet;
// "" when all are.
func busMissing(ctx context.Context, js jetstream.JetStream) (string, error) {
	if _, err := js.Stream(ctx, subjects.StreamEvents); errors.Is(err, jetstream.ErrStreamNotFound) {
		return subjects.StreamEvents, nil
	} else if err != nil {
		return "", fmt.Errorf("look up stream %s: %w", subjects.StreamEvents, err)
	}
	for _, b := range []string{subjects.BucketDirectory, subjects.BucketUsers, subjects.BucketSeats, subjects.BucketRouter} {
		if _, err := js.KeyValue(ctx, b); errors.Is(err, jetstream.ErrBucketNotFound) {
			return b, nil
		} else if err != nil {
			return "", fmt.Errorf("look up bucket %s: %w", b, err)
		}
	}
	if _, err := js.ObjectStore(ctx, subjects.BucketSnapshots); errors.Is(err, jetstream.ErrBucketNotFound) {
		return subjects.BucketSnapshots, nil
	} else if err != nil {
		return "", fmt.Errorf("look up object store %s: %w", subjects.BucketSnapshots, err)
	}
	return "", nil
}

func openSeats(ctx context.Context, js jetstream.JetStream, gf *gatewayFlags, log zerolog.Logger, lost func(string)) (*seats.Pool, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketSeats)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", subjects.BucketSeats, err)
	}
	if err := sameLease(ctx, kv, gf.leaseTTL); err != nil {
		return nil, err
	}
	return seats.New(kv, log, seats.Config{Seats: gf.seats, LeaseTTL: gf.leaseTTL, OnLost: lost})
}

// sameLease refuses a --seat-lease that differs from the seat bucket's
// lease time, naming the flag to set: seats would otherwise never be had.
func sameLease(ctx context.Context, kv jetstream.KeyValue, lease time.Duration) error {
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("read bucket %s: %w", subjects.BucketSeats, err)
	}
	if ttl := st.TTL(); ttl != lease {
		return fmt.Errorf("gateway: the license seats' bucket keeps leases %s and this gateway was given --seat-lease %s: start it with --seat-lease %s (every gateway of a cluster uses the same)", ttl, lease, ttl)
	}
	return nil
}

// withoutMetrics hides /metrics from the public listener.
func withoutMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// mount serves the gateway's paths from srv and everything else from extra.
func mount(srv http.Handler, extra http.Handler) http.Handler {
	if extra == nil {
		return srv
	}
	mux := http.NewServeMux()
	for _, p := range []string{protocol.Path, "/v1/groups", "/healthz", "/readyz", "/metrics"} {
		mux.Handle(p, srv)
	}
	mux.Handle("/", extra)
	return mux
}

// listenAndServe serves h on the gateway's address until ctx ends; then
// stopping runs (the gateway drains and closes its clients) before the
// HTTP server shuts down.
func listenAndServe(ctx context.Context, gf *gatewayFlags, h http.Handler, log zerolog.Logger, what string, stopping func()) error {
	ln, err := net.Listen("tcp", gf.listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	scheme := "http"
	if gf.tlsCert != "" || gf.tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(gf.tlsCert, gf.tlsKey)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("gateway TLS: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln, scheme = tls.NewListener(ln, hs.TLSConfig), "https"
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info().Str("url", fmt.Sprintf("%s://%s/", scheme, ln.Addr())).Msg(what)
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	stopping()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return nil
}

// closeWithin calls a Close or Shutdown with a deadline.
func closeWithin(fn func(context.Context) error, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = fn(ctx)
}

// registerSeats exports the license seats: how many there are, and how
// many are taken cluster-wide as this gateway's pool sees them.
func registerSeats(reg *prometheus.Registry, pool *seats.Pool, total int) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sis_seats_total", Help: "SessionInformation license seats (--seats)."},
			func() float64 { return float64(total) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sis_seats_in_use", Help: "License seats taken by every gateway, as this gateway's seat pool sees the bucket."},
			func() float64 { return float64(pool.InUse()) }))
}
