package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/replay"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/wallboard"
)

const replayUsage = `usage: sisbridge replay COMMAND [flags]

commands:
  record --out FILE     capture the bus live until Ctrl-C (or --duration), or
                        export a range of history (--from, --to)
  play FILE             play a capture into NATS through a router adapter
                        (--nats URL, or --embedded for a throwaway server)
  inspect FILE          summarise a capture; --jsonl prints every frame

"sisbridge replay COMMAND -h" lists a command's flags; docs/replay.md has a
walkthrough.
`

// runReplay is "sisbridge replay": capture bus traffic, play it back.
func runReplay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		io.WriteString(stderr, replayUsage)
		return errors.New("replay: no command given")
	}
	switch args[0] {
	case "record":
		return replayRecord(ctx, args[1:], stderr)
	case "play":
		return replayPlay(ctx, args[1:], stderr)
	case "inspect":
		return replayInspect(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		io.WriteString(stderr, replayUsage)
		return flag.ErrHelp
	}
	io.WriteString(stderr, replayUsage)
	return fmt.Errorf("replay: unknown command %q", args[0])
}

// filterFlags select tenants and groups.
type filterFlags struct{ tenants, groups string }

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tenants, "tenant", "", "only these tenants (comma-separated TenantIDs)")
	fs.StringVar(&f.groups, "group", "", "only these service groups (comma-separated ServiceGroupIDs)")
}

