package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sisbridge/sisbridge/internal/oracle"
)

// soakRow is one row of the soak's table.
type soakRow struct {
	Elapsed time.Duration `json:"elapsed"`
	// Procs are the sisbridge processes' samples: router, gw-a, gw-b...
	Procs map[string]procSample `json:"procs"`
	// Self is this process: the NATS server, the clients and the oracle.
	Self          memSample `json:"self"`
	Connected     int64     `json:"connected"`
	Sessions      int64     `json:"sessions"`
	Events        int64     `json:"events"`
	ChangesPerSec float64   `json:"changesPerSec"`
	Verified      int64     `json:"verified"`
	Unverified    int64     `json:"unverified"`
	Violations    int       `json:"violations"`
	Restarts      int       `json:"restarts"`
}

// soakResult is a soak's table and verdict.
type soakResult struct {
	Rows       []soakRow      `json:"rows"`
	Violations map[string]int `json:"violations"`
	First      []string       `json:"first"`
	Growth     []string       `json:"growth"`
	Closes     string         `json:"closes"`
	Pass       bool           `json:"pass"`
}

// runSoak runs the soak and prints its table as it goes, then its verdict;
// the error says why it failed.
func runSoak(ctx context.Context, o soakOpts, out io.Writer) (*soakResult, error) {
	log, _ := newLogger("warn")
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "sisload-soak-*")
		if err != nil {
			return nil, err
		}
		o.dir = dir
	}
	raiseOpenFiles()
	fmt.Fprintf(out, "soak: %s, %d clients churning over %d gateways (the last restarted every %s), %d groups, simulator at speed %g rate %g; store and logs in %s\n",
		o.duration, o.clients, o.gateways, o.restartEvery, o.tenants*o.groups, o.speed, o.rate, o.dir)
	st, err := startSoakStack(ctx, o, log)
	if err != nil {
		return nil, err
	}
	groups, err := st.groups(ctx, o.tenants*o.groups)
	if err != nil {
		st.close(out)
		return nil, err
	}
	r := &soakRun{o: o, st: st, t: newSoakTally(), out: out, start: time.Now()}
	return r.run(ctx, soakClients{Gateways: st.urls(), Groups: groups, Life: o.life, Slow: o.slow, MaxGroups: o.maxGroups, Seed: o.seed})
}

// soakRun is one soak under way.
type soakRun struct {
	o     soakOpts
	st    *soakStack
	t     *soakTally
	orc   *oracle.Oracle
	out   io.Writer
	start time.Time
	rows  []soakRow
	// lastChanges and lastAt give the router's rate of changes.
	lastChanges float64
	lastAt      time.Time
}

// run runs the clients, the oracle and the restarts, watches until the
// duration is over, then stops everything and judges.
func (r *soakRun) run(ctx context.Context, cfg soakClients) (*soakResult, error) {
	o := oracle.New(r.t.report)
	r.orc = o
	octx, stopOracle := context.WithCancel(ctx)
	oracleErr := make(chan error, 1)
	go func() { oracleErr <- o.Follow(octx, r.st.js) }()
	cctx, stopClients := context.WithCancel(ctx)
	waitClients := runSoakClients(cctx, r.o.clients, cfg, r.t, o)
	rctx, stopRestarts := context.WithCancel(ctx)
	restartsDone := make(chan struct{})
	go func() { defer close(restartsDone); r.restarts(rctx) }()

	r.watch(ctx)
	stopRestarts()
	<-restartsDone
	stopClients()
	waitClients()
	r.catchUp(ctx, o)
	stopOracle()
	if err := <-oracleErr; err != nil {
		r.t.violation("oracle", "%v", err)
	}
	r.printRow(r.sample(ctx))
	clean := r.st.close(r.out)
	return r.verdict(clean)
}

// restarts restarts the last gateway every RestartEvery, with SIGTERM and
// SIGKILL in turn, until ctx ends.
func (r *soakRun) restarts(ctx context.Context) {
	if r.o.restartEvery <= 0 {
		return
	}
	gw := r.st.gateways[len(r.st.gateways)-1]
	sigs := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}
	for n := 0; ; n++ {
		pause(ctx, r.o.restartEvery)
		if ctx.Err() != nil {
			return
		}
		if err := gw.Restart(ctx, sigs[n%2], time.Minute); err != nil && ctx.Err() == nil {
			r.t.violation("restart", "%v", err)
		}
	}
}

// watch prints a row every Every until the duration is over or ctx ends.
func (r *soakRun) watch(ctx context.Context) {
	r.printHeader()
	end := r.start.Add(r.o.duration)
	for {
		next := min(time.Until(end), r.o.every-time.Since(r.start)%r.o.every)
		pause(ctx, next)
		if ctx.Err() != nil || !time.Now().Before(end) {
			return
		}
		r.printRow(r.sample(ctx))
		r.checkAlive()
	}
}

// checkAlive reports a process that exited by itself (the router, or a
// gateway not being restarted).
func (r *soakRun) checkAlive() {
	procs := []*soakProc{r.st.router}
	if r.o.restartEvery > 0 {
		procs = append(procs, r.st.gateways[:len(r.st.gateways)-1]...)
	} else {
		procs = append(procs, r.st.gateways...)
	}
	for _, p := range procs {
		if exited, err := p.Status(); exited {
			r.t.violation("process", "%s exited by itself (%v); its log: %s", p.Name, err, p.Log)
		}
	}
}

