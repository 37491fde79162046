package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/seats"
	"github.com/sisbridge/sisbridge/subjects"
)

// loadTenant is the one tenant of the tool's directory.
const loadTenant = "load"

// stack is what a run measures, all in this process on loopback: a NATS
// server with JetStream and its WebSocket listener, and a router adapter
// whose directory holds the load groups. Gateways are started on it with
// startGateway.
type stack struct {
	log     zerolog.Logger
	dir     string
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	adapter *router.Adapter
	groups  []string
	driver  *driver
}

// startStack starts the NATS server, the adapter and a directory of groups
// in one tenant, each group pre-filled with prefill sessions.
func startStack(ctx context.Context, log zerolog.Logger, groups, prefill int) (*stack, error) {
	return startStackTenants(ctx, log, groups, prefill, 1)
}

// startStackTenants is startStack with the groups spread over tenants
// tenants, group i in tenant i mod tenants.
func startStackTenants(ctx context.Context, log zerolog.Logger, groups, prefill, tenants int) (st *stack, err error) {
	st = &stack{log: log}
	defer closeOnError(st.Close, &err)
	if st.dir, err = os.MkdirTemp("", "sisload-*"); err != nil {
		return nil, fmt.Errorf("temp dir for JetStream: %w", err)
	}
	if st.ns, err = startNATS(st.dir, log); err != nil {
		return nil, err
	}
	if st.nc, err = nats.Connect(st.ns.ClientURL(), nats.Name("sisload-adapter")); err != nil {
		return nil, fmt.Errorf("connect the adapter to NATS: %w", err)
	}
	if st.js, err = jetstream.New(st.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if st.adapter, err = router.Open(ctx, st.js, log.With().Str("component", "adapter").Logger(), loadAdapterConfig); err != nil {
		return nil, fmt.Errorf("open the router adapter: %w", err)
	}
	st.groups = groupNames(groups)
	st.driver = newDriver(st.adapter, st.groups, prefill)
	st.driver.tenants = tenantNames(max(tenants, 1))
	state := st.driver.state()
	if err = st.adapter.LinkUp(ctx, &state); err != nil {
		return nil, fmt.Errorf("router link up: %w", err)
	}
	if err = st.adapter.Flush(ctx); err != nil {
		return nil, fmt.Errorf("store the pre-filled queues: %w", err)
	}
	return st, nil
}

// loadAdapterConfig is the adapter's configuration in the tool: a lease
// of 30 s, since no standby waits to take over, and a system that stalls
// the adapter's connection (nats-server fans messages out on the
// publishing connection) should slow the router, as it would in
// production, not fail it.
var loadAdapterConfig = router.Config{Bus: subjects.Config{AdapterLeaseTTL: 30 * time.Second}}

// groupNames returns n ServiceGroupIDs.
func groupNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("g%04d", i)
	}
	return out
}

// closeOnError calls closeFn when *err is set on return: a constructor's
// clean-up of what it started. Deferred as closeOnError(x.Close, &err), the
// method value holds x as it was then, not the nil that "return nil, err"
// leaves in a named result.
func closeOnError(closeFn func(), err *error) {
	if *err != nil {
		closeFn()
	}
}

// Close stops the adapter and the NATS server and removes the store.
func (st *stack) Close() {
	if st.adapter != nil {
		closeWithin(st.adapter.Close, 10*time.Second)
	}
	if st.nc != nil {
		st.nc.Close()
	}
	if st.ns != nil {
		st.ns.Shutdown()
		st.ns.WaitForShutdown()
	}
	if st.dir != "" {
		if err := os.RemoveAll(st.dir); err != nil {
			st.log.Warn().Err(err).Str("dir", st.dir).Msg("remove the JetStream store")
		}
	}
}

// WebsocketURL is the URL of the NATS server's own WebSocket listener.
func (st *stack) WebsocketURL() string { return st.ns.WebsocketURL() }

// ClientURL is the URL of the NATS server's client listener.
func (st *stack) ClientURL() string { return st.ns.ClientURL() }

