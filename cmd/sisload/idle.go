package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// idleChildCommand is the hidden subcommand that holds idle connections.
const idleChildCommand = "idle-clients"

// idleOpts are the flags of sisload idle.
type idleOpts struct {
	clients   int
	only      string
	subscribe bool
	setup     time.Duration
	timeout   time.Duration
	logLevel  string
	jsonFile  string
}

func (o *idleOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.clients, "clients", 5000, "idle connections per system")
	fs.StringVar(&o.only, "only", "", "measure these systems only, comma-separated: gateway, nats, centrifuge")
	fs.BoolVar(&o.subscribe, "subscribe", false, "gateway clients also subscribe to one group (NATS and centrifuge clients always hold one subscription)")
	fs.DurationVar(&o.setup, "setup-timeout", 5*time.Minute, "bound on opening every connection")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on the whole command")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the embedded server, adapter and gateway")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results to this JSON file")
}

// idleResult is the memory of n idle connections to one system.
type idleResult struct {
	System        string       `json:"system"`
	Clients       int          `json:"clients"`
	Subscribed    bool         `json:"subscribed"`
	Before        memFootprint `json:"before"`
	After         memFootprint `json:"after"`
	BytesPerConn  float64      `json:"bytesPerConn"`
	HeapPerConn   float64      `json:"heapPerConn"`
	StackPerConn  float64      `json:"stackPerConn"`
	GoroutinesPer float64      `json:"goroutinesPerConn"`
}

