package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/subjects"
)

// groupsOpts are the flags of sisload groups.
type groupsOpts struct {
	groups, tenants, depth int
	clients, window        int
	format                 string
	deadline, idle, probe  time.Duration
	timeout                time.Duration
	logLevel, jsonFile     string
	statistics             bool
}

// register declares the flags.
func (o *groupsOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.groups, "groups", 10000, "groups in the directory, each subscribed to once")
	fs.IntVar(&o.tenants, "tenants", 4, "tenants the groups are spread over")
	fs.IntVar(&o.depth, "depth", 3, "sessions queued in each group")
	fs.IntVar(&o.clients, "clients", 1, "connections sharing the Subscribes (group i goes to client i mod clients)")
	fs.IntVar(&o.window, "window", 64, "Subscribes in flight per connection (the gateway answers a connection's requests in order)")
	fs.StringVar(&o.format, "format", "json", "subprotocol: json or msgpack")
	fs.BoolVar(&o.statistics, "statistics", false, "each Subscribe asks for QueueStatistics too (every view then keeps statistics)")
	fs.DurationVar(&o.deadline, "deadline", 120*time.Second, "bound on subscribing, from the first Subscribe")
	fs.DurationVar(&o.idle, "idle", 20*time.Second, "idle window measured before subscribing (baseline) and after")
	fs.DurationVar(&o.probe, "live-check", 10*time.Second, "after the idle window, wait this long for one enqueue in each group with InitialDataComplete to reach the client (0: no check)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on the whole command")
	fs.StringVar(&o.logLevel, "log-level", "error", "log level of the embedded server, adapter and gateway (warn shows every view rebuild)")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results to this JSON file")
}

// validate checks the flags.
func (o *groupsOpts) validate() error {
	if _, err := parseFormat(o.format); err != nil {
		return err
	}
	var errs flagErrors
	errs.check(o.groups >= 1 && o.tenants >= 1 && o.depth >= 0, "--groups, --tenants: want at least 1; --depth: at least 0")
	errs.check(o.clients >= 1 && o.clients <= o.groups, "--clients: want 1 to --groups")
	errs.check(o.window >= 1, "--window: want at least 1")
	errs.check(o.deadline > 0 && o.idle >= time.Second && o.timeout > 0 && o.probe >= 0, "--deadline, --timeout: want more than 0; --idle: at least 1s; --live-check: at least 0")
	errs.check(o.timeout > 2*o.idle+o.deadline+o.probe, "--timeout: want more than 2 x --idle + --deadline + --live-check")
	return errs.err()
}

// groupsResult is what a groups run measured.
type groupsResult struct {
	Groups  int `json:"groups"`
	Tenants int `json:"tenants"`
	Depth   int `json:"depth"`
	Clients int `json:"clients"`
	// Subscribing: requests sent and answered, Succeeded true and false,
	// failures by kind, IDCs before the deadline and the time to the last.
	Sent         int64            `json:"sent"`
	Replies      int64            `json:"replies"`
	Succeeded    int64            `json:"succeeded"`
	NotSucceeded int64            `json:"notSucceeded"`
	Faults       map[string]int64 `json:"faults,omitempty"`
	Completed    int64            `json:"completed"`
	Last         time.Duration    `json:"lastNs"`
	Elapsed      time.Duration    `json:"elapsedNs"`
	Closed       int64            `json:"closed"`
	CloseCodes   map[int]int64    `json:"closeCodes,omitempty"`
	// Base is the baseline (clients initialized, nothing subscribed), Idle
	// the end of the idle window after subscribing; memory settled.
	Base groupsPhase `json:"base"`
	Idle groupsPhase `json:"idle"`
	// RebuildsSubscribing counts view rebuilds from the first Subscribe to
	// the idle window.
	RebuildsSubscribing float64 `json:"rebuildsSubscribing"`
	// Probe is the live check after the idle window.
	Probe probeResult `json:"probe"`
}

// groupsPhase is one idle window's figures.
type groupsPhase struct {
	Mem      memSample     `json:"mem"`
	CPU      time.Duration `json:"cpuNs"`
	Window   time.Duration `json:"windowNs"`
	Rebuilds float64       `json:"rebuilds"`
	// Views, Subscriptions: the gateway's at the end; Consumers: on the
	// events stream.
	Views         int `json:"views"`
	Subscriptions int `json:"subscriptions"`
	Consumers     int `json:"consumers"`
}

// groupsCommand runs sisload groups and prints its table.
func groupsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o groupsOpts
	if err := parseCommand("sisload groups", &o, args, stderr); err != nil {
		return err
	}
	r, err := runGroups(ctx, o, stderr)
	if err != nil {
		return err
	}
	printGroups(stdout, r)
	return writeJSON(o.jsonFile, r)
}

