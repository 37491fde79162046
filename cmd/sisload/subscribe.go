package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// subscribeOpts are the flags of sisload subscribe.
type subscribeOpts struct {
	sessions   int
	format     string
	iterations int
	timeout    time.Duration
	logLevel   string
	jsonFile   string
}

func (o *subscribeOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.sessions, "sessions", 10000, "sessions queued in the one group")
	fs.StringVar(&o.format, "format", "json", "subprotocol: json or msgpack")
	fs.IntVar(&o.iterations, "iterations", 20, "fresh clients subscribing, one after the other")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole command")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the embedded server, adapter and gateway")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results to this JSON file")
}

// subscribeResult is the time from Subscribe to InitialDataComplete.
type subscribeResult struct {
	Sessions   int             `json:"sessions"`
	Format     string          `json:"format"`
	Iterations int             `json:"iterations"`
	Each       []time.Duration `json:"eachNs"`
	Min        time.Duration   `json:"minNs"`
	P50        time.Duration   `json:"p50Ns"`
	P99        time.Duration   `json:"p99Ns"`
	Max        time.Duration   `json:"maxNs"`
	Events     int             `json:"initialEvents"`
}

// runSubscribe times, for a fresh client each iteration, the Subscribe
// request to a group of o.sessions sessions until its InitialDataComplete;
// dialing and Initialize are not counted. The first iteration also loads the
// group's view in the gateway (snapshot and events from JetStream); the
// others find it loaded.
func runSubscribe(ctx context.Context, o subscribeOpts, stderr io.Writer) (subscribeResult, error) {
	res := subscribeResult{Sessions: o.sessions, Format: o.format, Iterations: o.iterations}
	format, err := parseFormat(o.format)
	if err != nil {
		return res, err
	}
	if o.sessions < 1 || o.iterations < 1 {
		return res, errors.New("sessions and iterations: want at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	log, err := newLogger(o.logLevel)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(stderr, "pre-filling one group with %d sessions\n", o.sessions)
	st, err := startStack(ctx, log, 1, o.sessions)
	if err != nil {
		return res, err
	}
	defer st.Close()
	gw, err := st.startGateway(ctx, bridge.Config{}, o.iterations+10)
	if err != nil {
		return res, err
	}
	defer gw.close()
	for i := range o.iterations {
		d, events, err := timeSubscribe(ctx, gw.url, st.groups[0], format)
		if err != nil {
			return res, fmt.Errorf("iteration %d: %w", i+1, err)
		}
		fmt.Fprintf(stderr, "[subscribe] %2d: %s (%d events)\n", i+1, d.Round(time.Microsecond), events)
		res.Each, res.Events = append(res.Each, d), events
	}
	sorted := slices.Clone(res.Each)
	slices.Sort(sorted)
	at := func(q float64) time.Duration { return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)] }
	res.Min, res.P50, res.P99, res.Max = sorted[0], at(0.50), at(0.99), sorted[len(sorted)-1]
	return res, nil
}

// timeSubscribe dials and initializes a client, then times its Subscribe
// until InitialDataComplete of group; it returns how many events that took.
func timeSubscribe(ctx context.Context, url, group string, format protocol.Format) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Format: format})
	if err != nil {
		return 0, 0, err
	}
	readerDone := make(chan struct{})
	defer func() {
		_ = c.Close()
		<-readerDone
	}()
	if err := c.Initialize(ctx, "", "", false); err != nil {
		close(readerDone)
		return 0, 0, fmt.Errorf("initialize: %w", err)
	}
	done := make(chan time.Time, 1)
	events := 0
	go func() {
		defer close(readerDone)
		for m := range c.Events() {
			events++
			if m.Event == protocol.EventInitialDataComplete && m.ServiceGroupID == group {
				done <- time.Now()
				return
			}
		}
	}()
	start := time.Now()
	if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: group}); err != nil {
		return 0, 0, fmt.Errorf("subscribe: %w", err)
	}
	select {
	case end := <-done:
		return end.Sub(start), events, nil
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("no InitialDataComplete: %w", ctx.Err())
	}
}

// printSubscribe prints the result table.
func printSubscribe(w io.Writer, r subscribeResult) {
	fmt.Fprintf(w, "\nsubscribe: one group of %d sessions, %d fresh clients one after the other, format %s (%d events each)\n",
		r.Sessions, r.Iterations, r.Format, r.Events)
	fmt.Fprintf(w, "%-10s %10s %10s %10s %10s %12s\n", "", "min", "p50", "p99", "max", "first (cold)")
	fmt.Fprintf(w, "%-10s %10s %10s %10s %10s %12s\n", "subscribe", ms(r.Min), ms(r.P50), ms(r.P99), ms(r.Max), ms(r.Each[0]))
}
