// Command sisload measures SIS Bridge under load, on loopback, everything
// started in this process (docs/benchmarks.md), and soaks it (the router
// adapter and gateways then run as sisbridge processes, docs/security.md):
//
//	sisload fanout     fan-out by the gateway and, side by side, by
//	                   nats-server's own WebSocket listener and by a
//	                   centrifuge node
//	sisload curve      fanout as the clients and the change rate grow,
//	                   as a table and charts
//	sisload subscribe  time from Subscribe to InitialDataComplete on a deep queue
//	sisload idle       memory per idle connection, clients in a child process
//	sisload herd       many clients subscribing to one deep group at once
//	sisload groups     one client following thousands of groups
//	sisload failover   the active adapter killed, a standby taking over
//	sisload soak       hours of churn; fails on a broken promise or a leak
//
// Every run is bounded in time and stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

const usage = `usage: sisload <command> [flags]

commands:
  fanout     fan-out of router changes to WebSocket clients: our gateway,
             nats-server's WebSocket listener and a centrifuge node (the
             engine of Centrifugo), side by side
  curve      fanout as the clients grow and as the change rate grows,
             three runs a point, the gateway again at the load of a peer
             that held the router back: a table, the gateway's ratios to
             the peers at equal load, PNG charts
  subscribe  time from Subscribe to InitialDataComplete on a deep queue
  idle       memory per idle connection of each system
  floor      CPU time of one small loopback TCP write and its read: the
             machine's cost under every fan-out, before any protocol
  herd       clients all subscribing at once to one deep group: time to the
             last InitialDataComplete, closes, the gateway's peak memory
             (--abuse: one client that never reads)
  groups     one client subscribing to thousands of groups: how many are
             followed by a deadline, then the idle cost per followed group
  failover   the active router adapter killed again and again, a warm
             standby taking over each time: how long each takeover takes
  soak       a long run of the router adapter and gateways (sisbridge
             processes) under churning clients, a gateway restarted now and
             then: memory, goroutines, open files and every client's view
             checked against the stream; fails on a violation or growth

"sisload <command> -h" lists a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := profile(profilePath(os.Getenv("SISLOAD_CPUPROFILE"), os.Args[1:]))
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "sisload:", err)
		os.Exit(1)
	}
}

// profilePath names the profile of this process: a client child process
// adds ".clients" to the path it inherits.
func profilePath(path string, args []string) string {
	if path != "" && len(args) > 0 && args[0] == childCommand {
		return path + ".clients"
	}
	return path
}

// profile writes a CPU profile of the whole run to path, when set (the
// environment variable SISLOAD_CPUPROFILE; a client child process writes
// its own to the same path + ".clients"); the returned function stops it.
func profile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sisload: cpu profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "sisload: cpu profile:", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// run dispatches a command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "fanout":
		return fanoutCommand(ctx, args[1:], stdout, stderr)
	case "subscribe":
		return subscribeCommand(ctx, args[1:], stdout, stderr)
	case "idle":
		return idleCommand(ctx, args[1:], stdout, stderr)
	case "floor":
		return floorCommand(ctx, args[1:], stdout, stderr)
	case "curve":
		return curveCommand(ctx, args[1:], stdout, stderr)
	case "herd":
		return herdCommand(ctx, args[1:], stdout, stderr)
	case "groups":
		return groupsCommand(ctx, args[1:], stdout, stderr)
	case "failover":
		return failoverCommand(ctx, args[1:], stdout, stderr)
	case "soak":
		return soakCommand(ctx, args[1:], stdout, stderr)
	case herdChildCommand:
		return runHerdChild(ctx, stdin, stdout)
	case childCommand:
		return runFleetChild(ctx, stdin, stdout)
	case idleChildCommand:
		return runIdleChild(ctx, args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// commandOpts are a command's options: they declare its flags.
type commandOpts interface {
	register(fs *flag.FlagSet)
}

// checkedOpts are options that check their values once parsed, and fill
// in defaults that depend on other flags.
type checkedOpts interface {
	validate() error
}

// parseCommand declares o's flags for the command name, parses args into
// them and, when o is checkedOpts, validates them; usage and flag errors
// go to stderr.
func parseCommand(name string, o commandOpts, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c, ok := o.(checkedOpts); ok {
		return c.validate()
	}
	return nil
}

// flagErrors gathers what is wrong with a command's flag values.
type flagErrors []error

// check notes msg unless ok.
func (e *flagErrors) check(ok bool, msg string) {
	if !ok {
		*e = append(*e, errors.New(msg))
	}
}

// err joins what was noted; nil when nothing was.
func (e flagErrors) err() error { return errors.Join(e...) }

// parseFlags parses a command's flags; it refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// fanoutCommand runs sisload fanout and prints its table.
func fanoutCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o fanoutOpts
	if err := parseCommand("sisload fanout", &o, args, stderr); err != nil {
		return err
	}
	rs, err := runFanout(ctx, o, stderr)
	if len(rs) > 0 {
		printFanout(stdout, o, rs)
	}
	if err != nil {
		return err
	}
	return writeJSON(o.jsonFile, rs)
}

// subscribeCommand runs sisload subscribe and prints its table.
func subscribeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o subscribeOpts
	if err := parseCommand("sisload subscribe", &o, args, stderr); err != nil {
		return err
	}
	r, err := runSubscribe(ctx, o, stderr)
	if err != nil {
		return err
	}
	printSubscribe(stdout, r)
	return writeJSON(o.jsonFile, r)
}

// idleCommand runs sisload idle and prints its table.
func idleCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o idleOpts
	if err := parseCommand("sisload idle", &o, args, stderr); err != nil {
		return err
	}
	rs, err := runIdle(ctx, o, stderr)
	if len(rs) > 0 {
		printIdle(stdout, rs)
	}
	if err != nil {
		return err
	}
	return writeJSON(o.jsonFile, rs)
}

// printIdle prints the idle table.
func printIdle(w io.Writer, rs []idleResult) {
	fmt.Fprintf(w, "\nidle: memory of idle connections in the serving process (clients in a child process)\n")
	fmt.Fprintf(w, "%-10s %8s %-24s %14s %12s %12s %14s %16s\n", "system", "conns", "each connection", "heap+stack/conn", "heap/conn", "stack/conn", "goroutines/conn", "total MiB (+)")
	for _, r := range rs {
		what := "initialized"
		if r.System == kindNATS || r.System == kindCentrifuge {
			what = "1 subscription"
		} else if r.Subscribed {
			what = "initialized, 1 group"
		}
		total := (float64(r.After.Bytes()) - float64(r.Before.Bytes())) / (1 << 20)
		fmt.Fprintf(w, "%-10s %8d %-24s %14.0f %12.0f %12.0f %14.2f %16.1f\n", systemLabel(r.System), r.Clients, what,
			r.BytesPerConn, r.HeapPerConn, r.StackPerConn, r.GoroutinesPer, total)
	}
}
