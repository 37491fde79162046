package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// failoverOpts are the flags of sisload failover.
type failoverOpts struct {
	groups   int
	prefill  int
	kills    int
	lease    time.Duration
	rate     float64
	warm     time.Duration
	logLevel string
	jsonFile string
}

func (o *failoverOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.groups, "groups", 10000, "service groups")
	fs.IntVar(&o.prefill, "prefill", 5, "sessions queued in each group at the start")
	fs.IntVar(&o.kills, "kills", 10, "how many times the active adapter is killed")
	fs.DurationVar(&o.lease, "lease", 3*time.Second, "the adapter lease (--adapter-lease)")
	fs.Float64Var(&o.rate, "rate", 2000, "router changes per second while the standby follows")
	fs.DurationVar(&o.warm, "warm", 3*time.Second, "how long the router drives the active, the standby following, before each kill")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results to this file")
}

func (o *failoverOpts) validate() error {
	var errs flagErrors
	errs.check(o.groups > 0 && o.kills > 0, "--groups and --kills must be positive")
	errs.check(o.lease >= time.Second, "--lease must be at least 1s")
	errs.check(o.rate > 0 && o.warm > 0, "--rate and --warm must be positive")
	return errs.err()
}

// failoverKill is what one kill of the active adapter cost.
type failoverKill struct {
	// StandbyOpen is how long the standby took to open: a cold restore
	// of every group, paid before any failure.
	StandbyOpen time.Duration `json:"standbyOpen"`
	// Takeover is from the kill to the standby's adapter started, holding
	// every group as the stream has it.
	Takeover time.Duration `json:"takeover"`
	// Followed is how many changes the standby applied live before the kill.
	Followed int64 `json:"followed"`
}

// failoverCommand runs sisload failover and prints its table.
func failoverCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o failoverOpts
	if err := parseCommand("sisload failover", &o, args, stderr); err != nil {
		return err
	}
	kills, err := runFailover(ctx, o, stderr)
	printFailover(stdout, o, kills)
	if err != nil {
		return err
	}
	return writeJSON(o.jsonFile, kills)
}

// runFailover kills the active adapter o.kills times, a warm standby
// taking over each time, and measures each takeover.
func runFailover(ctx context.Context, o failoverOpts, progress io.Writer) ([]failoverKill, error) {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sisload-failover-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ns, err := startNATS(dir, log)
	if err != nil {
		return nil, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	f := &failover{o: o, url: ns.ClientURL(), log: log, progress: progress}
	defer f.close()
	if err := f.startActive(ctx); err != nil {
		return nil, err
	}
	var kills []failoverKill
	for k := range o.kills {
		kill, err := f.killOnce(ctx, k+1)
		if err != nil {
			return kills, fmt.Errorf("kill %d: %w", k+1, err)
		}
		kills = append(kills, kill)
		fmt.Fprintf(progress, "kill %d: standby opened in %s, took over %s after the kill\n", k+1, kill.StandbyOpen.Round(time.Millisecond), kill.Takeover.Round(time.Millisecond))
	}
	return kills, nil
}

// failover is the adapters of one run.
type failover struct {
	o        failoverOpts
	url      string
	log      zerolog.Logger
	progress io.Writer
	nc       *nats.Conn // the active's connection
	active   *router.Adapter
	driver   *driver
}

// config is the adapter configuration of adapter n.
func (f *failover) config(n int) router.Config {
	return router.Config{Name: fmt.Sprintf("adapter-%d", n), Bus: subjects.Config{AdapterLeaseTTL: f.o.lease}}
}

// connect opens a NATS connection of its own.
func (f *failover) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(f.url, nats.Name(name))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	return nc, js, err
}

// startActive opens the first adapter and fills the directory.
func (f *failover) startActive(ctx context.Context) error {
	nc, js, err := f.connect("adapter-0")
	if err != nil {
		return err
	}
	f.nc = nc
	if f.active, err = router.Open(ctx, js, f.log, f.config(0)); err != nil {
		return err
	}
	f.driver = newDriver(f.active, groupNames(f.o.groups), f.o.prefill)
	st := f.driver.state()
	if err := f.active.LinkUp(ctx, &st); err != nil {
		return err
	}
	fmt.Fprintf(f.progress, "%d groups stored\n", f.o.groups)
	return f.active.Flush(ctx)
}

// killOnce opens a standby, drives the active while it follows, kills the
// active (its connection cut, its lease left to lapse) and times the
// takeover; the new active then reconciles with the router.
func (f *failover) killOnce(ctx context.Context, n int) (failoverKill, error) {
	var k failoverKill
	snc, sjs, err := f.connect(fmt.Sprintf("adapter-%d", n))
	if err != nil {
		return k, err
	}
	start := time.Now()
	sb, err := router.OpenStandby(ctx, sjs, f.log, f.config(n))
	if err != nil {
		snc.Close()
		return k, err
	}
	k.StandbyOpen = time.Since(start)
	next := make(chan error, 1)
	var taken *router.Adapter
	go func() {
		var err error
		taken, err = sb.Await(ctx)
		next <- err
	}()
	p, err := f.driver.run(ctx, f.o.rate, f.o.warm)
	if err != nil {
		return k, err
	}
	k.Followed = p.Applied
	f.nc.Close() // the kill
	died := time.Now()
	if err := <-next; err != nil {
		return k, err
	}
	k.Takeover = time.Since(died)
	go closeWithin(f.active.Close, time.Second) // the dead one finds it stood down
	f.active, f.nc, f.driver.a = taken, snc, taken
	st := f.driver.state()
	return k, taken.LinkUp(ctx, &st)
}

// close closes the active adapter and its connection.
func (f *failover) close() {
	if f.active != nil {
		closeWithin(f.active.Close, 10*time.Second)
	}
	if f.nc != nil {
		f.nc.Close()
	}
}

// printFailover prints the table and the median and worst takeover.
func printFailover(w io.Writer, o failoverOpts, kills []failoverKill) {
	fmt.Fprintf(w, "\nfailover: %d groups, lease %s, router at %g changes/s while the standby follows\n", o.groups, o.lease, o.rate)
	fmt.Fprintf(w, "%5s %16s %16s %10s\n", "kill", "standby open", "takeover", "followed")
	var took []time.Duration
	for i, k := range kills {
		fmt.Fprintf(w, "%5d %16s %16s %10d\n", i+1, k.StandbyOpen.Round(time.Millisecond), k.Takeover.Round(time.Millisecond), k.Followed)
		took = append(took, k.Takeover)
	}
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	fmt.Fprintf(w, "takeover after a kill: median %s, max %s (of %d)\n", took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), len(took))
}
