package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// curveOpts are the flags of sisload curve: fanout's, run at each point
// of two curves.
type curveOpts struct {
	f           fanoutOpts
	clientsList string
	clientsRate float64
	ratesList   string
	rateClients int
	charts      string
	from        string
	floorConns  int
	noMatch     bool
	repeat      int
	total       time.Duration
	// set names the flags given on the command line.
	set func(func(*flag.Flag))
}

func (o *curveOpts) register(fs *flag.FlagSet) {
	o.set = fs.Visit
	fs.StringVar(&o.clientsList, "clients", "500,1000,2000,5000,10000", "clients at each point of the clients curve")
	fs.Float64Var(&o.clientsRate, "clients-rate", 200, "router changes per second on the clients curve (each client sees rate x per-client / groups of them a second)")
	fs.StringVar(&o.ratesList, "rates", "200,1000,2000,3000,4000", "router changes per second at each point of the rate curve")
	fs.IntVar(&o.rateClients, "rate-clients", 2000, "clients on the rate curve")
	fs.StringVar(&o.from, "from", "", "measure nothing: print the table and targets (and draw the charts) of a curve written earlier with --json")
	fs.StringVar(&o.charts, "charts", "", "write the charts as PNG files with this path prefix (PREFIX-clients.png, PREFIX-rate.png)")
	fs.BoolVar(&o.noMatch, "no-match", false, "do not run the gateway again at the load carried by a peer that held the router back (its p99 is then compared only with the peers that carried the full load)")
	fs.IntVar(&o.repeat, "repeat", 3, "runs of every system at each point (the systems take turns); the table shows each system's run of median p99 and the p99s' range")
	fs.IntVar(&o.floorConns, "floor-conns", 2000, "connections of the floor measured first (sisload floor)")
	fs.DurationVar(&o.total, "timeout", 90*time.Minute, "bound on the whole command")
	f := &o.f
	fs.IntVar(&f.groups, "groups", 100, "service groups in the directory")
	fs.IntVar(&f.perClient, "per-client", 10, "distinct random groups each client subscribes to")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long the router driver runs, per system and point")
	fs.DurationVar(&f.drain, "drain", 5*time.Second, "after the driver stops, how long clients may take to catch up")
	fs.StringVar(&f.format, "format", "msgpack", "gateway subprotocol: json or msgpack")
	fs.DurationVar(&f.coalesce, "coalesce", 10*time.Millisecond, "gateway Coalesce, and centrifuge's WriteDelay")
	fs.BoolVar(&f.fixed, "fixed-rounds", false, "gateway FixedRounds: space its rounds exactly --coalesce apart")
	fs.DurationVar(&f.cfDelay, "write-delay", -1, "centrifuge's WriteDelay (0: write each message at once, its default); negative: --coalesce")
	fs.StringVar(&f.peers, "peers-follow", peersIngest, peersFollowUsage)
	fs.StringVar(&f.only, "only", "", "run these systems only, comma-separated: gateway, nats, centrifuge")
	fs.StringVar(&f.jsonFile, "json", "", "also write the results to this JSON file")
	fs.IntVar(&f.procs, "client-procs", 1, "child processes running the clients (0: in this process); one keeps the serving process's CPU apart at every point")
	fs.IntVar(&f.buffer, "client-buffer", 128, "events a gateway client buffers before it stops reading")
	fs.IntVar(&f.parallel, "dial-parallel", 64, "clients connecting at once")
	fs.IntVar(&f.prefill, "depth", 20, "sessions per group, before and during the run")
	fs.DurationVar(&f.setup, "setup-timeout", 5*time.Minute, "bound on connecting and subscribing every client")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the group assignment")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level of the embedded server, adapter and gateway")
}

// validate checks the lists and fanout's flags at the first point; with
// --from, that no flag of a measurement was given (it would be ignored).
func (o *curveOpts) validate() error {
	if o.from != "" {
		return o.validateFrom()
	}
	o.f.clients, o.f.rate, o.f.timeout = o.rateClients, o.clientsRate, o.total
	errs := []error{o.f.validate()}
	if _, err := parseInts(o.clientsList); err != nil {
		errs = append(errs, fmt.Errorf("clients: %w", err))
	}
	if _, err := parseInts(o.ratesList); err != nil {
		errs = append(errs, fmt.Errorf("rates: %w", err))
	}
	if o.repeat < 1 {
		errs = append(errs, errors.New("repeat: want at least 1"))
	}
	if o.floorConns < 1 {
		errs = append(errs, errors.New("floor-conns: want at least 1"))
	}
	return errors.Join(errs...)
}