// startNATS runs a JetStream server storing under dir, with its client
// and WebSocket listeners on random loopback ports.
func startNATS(dir string, log zerolog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "sisload", Host: "127.0.0.1", Port: -1, NoSigs: true,
		JetStream: true, StoreDir: filepath.Join(dir, "nats"),
		JetStreamMaxStore: 2 << 30, JetStreamMaxMemory: 256 << 20,
		Websocket: server.WebsocketOpts{Host: "127.0.0.1", Port: -1, NoTLS: true},
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	ns.SetLoggerV2(&natsLogger{log: log.With().Str("component", "nats").Logger()}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("nats server: not ready within 10s")
	}
	return ns, nil
}

// natsLogger routes the server's log to zerolog; Fatalf does not exit.
type natsLogger struct{ log zerolog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug().Msgf(format, v...) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

// gateway is a bridge.Server served over loopback HTTP, with its own NATS
// connection and seat pool.
type gateway struct {
	srv  *bridge.Server
	reg  *prometheus.Registry // the gateway's metrics
	hs   *http.Server
	nc   *nats.Conn
	pool *seats.Pool
	url  string
	done chan struct{}
}

// startGateway starts a gateway with seatCount license seats and waits
// until it sees the router connected.
func (st *stack) startGateway(ctx context.Context, cfg bridge.Config, seatCount int) (gw *gateway, err error) {
	gw = &gateway{done: make(chan struct{}), reg: prometheus.NewRegistry()}
	if cfg.Limits == (bridge.Limits{}) {
		// The load comes from one address and makes what it measures: the
		// limits that protect a gateway from others are off.
		cfg.Limits = bridge.Limits{Connections: -1, PerAddress: -1, RequestRate: -1, Subscriptions: -1}
	}
	defer closeOnError(gw.close, &err)
	if gw.nc, err = nats.Connect(st.ClientURL(), nats.Name("sisload-gateway")); err != nil {
		return nil, fmt.Errorf("connect the gateway to NATS: %w", err)
	}
	js, err := jetstream.New(gw.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	kv, err := js.KeyValue(ctx, subjects.BucketSeats)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", subjects.BucketSeats, err)
	}
	log := st.log.With().Str("component", "gateway").Logger()
	if gw.pool, err = seats.New(kv, log, seats.Config{Seats: seatCount}); err != nil {
		return nil, fmt.Errorf("seat pool: %w", err)
	}
	if gw.srv, err = bridge.New(ctx, log, cfg, bridge.Deps{Conn: gw.nc, JetStream: js, Seats: seatPool{gw.pool}, Registry: gw.reg}); err != nil {
		return nil, fmt.Errorf("start the gateway: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gateway listener: %w", err)
	}
	gw.hs = &http.Server{Handler: gw.srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(gw.done)
		_ = gw.hs.Serve(ln)
	}()
	gw.url = "ws://" + ln.Addr().String() + protocol.Path
	if err := waitUntil(ctx, 20*time.Second, gw.srv.RouterConnected); err != nil {
		return nil, fmt.Errorf("gateway never saw the router connected: %w", err)
	}
	return gw, nil
}

// close shuts the gateway down: connections, HTTP server, seats, NATS.
func (gw *gateway) close() {
	if gw.srv != nil {
		closeWithin(gw.srv.Shutdown, 10*time.Second)
	}
	if gw.hs != nil {
		closeWithin(gw.hs.Shutdown, 5*time.Second)
		_ = gw.hs.Close()
		<-gw.done
	}
	if gw.pool != nil {
		closeWithin(gw.pool.Close, 5*time.Second)
	}
	if gw.nc != nil {
		gw.nc.Close()
	}
}

// seatPool adapts a seats.Pool to what the gateway asks of it.
type seatPool struct{ p *seats.Pool }

// Acquire takes a seat for a session.
func (s seatPool) Acquire(ctx context.Context, sessionID string) (func(context.Context) error, error) {
	seat, err := s.p.Acquire(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	return seat.Release, nil
}

// closeWithin calls a Close or Shutdown with a deadline.
func closeWithin(fn func(context.Context) error, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = fn(ctx)
}

// waitUntil polls cond every 10 ms until it holds, ctx ends or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (cause %v)", ctx.Err(), context.Cause(ctx))
		case <-t.C:
		}
	}
	return nil
}

// newLogger returns the tool's logger: warnings and errors to stderr.
func newLogger(level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level %q: %w", level, err)
	}
	w := zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: "15:04:05.000"}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
