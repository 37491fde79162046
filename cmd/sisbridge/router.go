package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/feed"
	"github.com/sisbridge/sisbridge/router/sim"
)

// adapterFlags configure the router adapter.
type adapterFlags struct {
	cfg       router.Config
	retention time.Duration
	replicas  int
	lease     time.Duration
}

func (a *adapterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.cfg.Name, "name", hostName(), "adapter instance name, shown in the router status")
	fs.Uint64Var(&a.cfg.SnapshotEvery, "snapshot-every", 5000, "snapshot a group after this many changes")
	fs.DurationVar(&a.cfg.SnapshotInterval, "snapshot-interval", 5*time.Second, "snapshot every changed group this often")
	fs.DurationVar(&a.retention, "retention", 24*time.Hour, "how long JetStream keeps events")
	fs.IntVar(&a.replicas, "replicas", 1, "JetStream replicas of every stream and bucket: 1, 3 or 5")
	fs.DurationVar(&a.cfg.ClockSkew, "clock-skew", 5*time.Minute, "how far a TimeEnteredQueue may lie ahead of the router's clock before the change is refused")
	fs.DurationVar(&a.lease, "adapter-lease", 3*time.Second, "the active adapter's lease: a standby takes over about this long after the active dies or stalls (the same on every adapter of a router)")
}

func (a *adapterFlags) config() router.Config {
	c := a.cfg
	c.Bus.EventRetention, c.Bus.Replicas, c.Bus.AdapterLeaseTTL = a.retention, a.replicas, a.lease
	return c
}

func hostName() string {
	h, err := os.Hostname()
	if err != nil {
		return "adapter"
	}
	return h
}

// simFlags configure the simulator.
type simFlags struct {
	cfg sim.Config
}

func (s *simFlags) register(fs *flag.FlagSet) {
	fs.Uint64Var(&s.cfg.Seed, "seed", 1, "simulator seed: the same seed gives the same traffic")
	fs.Float64Var(&s.cfg.Speed, "speed", 1, "simulated seconds per second; -1 runs as fast as possible")
	fs.IntVar(&s.cfg.Tenants, "tenants", 3, "simulated tenants")
	fs.IntVar(&s.cfg.GroupsPerTenant, "groups", 3, "simulated service groups per tenant")
	fs.Float64Var(&s.cfg.Rate, "rate", 1, "multiplier of the simulated arrival rates")
	fs.BoolVar(&s.cfg.LinkDrops, "link-drops", false, "drop the simulated router link now and then")
	fs.BoolVar(&s.cfg.GroupChurn, "group-churn", false, "close a simulated service group down for good now and then (removed from the directory), and set it up again a few minutes later")
}

func (s *simFlags) source(log zerolog.Logger) (router.Source, error) {
	c := s.cfg
	c.Log = log.With().Str("component", "sim").Logger()
	return sim.New(c)
}

// feedFlags configure the NDJSON feed.
type feedFlags struct {
	listen, token, file string
	idle                time.Duration
	maxLine             int
	maxBody             int64
}

func (f *feedFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "feed-listen", "", "address of the HTTP feed endpoint, e.g. 127.0.0.1:8090 (POST /v1/feed)")
	fs.StringVar(&f.token, "feed-token", "", "bearer token of the HTTP feed (default: $SIS_FEED_TOKEN)")
	fs.StringVar(&f.file, "feed-file", "", `NDJSON file to read changes from, "-" for standard input`)
	fs.DurationVar(&f.idle, "feed-idle-timeout", 0, "report the router link down after this long without a feed line (0: never)")
	fs.IntVar(&f.maxLine, "feed-max-line", feed.DefaultMaxLine, "longest feed line accepted, bytes")
	fs.Int64Var(&f.maxBody, "feed-max-body", feed.DefaultMaxBody, "largest HTTP feed request body accepted, bytes")
}

// check names every feed flag that cannot work.
func (f *feedFlags) check() error {
	var errs []error
	if f.idle < 0 {
		errs = append(errs, fmt.Errorf("--feed-idle-timeout %s: want 0 (never) or more", f.idle))
	}
	if f.maxLine < 1 {
		errs = append(errs, fmt.Errorf("--feed-max-line %d: want at least 1", f.maxLine))
	}
	if f.maxBody < 1 {
		errs = append(errs, fmt.Errorf("--feed-max-body %d: want at least 1", f.maxBody))
	}
	return errors.Join(errs...)
}

// source builds the feed; the returned closer closes its file.
func (f *feedFlags) source(stdin io.Reader, log zerolog.Logger) (router.Source, func(), error) {
	if err := f.check(); err != nil {
		return nil, func() {}, err
	}
	cfg := feed.Config{Listen: f.listen, Token: f.token, IdleTimeout: f.idle, MaxLine: f.maxLine, MaxBody: f.maxBody}
	if cfg.Token == "" {
		cfg.Token = os.Getenv("SIS_FEED_TOKEN")
	}
	closer := func() {}
	switch f.file {
	case "":
		if f.listen == "" {
			return nil, closer, errors.New("feed: give --feed-listen, --feed-file or both")
		}
	case "-":
		cfg.Input, cfg.InputName = stdin, "stdin"
	default:
		file, err := os.Open(f.file)
		if err != nil {
			return nil, closer, fmt.Errorf("feed: %w", err)
		}
		cfg.Input, cfg.InputName, closer = file, f.file, func() { _ = file.Close() }
	}
	src, err := feed.New(cfg, log.With().Str("component", "feed").Logger())
	if err != nil {
		closer()
		return nil, func() {}, err
	}
	return src, closer, nil
}

