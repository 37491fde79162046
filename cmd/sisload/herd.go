package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
)

// herdOpts are the flags of sisload herd.
type herdOpts struct {
	sessions  int
	clients   int
	format    string
	inProcess bool
	sample    time.Duration
	setup     time.Duration
	deadline  time.Duration
	timeout   time.Duration
	logLevel  string
	jsonFile  string
	// --abuse: one client that never reads.
	abuse  bool
	repeat int
	hold   time.Duration
}

// register declares the flags.
func (o *herdOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.sessions, "sessions", 0, "sessions queued in the one group (default 10000; 100000 with --abuse)")
	fs.IntVar(&o.clients, "clients", 1000, "clients that subscribe at once")
	fs.StringVar(&o.format, "format", "json", "subprotocol: json or msgpack")
	fs.BoolVar(&o.inProcess, "in-process", false, "run the clients as goroutines of this process (its memory figures then include them)")
	fs.DurationVar(&o.sample, "sample", 50*time.Millisecond, "how often this process's memory is sampled (10ms to 1s)")
	fs.DurationVar(&o.setup, "setup-timeout", 5*time.Minute, "bound on connecting and initializing every client")
	fs.DurationVar(&o.deadline, "deadline", 5*time.Minute, "bound on the herd, from the Subscribes to the last InitialDataComplete")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on the whole command")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the embedded server, adapter and gateway")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results to this JSON file")
	fs.BoolVar(&o.abuse, "abuse", false, "instead: one client that never reads its socket Subscribes and Unsubscribes --repeat times")
	fs.IntVar(&o.repeat, "repeat", 40, "with --abuse: Subscribe/Unsubscribe pairs written")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "with --abuse: how long the client is watched after its last request")
}

// validate checks the flags and fills in the mode's default sessions.
func (o *herdOpts) validate() error {
	if o.sessions == 0 {
		o.sessions = 10000
		if o.abuse {
			o.sessions = 100000
		}
	}
	if _, err := parseFormat(o.format); err != nil {
		return err
	}
	var errs flagErrors
	errs.check(o.sessions >= 1, "--sessions: want at least 1")
	errs.check(o.clients >= 1, "--clients: want at least 1")
	errs.check(o.repeat >= 1, "--repeat: want at least 1")
	errs.check(o.sample >= 10*time.Millisecond && o.sample <= time.Second, "--sample: want 10ms to 1s")
	errs.check(o.setup > 0 && o.deadline > 0 && o.timeout > 0 && o.hold > 0, "--setup-timeout, --deadline, --timeout, --hold: want more than 0")
	return errs.err()
}

// herdResult is what a herd run measured.
type herdResult struct {
	Sessions  int    `json:"sessions"`
	Format    string `json:"format"`
	InProcess bool   `json:"inProcess"`
	herdOutcome
	// SlowCloses counts the gateway's own 4009 closes (its metric).
	SlowCloses float64 `json:"slowCloses"`
	// Before: settled, clients initialized; Peak: sampled during the herd
	// (HWM since the reset before it, when ResetHWM); After: settled, the
	// herd served, clients still connected.
	Before   memSample `json:"before"`
	Peak     memSample `json:"peak"`
	Samples  int       `json:"samples"`
	ResetHWM bool      `json:"resetHWM"`
	After    memSample `json:"after"`
}

// herdCommand runs sisload herd (or, with --abuse, the abuse run) and
// prints its table.
func herdCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o herdOpts
	if err := parseCommand("sisload herd", &o, args, stderr); err != nil {
		return err
	}
	var res any
	if o.abuse {
		r, err := runAbuse(ctx, o, stderr)
		if err != nil {
			return err
		}
		printAbuse(stdout, r)
		res = r
	} else {
		r, err := runHerd(ctx, o, stderr)
		if err != nil {
			return err
		}
		printHerd(stdout, r)
		res = r
	}
	return writeJSON(o.jsonFile, res)
}

// runHerd starts the stack with one group of o.sessions sessions, connects
// and initializes o.clients clients, then has them all Subscribe at once
// and measures this process's memory until they settle.
func runHerd(ctx context.Context, o herdOpts, stderr io.Writer) (herdResult, error) {
	r := herdResult{Sessions: o.sessions, Format: o.format, InProcess: o.inProcess}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if limit := raiseOpenFiles(); o.inProcess && uint64(2*o.clients)+fdHeadroom > limit {
		return r, fmt.Errorf("%d clients in this process need about %d open files; the limit is %d", o.clients, 2*o.clients+fdHeadroom, limit)
	}
	log, err := newLogger(o.logLevel)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(stderr, "[herd] pre-filling one group with %d sessions\n", o.sessions)
	st, err := startStack(ctx, log, 1, o.sessions)
	if err != nil {
		return r, err
	}
	defer st.Close()
	gw, err := st.startGateway(ctx, bridge.Config{}, o.clients+10)
	if err != nil {
		return r, err
	}
	defer gw.close()
	cfg := herdConfig{URL: gw.url, Group: st.groups[0], Clients: o.clients, Sessions: o.sessions, Format: o.format, Setup: o.setup, Deadline: o.deadline}
	t0 := time.Now()
	side, err := startHerd(ctx, cfg, o.inProcess)
	if err != nil {
		return r, err
	}
	defer side.Close()
	fmt.Fprintf(stderr, "[herd] %d clients connected and initialized in %s\n", o.clients, time.Since(t0).Round(time.Millisecond))
	err = measureHerd(ctx, &r, side, o, gw, stderr)
	return r, err
}

