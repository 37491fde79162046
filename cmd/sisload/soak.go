package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/internal/process"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// soakOpts are the flags of sisload soak.
type soakOpts struct {
	bin          string
	duration     time.Duration
	every        time.Duration
	warmup       time.Duration
	clients      int
	gateways     int
	restartEvery time.Duration
	tenants      int
	groups       int
	speed        float64
	rate         float64
	linkDrops    bool
	slow         float64
	life         time.Duration
	maxGroups    int
	outbound     int
	dir          string
	seed         uint64
	jsonFile     string
}

func (o *soakOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.bin, "sisbridge", "bin/sisbridge", "the sisbridge binary to run the router adapter and the gateways with")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the soak runs")
	fs.DurationVar(&o.every, "every", 30*time.Second, "how often a row of the table is printed")
	fs.DurationVar(&o.warmup, "warmup", 0, "the start of the run that growth is not judged on (default: a fifth of --duration, at least --every)")
	fs.IntVar(&o.clients, "clients", 150, "clients connected at once, each churning")
	fs.IntVar(&o.gateways, "gateways", 2, "gateway processes; the last is restarted every --restart-every, the first never (it is watched for leaks)")
	fs.DurationVar(&o.restartEvery, "restart-every", 2*time.Minute, "how often the last gateway is restarted, SIGTERM and SIGKILL in turn (0: never)")
	fs.IntVar(&o.tenants, "tenants", 3, "simulated tenants")
	fs.IntVar(&o.groups, "groups", 10, "simulated service groups per tenant")
	fs.Float64Var(&o.speed, "speed", 10, "simulated seconds per second (the simulated day starts at 11:00: at 10 a 30-minute soak stays within business hours)")
	fs.Float64Var(&o.rate, "rate", 40, "multiplier of the simulated arrival rates")
	fs.BoolVar(&o.linkDrops, "link-drops", true, "drop the simulated router link now and then (every session gets RouterDisconnected)")
	fs.Float64Var(&o.slow, "slow", 0.15, "share of connections that stop reading for seconds now and then")
	fs.DurationVar(&o.life, "life", 20*time.Second, "longest life of one connection")
	fs.IntVar(&o.maxGroups, "max-groups", 6, "most groups one connection follows at once")
	fs.IntVar(&o.outbound, "outbound-limit", 256<<10, "the gateways' --outbound-limit: small, so that slow readers are cut off (4009)")
	fs.StringVar(&o.dir, "dir", "", "directory for the JetStream store and the processes' logs (default: a new temporary one, kept)")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "seed of the clients' choices")
	fs.StringVar(&o.jsonFile, "json", "", "also write the rows and the verdict to this file")
}

func (o *soakOpts) validate() error {
	var errs flagErrors
	errs.check(o.duration > 0 && o.every > 0, "--duration and --every must be positive")
	errs.check(o.clients > 0 && o.gateways > 0, "--clients and --gateways must be positive")
	errs.check(o.tenants > 0 && o.groups > 0, "--tenants and --groups must be positive")
	errs.check(o.slow >= 0 && o.slow <= 1, "--slow is a share, 0 to 1")
	errs.check(o.life >= 100*time.Millisecond && o.maxGroups > 0, "--life must be at least 100ms and --max-groups positive")
	if o.warmup == 0 {
		o.warmup = max(o.duration/5, o.every)
	}
	if _, err := os.Stat(o.bin); err != nil {
		errs = append(errs, fmt.Errorf("--sisbridge: %w (make build makes it)", err))
	}
	return errs.err()
}

// soakCommand runs sisload soak: the table as it goes, then the verdict.
func soakCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o soakOpts
	if err := parseCommand("sisload soak", &o, args, stderr); err != nil {
		return err
	}
	res, err := runSoak(ctx, o, stdout)
	if res != nil {
		if jerr := writeJSON(o.jsonFile, res); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// soakStack is what a soak runs: NATS in this process, the router adapter
// and the gateways as sisbridge processes.
type soakStack struct {
	dir      string
	ns       *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	router   *soakProc
	gateways []*soakProc
}

// startSoakStack starts NATS with a user per role, the router adapter
// with the simulator, and the gateways.
func startSoakStack(ctx context.Context, o soakOpts, log zerolog.Logger) (st *soakStack, err error) {
	st = &soakStack{dir: o.dir}
	defer func() {
		if err != nil {
			st.close(io.Discard)
		}
	}()
	creds, err := access.Generate(access.Adapter, access.Gateway)
	if err != nil {
		return nil, err
	}
	credsFile := filepath.Join(st.dir, "nats-credentials.json")
	if err := creds.Save(credsFile); err != nil {
		return nil, err
	}
	if err := st.startNATS(creds, log); err != nil {
		return nil, err
	}
	if err := st.startRouter(ctx, o, credsFile); err != nil {
		return nil, err
	}
	return st, st.startGateways(ctx, o, credsFile)
}

// startNATS runs the NATS server and connects to it as a gateway.
func (st *soakStack) startNATS(creds access.Credentials, log zerolog.Logger) error {
	users, err := creds.ServerUsers(true)
	if err != nil {
		return err
	}
	st.ns, err = embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(st.dir, "nats"), MaxStore: 8 << 30, Users: users}, log)
	if err != nil {
		return err
	}
	s := creds[access.Gateway]
	st.nc, err = nats.Connect(st.ns.ClientURL(), nats.Name("sisload-soak"), nats.UserInfo(s.User, s.Password),
		nats.CustomInboxPrefix(access.Gateway.Inbox()))
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	st.js, err = jetstream.New(st.nc)
	return err
}