// routerFlags are the flags of the commands that run a router adapter.
type routerFlags struct {
	lf     logFlags
	af     adapterFlags
	sf     simFlags
	ff     feedFlags
	source string
}

func (r *routerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.source, "source", "sim", "router source: sim or feed")
	r.lf.register(fs)
	r.af.register(fs)
	r.sf.register(fs)
	r.ff.register(fs)
}

// setup parses args and builds the logger and the router source; the
// returned function closes the source's file.
func (r *routerFlags) setup(fs *flag.FlagSet, args []string, stdin io.Reader, stderr io.Writer) (zerolog.Logger, router.Source, func(), error) {
	if err := fs.Parse(args); err != nil {
		return zerolog.Logger{}, nil, nil, err
	}
	log, err := r.lf.logger(stderr)
	if err != nil {
		return log, nil, nil, err
	}
	src, closeSrc, err := pickSource(r.source, &r.sf, &r.ff, stdin, log)
	return log, src, closeSrc, err
}

// routerCmd is the router command's flags.
type routerCmd struct {
	rf     routerFlags
	nf     natsFlags
	listen string
}

// newRouterCmd declares the router command's flags.
func newRouterCmd(stderr io.Writer) (*flag.FlagSet, *routerCmd) {
	fs := flag.NewFlagSet("sisbridge router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &routerCmd{}
	c.nf.register(fs, access.Adapter)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8091", `HTTP address of the adapter's /healthz, /readyz and /metrics ("" for none)`)
	c.rf.register(fs)
	return fs, c
}

func runRouter(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	fs, c := newRouterCmd(stderr)
	rf, nf, listen := &c.rf, &c.nf, &c.listen
	log, src, closeSrc, err := rf.setup(fs, args, stdin, stderr)
	if err != nil {
		return err
	}
	if err := rf.af.config().WithDefaults().Validate(); err != nil {
		closeSrc()
		return fmt.Errorf("sisbridge router: adapter: %w", err)
	}
	defer closeSrc()
	var ln net.Listener
	if *listen != "" {
		if ln, err = net.Listen("tcp", *listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		defer ln.Close()
	}
	nc, err := dialNATS(ctx, nf, "sisbridge-router", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	log.Info().Str("nats", access.Redact(nf.url)).Str("source", rf.source).Msg("router adapter starting")
	return serveAdapter(ctx, nc, rf.af.config(), src, log, adapterObs{reg: processRegistry(), ln: ln})
}

// adapterObs is how an adapter is watched: its metrics go to reg (when
// set), and its health and metrics are served on ln (when set).
type adapterObs struct {
	reg *prometheus.Registry
	ln  net.Listener
	// watch, when set, runs beside the adapter until it stops.
	watch func(context.Context, *router.Node)
}

func pickSource(name string, sf *simFlags, ff *feedFlags, stdin io.Reader, log zerolog.Logger) (router.Source, func(), error) {
	switch name {
	case "sim":
		src, err := sf.source(log)
		return src, func() {}, err
	case "feed":
		return ff.source(stdin, log)
	}
	return nil, nil, fmt.Errorf("--source %q: want sim or feed", name)
}

// serveAdapter runs an adapter node on src until ctx ends: it stands by
// while another adapter holds the lease, serves once it holds it, and
// stands by again if it loses it.
func serveAdapter(ctx context.Context, nc *nats.Conn, cfg router.Config, src router.Source, log zerolog.Logger, obs adapterObs) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	alog := log.With().Str("component", "adapter").Logger()
	n := router.NewNode(js, alog, cfg)
	if obs.reg != nil {
		obs.reg.MustRegister(router.NewCollector(n))
	}
	if obs.ln != nil {
		defer serveHTTP(ctx, obs.ln, adapterRoutes(n, obs.reg), alog)()
	}
	if obs.watch != nil {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); obs.watch(wctx, n) }()
		defer func() { cancel(); <-done }()
	}
	stopReport := reportProgress(ctx, n, alog)
	err = n.Run(ctx, src)
	stopReport()
	alog.Info().Msg("adapter stopped")
	return err
}

// reportProgress logs the adapter's throughput every 10 s; the returned
// function stops it and waits for it.
func reportProgress(ctx context.Context, a *router.Node, log zerolog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		last, lastAt := a.Stats(), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				st := a.Stats()
				if st.Accepted < last.Accepted {
					last = router.Stats{} // a new term: counts start again
				}
				rate := float64(st.Accepted-last.Accepted) / now.Sub(lastAt).Seconds()
				if a.Adapter() != nil {
					log.Info().Float64("changes_per_s", rate).Uint64("published", st.Published).Uint64("rejected", st.Rejected).
						Uint64("snapshots", st.Snapshots).Int64("groups", st.Groups).Int64("queued", st.Queued).Msg("progress")
				}
				last, lastAt = st, now
			}
		}
	}()
	return func() { cancel(); <-done }
}
