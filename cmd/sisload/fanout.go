package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/bridge"
)

// fanoutOpts are the flags of sisload fanout.
type fanoutOpts struct {
	clients   int
	groups    int
	perClient int
	rate      float64
	duration  time.Duration
	format    string
	coalesce  time.Duration
	fixed     bool
	cfDelay   time.Duration
	peers     string
	only      string
	jsonFile  string
	procs     int
	buffer    int
	parallel  int
	prefill   int
	drain     time.Duration
	setup     time.Duration
	timeout   time.Duration
	seed      uint64
	logLevel  string
	stats     bool
}

// register declares the flags.
func (o *fanoutOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.clients, "clients", 2000, "clients of each system")
	fs.IntVar(&o.groups, "groups", 100, "service groups in the directory")
	fs.IntVar(&o.perClient, "per-client", 10, "distinct random groups each client subscribes to")
	fs.Float64Var(&o.rate, "rate", 2000, "router changes per second, spread at random over the groups")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long the router driver runs, per system")
	fs.StringVar(&o.format, "format", "json", "gateway subprotocol: json or msgpack")
	fs.DurationVar(&o.coalesce, "coalesce", 10*time.Millisecond, "gateway Coalesce (space its delivery rounds at most this far apart; negative: back to back), and centrifuge's WriteDelay")
	fs.BoolVar(&o.fixed, "fixed-rounds", false, "gateway FixedRounds: space its rounds exactly --coalesce apart")
	fs.DurationVar(&o.cfDelay, "write-delay", -1, "centrifuge's WriteDelay (0: write each message at once, its default); negative: --coalesce")
	fs.StringVar(&o.peers, "peers-follow", peersIngest, peersFollowUsage)
	fs.StringVar(&o.only, "only", "", "run these systems only, comma-separated: gateway, nats, centrifuge")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results to this JSON file")
	fs.IntVar(&o.procs, "client-procs", -1, "child processes running the clients; -1: in this process unless the open-file limit is too low for both ends")
	fs.IntVar(&o.buffer, "client-buffer", 128, "events a gateway client buffers before it stops reading")
	fs.IntVar(&o.parallel, "dial-parallel", 64, "clients connecting at once")
	fs.IntVar(&o.prefill, "depth", 20, "sessions per group, before and during the run")
	fs.BoolVar(&o.stats, "statistics", false, "gateway clients also ask for QueueStatistics of their groups")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "after the driver stops, how long clients may take to catch up")
	fs.DurationVar(&o.setup, "setup-timeout", 5*time.Minute, "bound on connecting and subscribing every client")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "bound on the whole command")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the group assignment")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the embedded server, adapter and gateway")
}

// writeDelay is centrifuge's WriteDelay: --write-delay, or else the
// gateway's Coalesce.
func (o *fanoutOpts) writeDelay() time.Duration {
	if o.cfDelay < 0 {
		return max(o.coalesce, 0)
	}
	return o.cfDelay
}

// The --peers-follow values: what the peers (nats-server's WebSocket
// clients, the centrifuge relay) subscribe to.
const (
	// peersIngest: each event as the adapter publishes it, before the
	// stream has stored it (the gateway follows stored events only).
	peersIngest = "ingest"
	// peersStored: the live subjects the events stream republishes each
	// event on once stored, as the gateway does.
	peersStored = "stored"

	peersFollowUsage = "what nats-ws clients and the centrifuge relay follow: ingest (events as published, before they are stored) or stored (the live subjects, as the gateway)"
)

// validate reports bad flag values.
func (o *fanoutOpts) validate() error {
	var errs []error
	if o.clients < 1 || o.groups < 1 || o.perClient < 1 || o.perClient > o.groups {
		errs = append(errs, fmt.Errorf("want clients ≥ 1, groups ≥ 1 and 1 ≤ per-client ≤ groups (got %d, %d, %d)", o.clients, o.groups, o.perClient))
	}
	if o.rate <= 0 || o.duration <= 0 {
		errs = append(errs, errors.New("rate and duration: want more than 0"))
	}
	if _, err := parseSystems(o.only); err != nil {
		errs = append(errs, err)
	}
	if o.peers != peersIngest && o.peers != peersStored {
		errs = append(errs, fmt.Errorf("peers-follow: want %s or %s (got %q)", peersIngest, peersStored, o.peers))
	}
	if _, err := parseFormat(o.format); err != nil {
		errs = append(errs, err)
	}
	if o.buffer < 1 || o.parallel < 1 || o.prefill < 1 {
		errs = append(errs, errors.New("client-buffer, dial-parallel and depth: want at least 1"))
	}
	return errors.Join(errs...)
}