func (f *filterFlags) filter() replay.Filter {
	return replay.Filter{Tenants: splitList(f.tenants), Groups: splitList(f.groups)}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// replayFlags starts a subcommand's flag set; parse returns the positional
// arguments, wanting exactly want of them.
func replayFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sisbridge replay "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sisbridge replay %s [flags]%s\n\nflags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

func parseReplay(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != want {
		fs.Usage()
		return nil, fmt.Errorf("%s: want %d file argument(s), got %d", fs.Name(), want, len(pos))
	}
	return pos, nil
}

// openCapture opens a capture file for reading.
func openCapture(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// explainCapture adds what to do about a damaged capture.
func explainCapture(err error) error {
	if errors.Is(err, replay.ErrCorrupt) || errors.Is(err, replay.ErrTruncated) {
		return fmt.Errorf("%w (--skip-corrupt steps over damaged frames)", err)
	}
	return err
}

func replayInspect(args []string, stdout, stderr io.Writer) error {
	fs := replayFlags("inspect", " FILE", stderr)
	jsonl := fs.Bool("jsonl", false, "print every frame as one JSON object per line")
	skip := fs.Bool("skip-corrupt", false, "step over damaged frames and list them")
	pos, err := parseReplay(fs, args, 1)
	if err != nil {
		return err
	}
	f, size, err := openCapture(pos[0])
	if err != nil {
		return fmt.Errorf("replay inspect: %w", err)
	}
	defer f.Close()
	opts := replay.ReadOptions{SkipCorrupt: *skip}
	if *jsonl {
		return explainCapture(replay.WriteJSONL(stdout, f, size, opts))
	}
	s, err := replay.Inspect(f, size, opts)
	if err != nil {
		return fmt.Errorf("replay inspect %s: %w", pos[0], explainCapture(err))
	}
	return s.WriteText(stdout)
}

func replayRecord(ctx context.Context, args []string, stderr io.Writer) error {
	fs := replayFlags("record", "", stderr)
	var (
		lf       logFlags
		ff       filterFlags
		nf       natsFlags
		out      = fs.String("out", "", "capture file to write (required)")
		force    = fs.Bool("force", false, "overwrite the capture file if it exists")
		from     = fs.String("from", "", "export history from this stream sequence or RFC 3339 time, instead of recording live")
		to       = fs.String("to", "", "export history up to this stream sequence or RFC 3339 time (inclusive)")
		duration = fs.Duration("duration", 0, "stop recording live after this long (0: at Ctrl-C)")
	)
	nf.register(fs, access.Recorder)
	lf.register(fs)
	ff.register(fs)
	if _, err := parseReplay(fs, args, 0); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errors.New("replay record: --out FILE is required")
	}
	fromB, errFrom := replay.ParseBound(*from)
	toB, errTo := replay.ParseBound(*to)
	if err := errors.Join(errFrom, errTo); err != nil {
		return fmt.Errorf("replay record: --from/--to %w", err)
	}
	if err := replay.CheckRange(fromB, toB); err != nil {
		return fmt.Errorf("replay record: --from/--to: %w", err)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	opts, err := nf.connectOptions(nats.Name("sisbridge-replay-record"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("replay record: %w", err)
	}
	nc, err := nats.Connect(nf.url, opts...)
	if err != nil {
		return fmt.Errorf("replay record: connect to NATS at %s: %w", access.Redact(nf.url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	rec, err := replay.NewRecorder(ctx, js, replay.RecordConfig{Filter: ff.filter(), Source: access.Redact(nf.url), Log: log})
	if err != nil {
		return fmt.Errorf("replay record: %w", err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(*out, flags, 0o644)
	if err != nil {
		return fmt.Errorf("replay record: %w (--force overwrites)", err)
	}
	history := *from != "" || *to != ""
	stop := showRecordProgress(ctx, rec, stderr)
	tr, err := recordTo(ctx, rec, f, history, fromB, toB, *duration)
	stop()
	err = errors.Join(err, f.Sync(), f.Close())
	if tr.Hash != "" {
		fmt.Fprintf(stderr, "wrote %s: %d changes (%d enqueue, %d move, %d remove), %d groups, %d queued at the end, %d bytes, final state sha256:%s\n",
			*out, tr.Counts.Events, tr.Counts.Enqueues, tr.Counts.Moves, tr.Counts.Removes, len(tr.Seqs), tr.Sessions, rec.Progress().Bytes, tr.Hash[:16])
	}
	if err != nil {
		return fmt.Errorf("replay record: %w", err)
	}
	return nil
}

func recordTo(ctx context.Context, rec *replay.Recorder, w io.Writer, history bool, from, to replay.Bound, d time.Duration) (replay.Trailer, error) {
	if history {
		return rec.History(ctx, w, from, to)
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return rec.Live(ctx, w)
}

// showRecordProgress prints a line every second until the returned
// function is called.
func showRecordProgress(ctx context.Context, rec *replay.Recorder, w io.Writer) func() {
	var last replay.RecordProgress
	return every(ctx, time.Second, func(d time.Duration) {
		p := rec.Progress()
		fmt.Fprintf(w, "recorded %d changes, %d bytes (%.0f changes/s)\n", p.Events, p.Bytes, float64(p.Events-last.Events)/d.Seconds())
		last = p
	})
}

// every calls fn every interval until the returned function is called; it
// waits for the goroutine to end.
func every(ctx context.Context, interval time.Duration, fn func(time.Duration)) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(interval)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// parseSpeed reads "max" or a positive number.
func parseSpeed(s string) (float64, error) {
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) {
		return 0, fmt.Errorf("--speed %q: want a positive number (1 = recorded pace) or max", s)
	}
	return v, nil
}

// sessionsOf returns the adapter's queues of the given groups.
func sessionsOf(a *router.Adapter, groups map[string]uint64) map[string][]queue.Session {
	out := make(map[string][]queue.Session, len(groups))
	for id := range groups {
		_, s, _ := a.Group(id)
		out[id] = s
	}
	return out
}

func componentLog(log zerolog.Logger, name string) zerolog.Logger {
	return log.With().Str("component", name).Logger()
}

func replayPlay(ctx context.Context, args []string, stderr io.Writer) error {
	fs := replayFlags("play", " FILE", stderr)
	var (
		lf        logFlags
		ff        filterFlags
		nf        natsFlags
		embedded  = fs.Bool("embedded", false, "play into a throwaway embedded NATS server (in a temporary directory) instead of --nats")
		listen    = fs.String("nats-listen", "127.0.0.1:0", "with --embedded: the server's address (port 0: any free port)")
		gateway   = fs.String("gateway", "", "with --embedded: also serve a gateway and the wallboard on this address (e.g. 127.0.0.1:8080) until Ctrl-C")
		speed     = fs.String("speed", "1", "capture seconds per second: 1 (recorded pace), 10, ..., or max")
		loop      = fs.Bool("loop", false, "play again and again: at the end, reconcile back to the starting state and start over")
		keepTimes = fs.Bool("keep-times", false, "play TimeEnteredQueue as recorded (default: shifted so that the capture's start is now)")
		skip      = fs.Bool("skip-corrupt", false, "step over damaged frames, play the rest and list what was skipped")
		takeOver  = fs.Bool("take-over", false, "play even though the router status says another adapter is live (stop that adapter first)")
	)
	nf.register(fs, access.Adapter)
	lf.register(fs)
	ff.register(fs)
	pos, err := parseReplay(fs, args, 1)
	if err != nil {
		return err
	}
	sp, err := parseSpeed(*speed)
	if err != nil {
		return err
	}
	if *gateway != "" && !*embedded {
		return errors.New("replay play: --gateway needs --embedded (against your own NATS, run sisbridge gateway)")
	}
	if *gateway != "" { // fail now, not once the capture has played
		ln, err := net.Listen("tcp", *gateway)
		if err != nil {
			return fmt.Errorf("replay play: --gateway %s: %w", *gateway, err)
		}
		_ = ln.Close()
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	f, size, err := openCapture(pos[0])
	if err != nil {
		return fmt.Errorf("replay play: %w", err)
	}
	defer f.Close()
	cfg := replay.PlayConfig{Speed: sp, Loop: *loop, KeepTimes: *keepTimes, Filter: ff.filter(), SkipCorrupt: *skip, Log: componentLog(log, "replay")}
	player, err := replay.NewPlayer(f, size, cfg)
	if err != nil {
		return fmt.Errorf("replay play %s: %w", pos[0], explainCapture(err))
	}
	describeCapture(player.Index(), stderr)
	nc, stopNATS, err := playConn(&nf, *embedded, *listen, log, stderr)
	if err != nil {
		return err
	}
	defer stopNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if !*takeOver {
		if err := replay.CheckIdle(ctx, js); err != nil {
			return fmt.Errorf("replay play: %w: refusing to play into a bus another adapter feeds (stop it, or pass --take-over)", err)
		}
	}
	play := func(ctx context.Context) error { return playAdapter(ctx, js, player, cfg, *takeOver, log, stderr) }
	if *gateway == "" {
		return play(ctx)
	}
	var gf gatewayFlags
	gf.register(flag.NewFlagSet("gateway", flag.ContinueOnError)) // the defaults
	gf.listen = *gateway
	err = both(ctx, func(ctx context.Context) error {
		if err := play(ctx); err != nil || ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(stderr, "the gateway keeps serving http://%s/ until Ctrl-C\n", *gateway)
		<-ctx.Done()
		return nil
	}, func(ctx context.Context) error {
		return serveGateway(ctx, nc, &gf, wallboard.Handler(), log, processRegistry())
	})
	return err
}

func describeCapture(x *replay.Index, w io.Writer) {
	fmt.Fprintf(w, "capture: %s, %d changes over %s from %s\n", x.Header.Source, x.Events, x.Span().Round(time.Second), x.Header.Start.Format(time.RFC3339))
	for _, sp := range x.Skipped {
		fmt.Fprintf(w, "skipping bytes %d..%d: %s\n", sp.From, sp.To, sp.Reason)
	}
	if x.Trailer == nil {
		fmt.Fprintf(w, "warning: no trailer: the file ends at offset %d (the recording was cut short); playing what is valid\n", x.End)
	}
}

// playConn connects to NATS, or starts an embedded server and connects to
// it; the returned function closes and stops what it opened.
func playConn(nf *natsFlags, embedded bool, listen string, log zerolog.Logger, stderr io.Writer) (*nats.Conn, func(), error) {
	if !embedded {
		opts, err := nf.connectOptions(nats.Name("sisbridge-replay-play"), nats.MaxReconnects(-1))
		if err != nil {
			return nil, nil, fmt.Errorf("replay play: %w", err)
		}
		nc, err := nats.Connect(nf.url, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("replay play: connect to NATS at %s: %w", access.Redact(nf.url), err)
		}
		return nc, nc.Close, nil
	}
	dir, err := os.MkdirTemp("", "sisbridge-replay-")
	if err != nil {
		return nil, nil, err
	}
	s, err := embednats.Start(embednats.Config{Listen: listen, DataDir: dir}, componentLog(log, "nats"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		s.Shutdown()
		s.WaitForShutdown()
		os.RemoveAll(dir)
	}
	nc, err := nats.Connect(s.ClientURL(), nats.Name("sisbridge-replay-play"))
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	fmt.Fprintf(stderr, "embedded NATS server at %s (removed at exit)\n", s.ClientURL())
	return nc, func() { nc.Close(); stop() }, nil
}

// playAdapter runs a router adapter on the player until the capture ends
// or ctx does, and reports what it played.
func playAdapter(ctx context.Context, js jetstream.JetStream, p *replay.Player, cfg replay.PlayConfig, takeOver bool, log zerolog.Logger, stderr io.Writer) error {
	a, err := router.Open(ctx, js, componentLog(log, "adapter"), router.Config{Name: "replay", TakeOver: takeOver})
	if err != nil {
		return err
	}
	last := p.Progress()
	stop := every(ctx, time.Second, func(d time.Duration) {
		pp := p.Progress()
		fmt.Fprintln(stderr, pp.Line(last, d, p.RoundElapsed()))
		last = pp
	})
	start := time.Now()
	runErr := a.Run(ctx, p)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	flushErr := a.Flush(closeCtx)
	elapsed := time.Since(start)
	stop()
	pp := p.Progress()
	fmt.Fprintf(stderr, "played %d changes in %s (%.0f changes/s stored), %d rejected\n", pp.Played, elapsed.Round(time.Millisecond), float64(pp.Played)/elapsed.Seconds(), pp.Rejected)
	for _, sp := range p.Skipped() {
		fmt.Fprintf(stderr, "skipped bytes %d..%d: %s\n", sp.From, sp.To, sp.Reason)
	}
	verifyErr := verifyPlayed(ctx, a, p, cfg, stderr)
	return errors.Join(runErr, flushErr, verifyErr, a.Close(closeCtx))
}

// verifyPlayed compares the adapter's final state with the trailer's hash
// when the whole capture was played once.
func verifyPlayed(ctx context.Context, a *router.Adapter, p *replay.Player, cfg replay.PlayConfig, stderr io.Writer) error {
	tr := p.Index().Trailer
	if ctx.Err() != nil || tr == nil || cfg.Loop || !cfg.Filter.Empty() || len(p.Skipped()) > 0 {
		return nil
	}
	got := replay.StateHash(sessionsOf(a, tr.Seqs))
	if got != tr.Hash {
		return fmt.Errorf("replay play: final state sha256:%s does not match the capture's trailer sha256:%s", got[:16], tr.Hash[:16])
	}
	fmt.Fprintf(stderr, "final state sha256:%s matches the capture's trailer\n", got[:16])
	return nil
}