// startHerd opens the herd's clients, in this process or in a child.
func startHerd(ctx context.Context, cfg herdConfig, inProcess bool) (herdSide, error) {
	if inProcess {
		return openHerd(ctx, cfg)
	}
	return startHerdChild(ctx, cfg)
}

// measureHerd takes the baseline, lets the herd go, samples memory until
// it settles, and measures again with the herd served.
func measureHerd(ctx context.Context, r *herdResult, side herdSide, o herdOpts, gw *gateway, stderr io.Writer) error {
	slow0 := gatewayValue(gw.reg, "sis_gateway_slow_client_closes_total")
	r.Before = settledMem()
	r.ResetHWM = resetPeakRSS()
	watch := watchMem(o.sample)
	stop := herdLines(side, watch, o.clients, stderr)
	err := side.Go()
	if err == nil {
		r.herdOutcome, err = side.Outcome(ctx)
	}
	stop()
	r.Peak, r.Samples = watch.Stop()
	if err != nil {
		return err
	}
	r.After = settledMem()
	r.SlowCloses = gatewayValue(gw.reg, "sis_gateway_slow_client_closes_total") - slow0
	return nil
}

// herdLines prints a progress line a second; the returned function stops
// it.
func herdLines(side herdSide, watch *memWatch, clients int, w io.Writer) func() {
	start := time.Now()
	return every(time.Second, func(now time.Time) {
		completed, closed := side.Progress()
		s := sampleMem()
		peak, _ := watch.Peak()
		fmt.Fprintf(w, "[herd] %3.0fs  completed %d/%d  closed %d  RSS %s MiB (peak %s)  heap %s MiB (peak %s)  kernel TCP %s MiB\n",
			now.Sub(start).Seconds(), completed, clients, closed, mibs(s.RSS), mibs(peak.RSS), mibs(s.Heap), mibs(peak.Heap), mibs(s.KernelTCP))
	})
}

// printHerd prints the herd's table.
func printHerd(w io.Writer, r herdResult) {
	where := "clients in a child process"
	if r.InProcess {
		where = "clients in this process (their memory is in the figures)"
	}
	fmt.Fprintf(w, "\nherd: %d initialized clients Subscribe at once to one group of %d sessions (its view not yet loaded), format %s, %s\n",
		r.Clients, r.Sessions, r.Format, where)
	timedOut := ""
	if r.TimedOut {
		timedOut = " (deadline passed with clients still waiting)"
	}
	fmt.Fprintf(w, "time from the Subscribes to the last InitialDataComplete: %s (median %s)%s\n", ms(r.Last), ms(r.P50), timedOut)
	fmt.Fprintf(w, "completed: %d of %d (%d of them without exactly %d Adds)\n", r.Completed, r.Clients, r.Incomplete, r.Sessions)
	fmt.Fprintf(w, "closed before completing: %d, by close code (0: no close frame): %s; closed after completing: %d; gateway's 4009 closes: %.0f\n",
		r.Closed, codesLabel(r.Codes), r.ClosedAfter, r.SlowCloses)
	if len(r.Faults) > 0 {
		fmt.Fprintf(w, "Subscribe faults: %s\n", faultsLabel(r.Faults))
	}
	printMemTable(w, r.Before, r.Peak, r.After, r.Samples, r.ResetHWM)
}

// printMemTable prints before, peak and after memory of this process.
func printMemTable(w io.Writer, before, peak, after memSample, samples int, resetHWM bool) {
	hwm := "VmHWM since the process started"
	if resetHWM {
		hwm = "VmHWM since the reset just before"
	}
	fmt.Fprintf(w, "memory of this process (NATS server + JetStream + router adapter + gateway, on loopback):\n")
	fmt.Fprintf(w, "  %-34s %10s %10s %11s %16s\n", "", "RSS MiB", "heap MiB", "goroutines", "kernel TCP MiB")
	fmt.Fprintf(w, "  %-34s %10s %10s %11d %16s\n", "before (after GC)", mibs(before.RSS), mibs(before.Heap), before.Goroutines, mibs(before.KernelTCP))
	fmt.Fprintf(w, "  %-34s %10s %10s %11d %16s\n", fmt.Sprintf("peak (%d samples)", samples), mibs(peak.RSS), mibs(peak.Heap), peak.Goroutines, mibs(peak.KernelTCP))
	fmt.Fprintf(w, "  %-34s %10s\n", hwm, mibs(peak.HWM))
	fmt.Fprintf(w, "  %-34s %10s %10s %11d %16s\n", "after (after GC, memory returned)", mibs(after.RSS), mibs(after.Heap), after.Goroutines, mibs(after.KernelTCP))
	fmt.Fprintf(w, "heap: Go heap in use (HeapInuse); peak: each column's largest sample, one every --sample;\n")
	fmt.Fprintf(w, "kernel TCP: socket buffers of the whole machine (/proc/net/sockstat), outside any RSS: what was written and not yet read.\n")
}

// codesLabel formats close codes and counts, "none" if empty.
func codesLabel(codes map[int]int64) string {
	if len(codes) == 0 {
		return "none"
	}
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d: %d", k, codes[k]))
	}
	return strings.Join(parts, ", ")
}

// faultsLabel formats fault types and counts, "none" if empty.
func faultsLabel(faults map[string]int64) string {
	if len(faults) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(faults))
	for k := range faults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, faults[k]))
	}
	return strings.Join(parts, ", ")
}