// runResult is one system's figures.
type runResult struct {
	System           string        `json:"system"`
	Clients          int           `json:"clients"`
	Groups           int           `json:"groups"`
	GroupsPerClient  int           `json:"groupsPerClient"`
	ClientProcs      int           `json:"clientProcs"`
	TargetRate       float64       `json:"targetChangesPerSec"`
	Changes          int64         `json:"changes"`
	ChangesPerSec    float64       `json:"changesPerSec"`
	Deliveries       int64         `json:"deliveries"`
	Expected         int64         `json:"expectedDeliveries"`
	DeliveriesPerSec float64       `json:"deliveriesPerSec"`
	Window           time.Duration `json:"windowNs"`
	P50              time.Duration `json:"p50Ns"`
	P99              time.Duration `json:"p99Ns"`
	P999             time.Duration `json:"p999Ns"`
	Max              time.Duration `json:"maxNs"`
	Untimed          int64         `json:"untimed"`
	Undecoded        int64         `json:"undecoded"`
	RouterDown       int64         `json:"routerDisconnected"`
	Closed           int64         `json:"closedClients"`
	Closed4009       int64         `json:"closed4009"`
	CloseCodes       map[int]int64 `json:"closeCodes,omitempty"`
	// Stages is what the gateway's metrics say of the window (gateway only).
	Stages       *stages       `json:"gatewayStages,omitempty"`
	Lagging      int64         `json:"laggingClients"`
	KeepAlives   int64         `json:"keepAlives"`
	Dropped      int64         `json:"droppedByClient"`
	SlowConsumer int64         `json:"slowConsumerErrors"`
	ServerSlow   int64         `json:"serverSlowConsumers"`
	CPU          time.Duration `json:"cpuNs"`
	ClientCPU    time.Duration `json:"clientProcsCpuNs"`
	OtherCPU     time.Duration `json:"otherProcessesCpuNs"`
	Heap         uint64        `json:"heapBytes"`
	ClientHeap   uint64        `json:"clientProcsHeapBytes"`
}