// validateFrom refuses, with --from, every flag but --charts: nothing is
// measured, so a measurement's flag would be silently ignored.
func (o *curveOpts) validateFrom() error {
	var errs []error
	o.set(func(f *flag.Flag) {
		if f.Name != "from" && f.Name != "charts" {
			errs = append(errs, fmt.Errorf("%s: --from measures nothing; only --charts goes with it", f.Name))
		}
	})
	return errors.Join(errs...)
}

// parseInts reads a comma-separated list of positive whole numbers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive whole numbers, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// curvePoint is one fanout run of every system.
type curvePoint struct {
	Clients int         `json:"clients"`
	Rate    float64     `json:"targetChangesPerSec"`
	Results []runResult `json:"results"`
	// Matched holds, by peer, the gateway's run alone at the rate that
	// peer carried, for each peer that held the router back (empty when
	// none did, or with --no-match).
	Matched map[string]runResult `json:"matched,omitempty"`
	// MatchedRuns holds every matched run with --repeat above 1 (each
	// asked for the rate of the peer it matches).
	MatchedRuns []runResult `json:"matchedRuns,omitempty"`
	// Runs holds every run of every system with --repeat above 1; Results
	// then holds each system's run of median p99.
	Runs []runResult `json:"runs,omitempty"`
	// Failed says why a system's run at this point failed (the systems
	// after it were not run); empty when every system ran.
	Failed string `json:"failed,omitempty"`
}

// curveResult is what sisload curve measured.
type curveResult struct {
	// FloorPerWrite is sisload floor's CPU per loopback write and its read.
	FloorPerWrite time.Duration `json:"floorPerWriteNs"`
	// ByClients and ByRate are the two curves.
	ByClients []curvePoint `json:"byClients"`
	ByRate    []curvePoint `json:"byRate"`
}

// runCurve measures the floor, then every point of both curves; a point
// on both is run once.
func runCurve(ctx context.Context, o curveOpts, stderr io.Writer) (curveResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.total)
	defer cancel()
	var out curveResult
	fl, err := runFloor(ctx, floorOpts{conns: o.floorConns, size: 300, rounds: 200, pause: 2 * time.Millisecond})
	if err != nil {
		return out, fmt.Errorf("floor: %w", err)
	}
	out.FloorPerWrite = fl.CPU / time.Duration(fl.Writes)
	fmt.Fprintf(stderr, "[curve] floor: %s of CPU per loopback write and its read\n", out.FloorPerWrite)
	clients, _ := parseInts(o.clientsList)
	rates, _ := parseInts(o.ratesList)
	done := map[[2]float64]curvePoint{}
	point := func(n int, rate float64) (curvePoint, error) {
		if p, ok := done[[2]float64{float64(n), rate}]; ok {
			return p, nil
		}
		p, err := curveRun(ctx, o.f, n, rate, o.repeat, stderr)
		if err == nil && !o.noMatch {
			err = runMatched(ctx, o.f, &p, o.repeat, stderr)
		}
		done[[2]float64{float64(n), rate}] = p
		return p, err
	}
	for _, n := range clients {
		p, err := point(n, o.clientsRate)
		if err != nil {
			return out, err
		}
		out.ByClients = append(out.ByClients, p)
	}
	for _, r := range rates {
		p, err := point(o.rateClients, float64(r))
		if err != nil {
			return out, err
		}
		out.ByRate = append(out.ByRate, p)
	}
	return out, nil
}