// runIdle measures, in this process, the memory that o.clients idle
// connections held by a child process cost each system.
func runIdle(ctx context.Context, o idleOpts, stderr io.Writer) ([]idleResult, error) {
	systems, err := parseSystems(o.only)
	if err != nil {
		return nil, err
	}
	if o.clients < 1 {
		return nil, errors.New("want clients ≥ 1")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if limit := raiseOpenFiles(); uint64(o.clients)+fdHeadroom > limit {
		return nil, fmt.Errorf("%d connections need about %d open files here; the limit is %d", o.clients, o.clients+fdHeadroom, limit)
	}
	log, err := newLogger(o.logLevel)
	if err != nil {
		return nil, err
	}
	st, err := startStack(ctx, log, 1, 20)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	base := st.ns.NumClients()
	var out []idleResult
	for _, sys := range systems {
		if err := waitUntil(ctx, 30*time.Second, func() bool { return st.ns.NumClients() <= base }); err != nil {
			return out, fmt.Errorf("the NATS connections of the run before %s did not go: %w", systemLabel(sys), err)
		}
		r, err := idleSystem(ctx, sys, st, o, stderr)
		if err != nil {
			return out, fmt.Errorf("%s: %w", systemLabel(sys), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// idleSystem measures one system's idle connections.
func idleSystem(ctx context.Context, sys string, st *stack, o idleOpts, stderr io.Writer) (idleResult, error) {
	switch sys {
	case kindGateway:
		return idleGateway(ctx, st, o, stderr)
	case kindNATS:
		return idleNATS(ctx, st, o, stderr)
	}
	return idleCentrifuge(ctx, st, o, stderr)
}

// idleGateway measures initialized, idle gateway sessions.
func idleGateway(ctx context.Context, st *stack, o idleOpts, stderr io.Writer) (idleResult, error) {
	gw, err := st.startGateway(ctx, bridge.Config{}, o.clients+10)
	if err != nil {
		return idleResult{}, err
	}
	defer gw.close()
	group := ""
	if o.subscribe {
		group = st.groups[0]
	}
	cond := func() bool {
		s := gw.srv.Stats()
		return s.Sessions >= o.clients && (!o.subscribe || s.Subscriptions >= o.clients)
	}
	r, err := idleMeasure(ctx, o, kindGateway, []string{"--url", gw.url, "--group", group}, cond, stderr)
	r.Subscribed = o.subscribe
	return r, err
}

// idleNATS measures nats-server WebSocket connections with one
// subscription each.
func idleNATS(ctx context.Context, st *stack, o idleOpts, stderr io.Writer) (idleResult, error) {
	clients0, subs0 := st.ns.NumClients(), st.ns.NumSubscriptions()
	cond := func() bool {
		return st.ns.NumClients() >= clients0+o.clients && st.ns.NumSubscriptions() >= subs0+uint32(o.clients)
	}
	r, err := idleMeasure(ctx, o, kindNATS, []string{"--url", st.WebsocketURL(), "--group", st.groups[0]}, cond, stderr)
	r.Subscribed = true
	return r, err
}

// idleCentrifuge measures connections to a centrifuge node, each
// subscribed to one group's channel; the node and its relay are running
// before the first measure.
func idleCentrifuge(ctx context.Context, st *stack, o idleOpts, stderr io.Writer) (idleResult, error) {
	nc, err := nats.Connect(st.ClientURL(), nats.Name("sisload-centrifuge"))
	if err != nil {
		return idleResult{}, fmt.Errorf("connect the relay to NATS: %w", err)
	}
	defer nc.Close()
	cf, err := startCentrifuge(nc, peerSubject(false), loadTenant, st.groups, 0)
	if err != nil {
		return idleResult{}, err
	}
	defer cf.close()
	g := st.groups[0]
	cond := func() bool { return cf.clients() >= o.clients && cf.subscribers(g) >= o.clients }
	r, err := idleMeasure(ctx, o, kindCentrifuge, []string{"--url", cf.url, "--group", g}, cond, stderr)
	r.Subscribed = true
	return r, err
}

// idleMeasure measures the footprint, has a child open the connections,
// waits until the server holds them all, and measures again.
func idleMeasure(ctx context.Context, o idleOpts, kind string, args []string, cond func() bool, stderr io.Writer) (idleResult, error) {
	r := idleResult{System: kind, Clients: o.clients}
	r.Before = footprint()
	child, err := startIdleChild(ctx, kind, o.clients, args, o.setup)
	if err != nil {
		return r, err
	}
	defer child.stop()
	if err := waitUntil(ctx, o.setup, cond); err != nil {
		return r, fmt.Errorf("server never held all %d connections: %w", o.clients, err)
	}
	r.After = footprint()
	n := float64(o.clients)
	r.HeapPerConn = (float64(r.After.HeapInuse) - float64(r.Before.HeapInuse)) / n
	r.StackPerConn = (float64(r.After.StackInuse) - float64(r.Before.StackInuse)) / n
	r.BytesPerConn = r.HeapPerConn + r.StackPerConn
	r.GoroutinesPer = float64(r.After.Goroutines-r.Before.Goroutines) / n
	fmt.Fprintf(stderr, "[idle %s] %d connections: %.0f bytes each, %.2f goroutines each\n", kind, o.clients, r.BytesPerConn, r.GoroutinesPer)
	return r, nil
}

// idleChild is a child process holding idle connections.
type idleChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startIdleChild starts a child opening n connections and waits until it
// says they are ready.
func startIdleChild(ctx context.Context, kind string, n int, args []string, setup time.Duration) (*idleChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run clients in a child: %w", err)
	}
	cmd := exec.Command(exe, append([]string{idleChildCommand, "--kind", kind, "--n", fmt.Sprint(n), "--setup-timeout", setup.String()}, args...)...)
	stdin, stdout, err := startPiped(cmd)
	if err != nil {
		return nil, err
	}
	c := &idleChild{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		if s != "ready" {
			c.stop()
			return nil, fmt.Errorf("client process: %q", s)
		}
		return c, nil
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	case <-time.After(setup + 30*time.Second):
		c.stop()
		return nil, fmt.Errorf("client process not ready within %s", setup+30*time.Second)
	}
}

// stop closes the child's stdin and waits for it to exit; after 30 s it is
// killed.
func (c *idleChild) stop() { endChild(c.cmd, c.stdin, nil) }

// runIdleChild is the child: it opens the connections, says "ready", and
// holds them until stdin ends or the lifetime bound passes.
func runIdleChild(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(idleChildCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", kindGateway, "gateway, nats or centrifuge")
	url := fs.String("url", "", "URL to connect to")
	n := fs.Int("n", 1, "connections")
	group := fs.String("group", "", "group to subscribe to (gateway: empty for none)")
	setup := fs.Duration("setup-timeout", 5*time.Minute, "bound on opening the connections")
	life := fs.Duration("lifetime", 30*time.Minute, "exit after this long at the latest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseOpenFiles()
	ctx, cancel := context.WithTimeout(ctx, *life)
	defer cancel()
	h := &idleHolder{kind: *kind, url: *url, group: *group}
	if *kind == kindCentrifuge {
		h.cf = idleCentrifugeFleet(*url, *group, *n)
	}
	defer h.close()
	sctx, scancel := context.WithTimeout(ctx, *setup)
	err := forEachParallel(sctx, *n, 64, h.open)
	scancel()
	if err != nil {
		fmt.Fprintf(stdout, "error: %v\n", err)
		return err
	}
	fmt.Fprintln(stdout, "ready")
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		_, _ = io.Copy(io.Discard, stdin)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// idleHolder holds idle connections of one kind.
type idleHolder struct {
	kind, url, group string
	mu               sync.Mutex
	gw               []*client.Client
	nc               []*nats.Conn
	cf               *cfFleet
	wg               sync.WaitGroup
}

// idleCentrifugeFleet is a fleet of n centrifuge clients subscribed to
// group, never counting.
func idleCentrifugeFleet(url, group string, n int) *cfFleet {
	assign := make([][]string, n)
	for i := range assign {
		assign[i] = []string{group}
	}
	return &cfFleet{cfg: fleetConfig{Kind: kindCentrifuge, URL: url, Assign: assign}, clients: make([]*cfClient, n)}
}

// open opens one connection: a gateway session (Initialize, and Subscribe
// when a group is set) or a NATS WebSocket connection with one
// subscription.
func (h *idleHolder) open(ctx context.Context, i int) error {
	if h.cf != nil {
		return h.cf.connect(ctx, i)
	}
	if h.kind == kindNATS {
		nc, err := nats.Connect(h.url, nats.Name(fmt.Sprintf("sisload-idle-%d", i)), nats.NoReconnect(), nats.Timeout(30*time.Second))
		if err != nil {
			return fmt.Errorf("connect %d: %w", i, err)
		}
		h.mu.Lock()
		h.nc = append(h.nc, nc)
		h.mu.Unlock()
		if _, err := nc.Subscribe(subjects.Events(loadTenant, h.group), func(*nats.Msg) {}); err != nil {
			return fmt.Errorf("subscribe %d: %w", i, err)
		}
		return nc.FlushWithContext(ctx)
	}
	c, err := client.Dial(ctx, h.url, client.Options{EventBuffer: 16})
	if err != nil {
		return fmt.Errorf("dial %d: %w", i, err)
	}
	h.mu.Lock()
	h.gw = append(h.gw, c)
	h.mu.Unlock()
	if err := c.Initialize(ctx, "", "", false); err != nil {
		return fmt.Errorf("initialize %d: %w", i, err)
	}
	h.wg.Add(1)
	go h.answerKeepAlives(c)
	if h.group != "" {
		if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: h.group}); err != nil {
			return fmt.Errorf("subscribe %d: %w", i, err)
		}
	}
	return nil
}

// answerKeepAlives reads a session's events and answers each KeepAlive,
// until the connection ends.
func (h *idleHolder) answerKeepAlives(c *client.Client) {
	defer h.wg.Done()
	for m := range c.Events() {
		if m.Event == protocol.EventKeepAlive {
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = c.Heartbeat(ctx)
			}()
		}
	}
}

// close closes every connection and waits for the readers.
func (h *idleHolder) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.gw {
		_ = c.Close()
	}
	for _, nc := range h.nc {
		nc.Close()
	}
	if h.cf != nil {
		h.cf.Close()
	}
	h.wg.Wait()
}