// runFanout runs the fan-out comparison and returns one result per system.
func runFanout(ctx context.Context, o fanoutOpts, stderr io.Writer) ([]runResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	limit := raiseOpenFiles()
	procs, err := clientProcs(o, limit)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "open-file limit %d; clients in %s\n", limit, procsLabel(procs))
	log, err := newLogger(o.logLevel)
	if err != nil {
		return nil, err
	}
	st, err := startStack(ctx, log, o.groups, o.prefill)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	assign, err := assignGroups(o.clients, o.perClient, st.groups, o.seed)
	if err != nil {
		return nil, err
	}
	base := fleetConfig{NatsURL: st.ClientURL(), Tenant: loadTenant, Assign: assign, Format: o.format, Statistics: o.stats,
		Stored: o.peers == peersStored, Buffer: o.buffer, Parallel: o.parallel, Setup: o.setup}
	systems, _ := parseSystems(o.only)
	var out []runResult
	for _, sys := range systems {
		r, err := systemRun(ctx, sys, st, o, base, procs, stderr)
		if err != nil {
			return out, fmt.Errorf("%s run: %w", systemLabel(sys), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// allSystems are the systems measured side by side, in table order.
var allSystems = []string{kindGateway, kindNATS, kindCentrifuge}

// parseSystems reads --only: empty is every system.
func parseSystems(only string) ([]string, error) {
	if only == "" {
		return allSystems, nil
	}
	asked := strings.Split(only, ",")
	for _, s := range asked {
		if !slices.Contains(allSystems, strings.TrimSpace(s)) {
			return nil, fmt.Errorf("only %q: want a comma-separated list of gateway, nats, centrifuge", only)
		}
	}
	var out []string
	for _, s := range allSystems {
		if slices.ContainsFunc(asked, func(a string) bool { return strings.TrimSpace(a) == s }) {
			out = append(out, s)
		}
	}
	return out, nil
}

// systemRun measures one system.
func systemRun(ctx context.Context, sys string, st *stack, o fanoutOpts, cfg fleetConfig, procs int, stderr io.Writer) (runResult, error) {
	switch sys {
	case kindGateway:
		return gatewayRun(ctx, st, o, cfg, procs, stderr)
	case kindNATS:
		return natsRun(ctx, st, o, cfg, procs, stderr)
	}
	return centrifugeRun(ctx, st, o, cfg, procs, stderr)
}

// fdHeadroom is what the process needs besides the clients' connections:
// the NATS server's and gateway's own connections, JetStream's files.
const fdHeadroom = 512

// clientProcs returns how many child processes run the clients: the
// flag's value, or (auto) none when both ends of every connection fit
// under the open-file limit, else enough children for the client ends.
func clientProcs(o fanoutOpts, limit uint64) (int, error) {
	if o.procs >= 0 {
		return o.procs, nil
	}
	n := uint64(o.clients)
	if 2*n+fdHeadroom <= limit {
		return 0, nil
	}
	if n+fdHeadroom > limit {
		return 0, fmt.Errorf("%d clients need %d open files for the server ends alone; the limit is %d (hard limit; raise it with ulimit -Hn as root)", n, n+fdHeadroom, limit)
	}
	per := limit - fdHeadroom
	return int((n + per - 1) / per), nil
}

func procsLabel(procs int) string {
	if procs == 0 {
		return "this process"
	}
	return fmt.Sprintf("%d child process(es)", procs)
}

// gatewayRun measures our gateway.
func gatewayRun(ctx context.Context, st *stack, o fanoutOpts, cfg fleetConfig, procs int, stderr io.Writer) (runResult, error) {
	gw, err := st.startGateway(ctx, bridge.Config{Coalesce: o.coalesce, FixedRounds: o.fixed}, o.clients+10)
	if err != nil {
		return runResult{}, err
	}
	defer gw.close()
	cfg.Kind, cfg.URL = kindGateway, gw.url
	before := gatewayStages(gw.reg)
	r, err := connectAndMeasure(ctx, st, o, cfg, procs, stderr)
	if err == nil {
		s := gatewayStages(gw.reg).since(before)
		r.Stages = &s
	}
	return r, err
}

// natsRun measures nats-server's WebSocket listener.
func natsRun(ctx context.Context, st *stack, o fanoutOpts, cfg fleetConfig, procs int, stderr io.Writer) (runResult, error) {
	cfg.Kind, cfg.URL = kindNATS, st.WebsocketURL()
	return connectAndMeasure(ctx, st, o, cfg, procs, stderr)
}

// centrifugeRun measures a centrifuge node relaying the same events, its
// write delay --write-delay or else the gateway's Coalesce.
func centrifugeRun(ctx context.Context, st *stack, o fanoutOpts, cfg fleetConfig, procs int, stderr io.Writer) (runResult, error) {
	nc, err := nats.Connect(st.ClientURL(), nats.Name("sisload-centrifuge"))
	if err != nil {
		return runResult{}, fmt.Errorf("connect the relay to NATS: %w", err)
	}
	defer nc.Close()
	cf, err := startCentrifuge(nc, peerSubject(o.peers == peersStored), loadTenant, st.groups, o.writeDelay())
	if err != nil {
		return runResult{}, err
	}
	defer cf.close()
	cfg.Kind, cfg.URL = kindCentrifuge, cf.url
	return connectAndMeasure(ctx, st, o, cfg, procs, stderr)
}

// connectAndMeasure connects cfg's fleet, measures it and closes it.
func connectAndMeasure(ctx context.Context, st *stack, o fanoutOpts, cfg fleetConfig, procs int, stderr io.Writer) (runResult, error) {
	label := cfg.Kind
	fmt.Fprintf(stderr, "[%s] connecting %d clients to %s\n", label, o.clients, cfg.URL)
	started := time.Now()
	fl, err := startFleet(ctx, cfg, procs)
	if err != nil {
		return runResult{}, err
	}
	defer fl.Close()
	fmt.Fprintf(stderr, "[%s] %d clients subscribed in %s\n", label, o.clients, time.Since(started).Round(time.Millisecond))
	return measure(ctx, cfg.Kind, st, fl, o, cfg.Assign, procs, stderr)
}

// measure runs the driver against a subscribed fleet and gathers the
// figures of the window from the driver's start to the end of the drain.
func measure(ctx context.Context, name string, st *stack, fl fleet, o fanoutOpts, assign [][]string, procs int, stderr io.Writer) (runResult, error) {
	startSeq := map[string]uint64{}
	for _, g := range st.groups {
		startSeq[g], _, _ = st.adapter.Group(g)
	}
	slow0 := serverSlowConsumers(st.ns)
	liveHeap()
	busy0, busyOK := machineBusy()
	cpu0 := cpuTime()
	if err := fl.Begin(); err != nil {
		return runResult{}, err
	}
	stopLines := progressLines(name, st.driver, fl, stderr)
	t0 := time.Now()
	p, err := st.driver.run(ctx, o.rate, o.duration)
	var fs fleetStats
	if err == nil {
		fs, err = fl.Finish(ctx, changedGroups(p.Final, startSeq), o.drain)
	}
	window := time.Since(t0)
	cpu := cpuTime() - cpu0
	busy1, busyOK1 := machineBusy()
	stopLines()
	if err != nil {
		return runResult{}, err
	}
	var expected int64
	subs := subscribers(assign)
	for g, seq := range p.Final {
		expected += int64(seq-startSeq[g]) * int64(subs[g])
	}
	lat := fs.Hist.summary()
	others := time.Duration(-1)
	if busyOK && busyOK1 {
		others = max(busy1-busy0-cpu-fs.CPU, 0)
	}
	return runResult{
		System: name, Clients: o.clients, Groups: o.groups, GroupsPerClient: o.perClient, ClientProcs: procs,
		TargetRate: o.rate, Changes: p.Applied, ChangesPerSec: p.Rate(),
		Deliveries: fs.Deliveries, Expected: expected, DeliveriesPerSec: float64(fs.Deliveries) / window.Seconds(), Window: window,
		P50: lat.P50, P99: lat.P99, P999: lat.P999, Max: lat.Max, Untimed: fs.Untimed,
		Undecoded: fs.Undecoded, RouterDown: fs.RouterDisconnected,
		Closed: fs.Closed, Closed4009: fs.Closed4009, CloseCodes: fs.CloseCodes, Lagging: fs.Lagging, KeepAlives: fs.KeepAlives,
		Dropped: fs.Dropped, SlowConsumer: fs.SlowConsumer, ServerSlow: serverSlowConsumers(st.ns) - slow0,
		CPU: cpu + fs.CPU, ClientCPU: fs.CPU, OtherCPU: others, Heap: liveHeap(), ClientHeap: fs.Heap,
	}, nil
}

// changedGroups returns the groups final holds beyond start: the ones a
// client must have caught up in. A group the run did not change is left
// out, since a client of nats-server or centrifuge learns no Seq of it
// (it gets no initial data), and would otherwise hold the drain open to
// its deadline, lengthening that system's window.
func changedGroups(final, start map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(final))
	for g, seq := range final {
		if seq > start[g] {
			out[g] = seq
		}
	}
	return out
}

// serverSlowConsumers returns how many clients nats-server has closed as
// slow consumers since it started.
func serverSlowConsumers(ns *server.Server) int64 {
	v, err := ns.Varz(nil)
	if err != nil {
		return 0
	}
	return v.SlowConsumers
}

// progressLines prints, every second, the changes and deliveries per
// second of the last second; the returned function stops it.
func progressLines(name string, d *driver, fl fleet, w io.Writer) func() {
	start, last := time.Now(), time.Now()
	var lastChanges, lastDeliveries int64
	return every(time.Second, func(now time.Time) {
		changes := d.applied.Load()
		deliveries, closed := fl.Progress()
		secs := now.Sub(last).Seconds()
		fmt.Fprintf(w, "[%s] %3.0fs  changes/s %6.0f  deliveries/s %9.0f  closed %d\n", name, now.Sub(start).Seconds(),
			float64(changes-lastChanges)/secs, float64(deliveries-lastDeliveries)/secs, closed)
		last, lastChanges, lastDeliveries = now, changes, deliveries
	})
}