// catchUp waits for the oracle to reach every view the clients checked; a
// view at a Seq the stream never reaches is a violation.
func (r *soakRun) catchUp(ctx context.Context, o *oracle.Oracle) {
	if err := waitUntil(ctx, 30*time.Second, func() bool { return o.Waiting() == 0 }); err != nil {
		r.t.violation("view", "%d views at Seqs the stream has not reached 30 s after the clients stopped", o.Waiting())
	}
}

// sample takes a row.
func (r *soakRun) sample(ctx context.Context) soakRow {
	row := soakRow{Elapsed: time.Since(r.start).Round(time.Second), Procs: map[string]procSample{}, Self: sampleMem()}
	const accepted = "sis_adapter_changes_accepted_total"
	rs := r.st.router.sample(ctx, accepted)
	row.Procs[r.st.router.Name] = rs
	if now := time.Now(); rs.Up && !r.lastAt.IsZero() {
		row.ChangesPerSec = (rs.Extra[accepted] - r.lastChanges) / now.Sub(r.lastAt).Seconds()
	}
	r.lastChanges, r.lastAt = rs.Extra[accepted], time.Now()
	for _, g := range r.st.gateways {
		row.Procs[g.Name] = g.sample(ctx)
		row.Restarts += g.Restarts()
	}
	t := r.t
	row.Connected, row.Sessions, row.Events = t.connected.Load(), t.sessions.Load(), t.events.Load()
	row.Verified, row.Unverified, row.Violations = r.orc.Verified.Load(), r.orc.Unverified.Load(), t.violationCount()
	r.rows = append(r.rows, row)
	return row
}

// procNames are the watched processes in table order.
func (r *soakRun) procNames() []string {
	names := []string{r.st.router.Name}
	for _, g := range r.st.gateways {
		names = append(names, g.Name)
	}
	return names
}

// printHeader prints the table's header.
func (r *soakRun) printHeader() {
	var b strings.Builder
	fmt.Fprintf(&b, "%8s", "elapsed")
	for _, n := range r.procNames() {
		fmt.Fprintf(&b, " | %-6s %6s %5s %5s", n, "MiB", "gor", "fds")
	}
	fmt.Fprintf(&b, " | %8s %6s %8s %9s %9s %11s %10s %10s %8s\n", "self MiB", "conns", "sessions", "events", "changes/s", "views ok", "unverified", "violations", "restarts")
	fmt.Fprint(r.out, b.String())
}

// printRow prints one row.
func (r *soakRun) printRow(row soakRow) {
	var b strings.Builder
	fmt.Fprintf(&b, "%8s", row.Elapsed)
	for _, n := range r.procNames() {
		p := row.Procs[n]
		if !p.Up {
			fmt.Fprintf(&b, " | %-6s %18s", n, "down")
			continue
		}
		fmt.Fprintf(&b, " | %-6s %6.0f %5.0f %5.0f", n, p.RSS/(1<<20), p.Goroutines, p.OpenFiles)
	}
	fmt.Fprintf(&b, " | %8.0f %6d %8d %9d %9.0f %11d %10d %10d %8d\n", float64(row.Self.RSS)/(1<<20), row.Connected, row.Sessions,
		row.Events, row.ChangesPerSec, row.Verified, row.Unverified, row.Violations, row.Restarts)
	fmt.Fprint(r.out, b.String())
}

// verdict judges the run: no violation, progress made, nothing kept
// growing in the processes that were never restarted, a clean stop.
func (r *soakRun) verdict(clean bool) (*soakResult, error) {
	res := &soakResult{Rows: r.rows, Closes: r.t.closeSummary()}
	res.Violations, res.First = r.t.findings()
	res.Growth = r.growth()
	var problems []string
	if n := r.t.violationCount(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d violations", n))
	}
	if r.orc.Verified.Load() == 0 || r.t.subscribes.Load() == 0 {
		problems = append(problems, "no view was checked: the soak did not run")
	}
	if len(res.Growth) > 0 {
		problems = append(problems, "growth: "+strings.Join(res.Growth, "; "))
	}
	if !clean {
		problems = append(problems, "a process did not stop cleanly on SIGTERM")
	}
	r.printVerdict(res)
	if len(problems) > 0 {
		return res, errors.New("soak failed: " + strings.Join(problems, ", "))
	}
	res.Pass = true
	fmt.Fprintln(r.out, "soak: PASS")
	return res, nil
}

// printVerdict prints the totals and what was found.
func (r *soakRun) printVerdict(res *soakResult) {
	t := r.t
	fmt.Fprintf(r.out, "\nconnections %d (failed dials %d), sessions %d, subscribes %d, unsubscribes %d, heartbeats %d, events %d (RouterDisconnected %d)\n",
		t.dials.Load(), t.dialFails.Load(), t.sessions.Load(), t.subscribes.Load(), t.unsubscribes.Load(), t.heartbeats.Load(), t.events.Load(), t.routerDisconnects.Load())
	fmt.Fprintf(r.out, "views checked against the stream %d (unverified %d), stream events read %d, closes by the gateways (code×count; 0: no close frame): %s\n",
		r.orc.Verified.Load(), r.orc.Unverified.Load(), r.orc.Events.Load(), res.Closes)
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range res.Violations {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range kinds {
		fmt.Fprintf(r.out, "violations %s: %d\n", k, res.Violations[k])
	}
	for _, f := range res.First {
		fmt.Fprintln(r.out, "  ", f)
	}
}