// startRouter starts the router adapter with the simulator.
func (st *soakStack) startRouter(ctx context.Context, o soakOpts, credsFile string) error {
	addr, err := process.FreeAddr()
	if err != nil {
		return err
	}
	st.router = &soakProc{metrics: addr, Process: &process.Process{Name: "router", Bin: o.bin, Ready: "http://" + addr + "/readyz",
		Log: filepath.Join(st.dir, "router.log"), Args: []string{"router", "--nats", st.ns.ClientURL(), "--nats-credentials", credsFile, "--listen", addr,
			"--source", "sim", "--speed", fmt.Sprint(o.speed), "--rate", fmt.Sprint(o.rate), "--tenants", fmt.Sprint(o.tenants),
			"--groups", fmt.Sprint(o.groups), fmt.Sprintf("--link-drops=%v", o.linkDrops), "--log-level", "warn", "--log-format", "json"}}}
	return st.router.Start(ctx, time.Minute)
}

// startGateways starts the gateways, named gw-a, gw-b...
func (st *soakStack) startGateways(ctx context.Context, o soakOpts, credsFile string) error {
	for i := range o.gateways {
		addr, err := process.FreeAddr()
		if err != nil {
			return err
		}
		metrics, err := process.FreeAddr()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("gw-%c", 'a'+i)
		p := &soakProc{metrics: metrics, url: "ws://" + addr + protocol.Path, Process: &process.Process{Name: name, Bin: o.bin,
			Ready: "http://" + metrics + "/readyz", Log: filepath.Join(st.dir, name+".log"), Args: []string{"gateway", "--nats", st.ns.ClientURL(), "--nats-credentials", credsFile, "--listen", addr,
				"--metrics-listen", metrics, "--license-seats", "100000", "--max-connections-per-address", "-1",
				"--max-request-rate", "-1", "--outbound-limit", fmt.Sprint(o.outbound), "--keepalive", "5s",
				"--heartbeat-timeout", "20s", "--drain-delay", "1s", "--log-level", "warn", "--log-format", "json"}}}
		st.gateways = append(st.gateways, p)
		if err := p.Start(ctx, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// urls returns the gateways' WebSocket URLs.
func (st *soakStack) urls() []string {
	out := make([]string, len(st.gateways))
	for i, g := range st.gateways {
		out[i] = g.url
	}
	return out
}

// groups reads the directory once it holds want groups.
func (st *soakStack) groups(ctx context.Context, want int) ([]subjects.Group, error) {
	kv, err := st.js.KeyValue(ctx, subjects.BucketDirectory)
	if err != nil {
		return nil, fmt.Errorf("open the directory: %w", err)
	}
	var out []subjects.Group
	err = waitUntil(ctx, time.Minute, func() bool {
		d, err := subjects.ReadDirectory(ctx, kv)
		out = out[:0]
		for _, g := range d.Groups {
			out = append(out, g)
		}
		return err == nil && len(out) >= want
	})
	if err != nil {
		return nil, fmt.Errorf("directory: %d groups of %d: %w", len(out), want, err)
	}
	return out, nil
}

// close stops the gateways and the router (SIGTERM: each must exit by
// itself, with status 0) and NATS; what went wrong is written to w.
func (st *soakStack) close(w io.Writer) (clean bool) {
	clean = true
	for _, p := range append(st.gateways, st.router) {
		if p == nil {
			continue
		}
		if err := p.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
			fmt.Fprintln(w, "soak:", err)
			clean = false
		}
	}
	if st.nc != nil {
		st.nc.Close()
	}
	if st.ns != nil {
		st.ns.Shutdown()
		st.ns.WaitForShutdown()
	}
	return clean
}