// runGroups starts the stack with the directory, measures a baseline idle
// window, has the clients subscribe to every group until the deadline, and
// measures an idle window with everything subscribed.
func runGroups(ctx context.Context, o groupsOpts, stderr io.Writer) (groupsResult, error) {
	r := groupsResult{Groups: o.groups, Tenants: o.tenants, Depth: o.depth, Clients: o.clients}
	format, _ := parseFormat(o.format)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	log, err := newLogger(o.logLevel)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	st, err := startStackTenants(ctx, log, o.groups, o.depth, o.tenants)
	if err != nil {
		return r, err
	}
	defer st.Close()
	gw, err := st.startGateway(ctx, bridge.Config{}, o.clients+10)
	if err != nil {
		return r, err
	}
	defer gw.close()
	fmt.Fprintf(stderr, "[groups] %d groups of %d sessions in %d tenants stored, gateway up, in %s\n", o.groups, o.depth, o.tenants, time.Since(t0).Round(time.Millisecond))
	if err := awaitSnapshots(ctx, st, o, stderr); err != nil {
		return r, err
	}
	t := newGroupsTally(st.groups)
	gc, err := openGroupsClients(ctx, gw.url, format, o.clients, st.groups, t)
	if err != nil {
		return r, err
	}
	defer gc.Close()
	if r.Base, err = idleWindow(ctx, "baseline", st, gw, o.idle, stderr); err != nil {
		return r, err
	}
	rebuilds0 := gatewayValue(gw.reg, "sis_gateway_view_rebuilds_total")
	subscribePhase(ctx, &r, gc, gw, o, stderr)
	r.RebuildsSubscribing = gatewayValue(gw.reg, "sis_gateway_view_rebuilds_total") - rebuilds0
	if r.Idle, err = idleWindow(ctx, "subscribed", st, gw, o.idle, stderr); err != nil || o.probe == 0 {
		return r, err
	}
	r.Probe, err = probeLive(ctx, st, t, o.probe, stderr)
	return r, err
}

// awaitSnapshots waits until the adapter has stored a snapshot of every
// pre-filled group (it writes them a few seconds after the pre-fill, which
// takes a while for thousands of groups): the baseline is then idle, and
// views load from snapshots, as in a system that has been running.
func awaitSnapshots(ctx context.Context, st *stack, o groupsOpts, stderr io.Writer) error {
	if o.depth == 0 {
		return nil
	}
	t0 := time.Now()
	stored := func() bool {
		s := st.adapter.Stats()
		return s.Snapshots+s.SnapshotErrors >= uint64(o.groups)
	}
	if err := waitUntil(ctx, 5*time.Minute, stored); err != nil {
		return fmt.Errorf("the adapter stored %d of %d snapshots: %w", st.adapter.Stats().Snapshots, o.groups, err)
	}
	if s := st.adapter.Stats(); s.SnapshotErrors > 0 {
		fmt.Fprintf(stderr, "[groups] %d snapshots failed\n", s.SnapshotErrors)
	}
	fmt.Fprintf(stderr, "[groups] the adapter stored every group's snapshot in %s\n", time.Since(t0).Round(time.Millisecond))
	return nil
}

// subscribePhase sends the Subscribes and waits until every group's IDC
// came, every request was answered and every success completed, every
// client closed, or the deadline passed.
func subscribePhase(ctx context.Context, r *groupsResult, gc *groupsClients, gw *gateway, o groupsOpts, stderr io.Writer) {
	sctx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()
	start := time.Now()
	gc.subscribeAll(sctx, o.window, o.statistics)
	t := gc.t
	done := func() bool {
		answered := t.replies.Load() == int64(o.groups) && t.completed.Load() >= t.succeeded.Load()
		return t.completed.Load() == int64(o.groups) || answered || t.closed.Load() == int64(o.clients)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastLine := time.Now()
	for !done() && sctx.Err() == nil {
		select {
		case <-sctx.Done():
		case <-tick.C:
		}
		if time.Since(lastLine) >= time.Second {
			lastLine = time.Now()
			s := gw.srv.Stats()
			fmt.Fprintf(stderr, "[groups] %3.0fs  sent %d  answered %d  succeeded %d  InitialDataComplete %d  views %d  rebuilds %.0f  closed %d\n",
				time.Since(start).Seconds(), t.sent.Load(), t.replies.Load(), t.succeeded.Load(), t.completed.Load(), s.Views,
				gatewayValue(gw.reg, "sis_gateway_view_rebuilds_total"), t.closed.Load())
		}
	}
	t.counting.Store(false)
	r.Elapsed = time.Since(start)
	cancel()
	r.Sent, r.Replies, r.Succeeded, r.NotSucceeded = t.sent.Load(), t.replies.Load(), t.succeeded.Load(), t.notSucceeded.Load()
	r.Completed, r.Last, r.Closed = t.completed.Load(), time.Duration(t.lastNs.Load()), t.closed.Load()
	r.Faults, r.CloseCodes = t.Faults()
}

// idleWindow measures this process's CPU time and the gateway's view
// rebuilds over d with the router idle, then its settled memory.
func idleWindow(ctx context.Context, name string, st *stack, gw *gateway, d time.Duration, stderr io.Writer) (groupsPhase, error) {
	var p groupsPhase
	fmt.Fprintf(stderr, "[groups] %s: idle for %s\n", name, d)
	rebuilds0, cpu0, t0 := gatewayValue(gw.reg, "sis_gateway_view_rebuilds_total"), cpuTime(), time.Now()
	select {
	case <-ctx.Done():
		return p, ctx.Err()
	case <-time.After(d):
	}
	p.CPU, p.Window = cpuTime()-cpu0, time.Since(t0)
	p.Rebuilds = gatewayValue(gw.reg, "sis_gateway_view_rebuilds_total") - rebuilds0
	p.Mem = settledMem()
	s := gw.srv.Stats()
	p.Views, p.Subscriptions = s.Views, s.Subscriptions
	p.Consumers = streamConsumers(ctx, st)
	fmt.Fprintf(stderr, "[groups] %s: CPU %.3f cores, heap %s MiB, RSS %s MiB, %d goroutines, %d views, %d consumers, %.0f rebuilds\n",
		name, p.cores(), mibs(p.Mem.Heap), mibs(p.Mem.RSS), p.Mem.Goroutines, p.Views, p.Consumers, p.Rebuilds)
	return p, nil
}

// cores is the CPU time over the window: cores busy on average.
func (p groupsPhase) cores() float64 { return p.CPU.Seconds() / max(p.Window.Seconds(), 1e-9) }

// streamConsumers returns how many consumers the events stream has (-1 if
// it cannot be read).
func streamConsumers(ctx context.Context, st *stack) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := st.js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return info.State.Consumers
}