// curveRun runs fanout at one point, repeat times; with more than one
// run, Results holds each system's run of median p99.
func curveRun(ctx context.Context, f fanoutOpts, clients int, rate float64, repeat int, stderr io.Writer) (curvePoint, error) {
	f.clients, f.rate, f.jsonFile = clients, rate, ""
	p := curvePoint{Clients: clients, Rate: rate}
	for i := range repeat {
		if dl, ok := ctx.Deadline(); ok {
			f.timeout = time.Until(dl)
		}
		fmt.Fprintf(stderr, "[curve] %d clients, %.0f changes/s%s\n", clients, rate, runLabel(i, repeat))
		rs, err := runFanout(ctx, f, stderr)
		p.Runs = append(p.Runs, rs...)
		if err != nil && ctx.Err() != nil {
			return p, fmt.Errorf("%d clients at %.0f changes/s: %w", clients, rate, err)
		}
		if err != nil {
			p.Failed = err.Error()
			fmt.Fprintf(stderr, "[curve] %d clients at %.0f changes/s: %v; going on\n", clients, rate, err)
			break
		}
	}
	p.Results = medianRuns(p.Runs)
	if repeat == 1 {
		p.Runs = nil
	}
	return p, nil
}

// runLabel numbers a run when there are several.
func runLabel(i, repeat int) string {
	if repeat == 1 {
		return ""
	}
	return fmt.Sprintf(", run %d of %d", i+1, repeat)
}

// medianRuns returns, for each system in the order of its first run, its
// run of median p99.
func medianRuns(runs []runResult) []runResult {
	var order []string
	by := map[string][]runResult{}
	for _, r := range runs {
		if _, ok := by[r.System]; !ok {
			order = append(order, r.System)
		}
		by[r.System] = append(by[r.System], r)
	}
	out := make([]runResult, 0, len(order))
	for _, sys := range order {
		out = append(out, lowerMedian(by[sys], func(r runResult) float64 { return float64(r.P99) }))
	}
	return out
}

// lowerMedian returns the element of xs (not empty) of median key, the
// lower of the two middle ones for an even count; xs is sorted by key.
func lowerMedian[T any](xs []T, key func(T) float64) T {
	sort.SliceStable(xs, func(i, j int) bool { return key(xs[i]) < key(xs[j]) })
	return xs[(len(xs)-1)/2]
}

// p99Range is the lowest and highest p99 of sys's runs among runs; ok is
// false with fewer than two.
func p99Range(runs []runResult, sys string) (lo, hi time.Duration, ok bool) {
	n := 0
	for _, r := range runs {
		if r.System != sys {
			continue
		}
		if n == 0 || r.P99 < lo {
			lo = r.P99
		}
		hi = max(hi, r.P99)
		n++
	}
	return lo, hi, n > 1
}

// curveCommand runs sisload curve: the table, the targets, the charts.
func curveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o curveOpts
	if err := parseCommand("sisload curve", &o, args, stderr); err != nil {
		return err
	}
	var res curveResult
	var err error
	if o.from != "" {
		if res, err = readCurve(o.from); err != nil {
			return err
		}
	} else {
		res, err = runCurve(ctx, o, stderr)
	}
	printCurve(stdout, o, res)
	if err != nil {
		return errors.Join(err, savePartial(o, res, stderr))
	}
	if o.charts != "" {
		if err := writeCharts(o.charts, res); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "[curve] charts: %s-clients.png, %s-rate.png\n", o.charts, o.charts)
	}
	if o.from != "" {
		return nil
	}
	return writeJSON(o.f.jsonFile, res)
}

// savePartial writes, with --json, the points a curve measured before it
// was stopped (interrupted, or out of --timeout): half an hour of runs is
// not lost to a Ctrl-C, and --from prints them.
func savePartial(o curveOpts, res curveResult, stderr io.Writer) error {
	n := len(res.ByClients) + len(res.ByRate)
	if o.from != "" || o.f.jsonFile == "" || n == 0 {
		return nil
	}
	if err := writeJSON(o.f.jsonFile, res); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "[curve] stopped: the %d points measured are in %s (sisload curve --from %s prints them)\n", n, o.f.jsonFile, o.f.jsonFile)
	return nil
}

// readCurve reads a curve written with --json.
func readCurve(path string) (curveResult, error) {
	var res curveResult
	data, err := os.ReadFile(path)
	if err != nil {
		return res, fmt.Errorf("read a curve: %w", err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, fmt.Errorf("read a curve from %s: %w", path, err)
	}
	if len(res.ByClients)+len(res.ByRate) == 0 {
		return res, fmt.Errorf("read a curve from %s: no points in it", path)
	}
	return res, nil
}