// printGroups prints the groups run's tables.
func printGroups(w io.Writer, r groupsResult) {
	fmt.Fprintf(w, "\ngroups: %d groups of %d sessions in %d tenants, subscribed to once each by %d connection(s)\n", r.Groups, r.Depth, r.Tenants, r.Clients)
	fmt.Fprintf(w, "Subscribes sent %d, answered %d: Succeeded %d, Succeeded false %d; failed: %s\n",
		r.Sent, r.Replies, r.Succeeded, r.NotSucceeded, faultsLabel(r.Faults))
	fmt.Fprintf(w, "InitialDataComplete: %d of %d groups within %s; the last %s after the first Subscribe\n", r.Completed, r.Groups, ms(r.Elapsed), ms(r.Last))
	if r.Closed > 0 {
		fmt.Fprintf(w, "connections closed by the gateway: %d, by close code (0: no close frame): %s\n", r.Closed, codesLabel(r.CloseCodes))
	}
	fmt.Fprintf(w, "view rebuilds (gateway metric): %.0f while subscribing, %.0f in the %s idle window (%.1f/s)\n",
		r.RebuildsSubscribing, r.Idle.Rebuilds, r.Idle.Window.Round(time.Second), r.Idle.Rebuilds/max(r.Idle.Window.Seconds(), 1e-9))
	printGroupsCost(w, r)
	printProbe(w, r.Probe)
}

// printGroupsCost prints the idle cost table: total and per subscribed
// group, less the baseline.
func printGroupsCost(w io.Writer, r groupsResult) {
	fmt.Fprintf(w, "idle cost in this process (NATS server + JetStream + router adapter + gateway; the client too, one connection), router idle:\n")
	fmt.Fprintf(w, "  %-22s %12s %12s %12s %12s\n", "", "heap MiB", "RSS MiB", "goroutines", "CPU cores")
	b, i := r.Base, r.Idle
	fmt.Fprintf(w, "  %-22s %12s %12s %12d %12.3f\n", "baseline", mibs(b.Mem.Heap), mibs(b.Mem.RSS), b.Mem.Goroutines, b.cores())
	fmt.Fprintf(w, "  %-22s %12s %12s %12d %12.3f\n", "subscribed", mibs(i.Mem.Heap), mibs(i.Mem.RSS), i.Mem.Goroutines, i.cores())
	printPer(w, fmt.Sprintf("per subscribed group (the difference / the gateway's %d subscriptions at the end)", i.Subscriptions), b, i, i.Subscriptions)
	if i.Views != i.Subscriptions {
		printPer(w, fmt.Sprintf("per view held (the difference / the gateway's %d views at the end)", i.Views), b, i, i.Views)
	}
	fmt.Fprintf(w, "  at the end of the idle window: the gateway held %d views and %d subscriptions; the events stream had %d consumers (baseline %d)\n",
		i.Views, i.Subscriptions, i.Consumers, b.Consumers)
	fmt.Fprintf(w, "  memory after GC with freed memory returned; CPU: user+system time of the process over each %s window.\n", i.Window.Round(time.Second))
}

// printPer prints the difference between two phases divided by n, when n
// is positive.
func printPer(w io.Writer, what string, b, i groupsPhase, n int) {
	if n <= 0 {
		return
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) / 1024 }
	fmt.Fprintf(w, "  %s: heap %.1f KiB, RSS %.1f KiB, %.2f goroutines, %.1f µs of CPU per second\n", what,
		per(i.Mem.Heap, b.Mem.Heap), per(i.Mem.RSS, b.Mem.RSS), float64(i.Mem.Goroutines-b.Mem.Goroutines)/float64(n), (i.cores()-b.cores())*1e6/float64(n))
}
