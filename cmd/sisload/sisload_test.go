package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/natstest"
)

// TestFanoutTiny runs a tiny fan-out against the three systems, clients
// in this process, and checks that each delivered every change to every
// subscriber with no drop and no closed client.
func TestFanoutTiny(t *testing.T) {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	var o fanoutOpts
	o.register(fs)
	args := []string{"--clients", "20", "--groups", "5", "--per-client", "3", "--rate", "200", "--duration", "2s",
		"--client-procs", "0", "--drain", "5s", "--timeout", "25s", "--log-level", "error"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 28*time.Second)
	defer cancel()
	var progress bytes.Buffer
	rs, err := runFanout(ctx, o, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rs) != len(allSystems) {
		t.Fatalf("got %d results, want %d", len(rs), len(allSystems))
	}
	for _, r := range rs {
		if r.Deliveries == 0 || r.Changes == 0 {
			t.Errorf("%s: %d deliveries of %d changes", r.System, r.Deliveries, r.Changes)
		}
		if r.Deliveries != r.Expected {
			t.Errorf("%s: %d deliveries, want %d", r.System, r.Deliveries, r.Expected)
		}
		if drops := r.Closed + r.Dropped + r.SlowConsumer + r.ServerSlow + r.Lagging; drops != 0 {
			t.Errorf("%s: closed %d, dropped %d, slow %d/%d, lagging %d", r.System, r.Closed, r.Dropped, r.SlowConsumer, r.ServerSlow, r.Lagging)
		}
		if r.P50 <= 0 || r.Max < r.P99 || r.P99 < r.P50 || r.Untimed != 0 || r.Undecoded != 0 || r.RouterDown != 0 {
			t.Errorf("%s: latencies p50 %s p99 %s max %s, %d untimed, %d undecoded, %d RouterDisconnected",
				r.System, r.P50, r.P99, r.Max, r.Untimed, r.Undecoded, r.RouterDown)
		}
	}
	printFanout(io.Discard, o, rs)
	gw := rs[0]
	if gw.Stages == nil || gw.Stages.Writes == 0 || gw.Stages.Frames < gw.Stages.Writes || gw.Stages.ToView.N == 0 {
		t.Errorf("gateway stages %+v: want writes, frames and timed changes", gw.Stages)
	}
}

// TestChangedGroups: the drain waits only for groups the run changed; an
// unchanged one (whose Seq a nats or centrifuge client never learns) is
// left out.
func TestChangedGroups(t *testing.T) {
	got := changedGroups(map[string]uint64{"a": 5, "b": 3, "c": 9}, map[string]uint64{"a": 2, "b": 3})
	if len(got) != 2 || got["a"] != 5 || got["c"] != 9 {
		t.Fatalf("changed %v, want a:5 c:9", got)
	}
	p := newProgress([]string{"a", "b"})
	p.last[0].Store(5)
	if !p.caughtUp(got) {
		t.Fatal("a client at a's final Seq that never saw unchanged b is not caught up")
	}
}

// TestParseSystems: --only takes a list in any order and gives the table
// order; an unknown system is refused.
func TestParseSystems(t *testing.T) {
	cases := []struct {
		only string
		want string
		ok   bool
	}{
		{"", "gateway,nats,centrifuge", true},
		{"centrifuge, gateway", "gateway,centrifuge", true},
		{"nats", "nats", true},
		{"gateway,redis", "", false},
		{",", "", false},
	}
	for _, c := range cases {
		got, err := parseSystems(c.only)
		if (err == nil) != c.ok || strings.Join(got, ",") != c.want {
			t.Errorf("parseSystems(%q) = %v, %v; want %q, ok %v", c.only, got, err, c.want, c.ok)
		}
	}
}

// TestFloor measures a few loopback writes and reads every byte back.
func TestFloor(t *testing.T) {
	var out bytes.Buffer
	err := floorCommand(context.Background(), []string{"--conns", "3", "--rounds", "5", "--size", "100", "--pause", "0s"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "15 writes of 100 bytes to 3 loopback connections") {
		t.Fatalf("output %q", out.String())
	}
	if err := floorCommand(context.Background(), []string{"--conns", "0"}, &out, io.Discard); err == nil {
		t.Fatal("--conns 0 accepted")
	}
}

// TestHistogramQuantiles checks the buckets' precision and the quantiles.
func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Snapshot()
	if s.Total() != 1000 || s.Max != int64(time.Millisecond) {
		t.Fatalf("total %d max %d", s.Total(), s.Max)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.999, 999 * time.Microsecond}, {1, time.Millisecond}} {
		got := s.Quantile(c.q)
		if diff := got - c.want; diff < -c.want/50 || diff > c.want/50 {
			t.Errorf("q%.3f = %s, want %s ± 2%%", c.q, got, c.want)
		}
	}
	for v := uint64(1); v < 1<<40; v = v*3 + 1 {
		mid := bucketMid(bucketOf(v))
		if d := float64(mid) - float64(v); d > float64(v)/60 || d < -float64(v)/60 {
			t.Errorf("value %d lands in a bucket centred on %d", v, mid)
		}
	}
}

// TestAssignGroups checks that each client gets distinct groups.
func TestAssignGroups(t *testing.T) {
	a, err := assignGroups(50, 4, groupNames(6), 7)
	if err != nil {
		t.Fatal(err)
	}
	for i, gs := range a {
		seen := map[string]bool{}
		for _, g := range gs {
			if seen[g] {
				t.Fatalf("client %d has %s twice: %v", i, g, gs)
			}
			seen[g] = true
		}
	}
	if _, err := assignGroups(1, 7, groupNames(6), 1); err == nil {
		t.Error("7 of 6 groups: no error")
	}
}

// TestHerdTiny has 20 clients in this process subscribe at once to a group
// of 200 sessions and checks that all complete with their whole initial
// data and that the memory figures are filled in.
func TestHerdTiny(t *testing.T) {
	o := herdOpts{}
	fs := flag.NewFlagSet("herd", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse([]string{"--clients", "20", "--sessions", "200", "--in-process", "--deadline", "20s", "--timeout", "40s", "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	r, err := runHerd(context.Background(), o, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if r.Completed != 20 || r.Incomplete != 0 || r.Closed != 0 || r.TimedOut || len(r.Faults) != 0 {
		t.Errorf("completed %d (incomplete %d), closed %d, timed out %v, faults %v", r.Completed, r.Incomplete, r.Closed, r.TimedOut, r.Faults)
	}
	if r.Last <= 0 || r.P50 > r.Last {
		t.Errorf("times: median %s, last %s", r.P50, r.Last)
	}
	if r.Before.Heap == 0 || r.Peak.Heap < r.Before.Heap || r.After.Heap == 0 || r.Samples < 2 {
		t.Errorf("memory before %+v peak %+v after %+v (%d samples)", r.Before, r.Peak, r.After, r.Samples)
	}
	if r.Before.RSS == 0 || r.Peak.RSS < r.Before.RSS {
		t.Errorf("RSS before %d peak %d: /proc/self/status not read?", r.Before.RSS, r.Peak.RSS)
	}
	var out bytes.Buffer
	printHerd(&out, r)
	if !strings.Contains(out.String(), "completed: 20 of 20") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestHerdAbuseTiny has a client that never reads write a few
// Subscribe/Unsubscribe pairs and checks the run reports them.
func TestHerdAbuseTiny(t *testing.T) {
	o := herdOpts{}
	fs := flag.NewFlagSet("herd", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse([]string{"--abuse", "--sessions", "500", "--repeat", "3", "--hold", "1s", "--timeout", "40s", "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	r, err := runAbuse(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if r.Written != 6 || r.WriteErr != "" || r.MaxSubscriptions > 1 {
		t.Errorf("written %d (%s), most subscriptions %d", r.Written, r.WriteErr, r.MaxSubscriptions)
	}
	if r.Peak.Heap < r.Before.Heap || r.Samples < 2 {
		t.Errorf("memory before %+v peak %+v (%d samples)", r.Before, r.Peak, r.Samples)
	}
	printAbuse(io.Discard, r)
}

// TestGroupsTiny subscribes one client to 50 groups in 2 tenants and
// checks that every group completes and the idle figures are filled in.
func TestGroupsTiny(t *testing.T) {
	o := groupsOpts{}
	fs := flag.NewFlagSet("groups", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse([]string{"--groups", "50", "--tenants", "2", "--idle", "1s", "--deadline", "20s", "--live-check", "10s", "--timeout", "40s"}); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	r, err := runGroups(context.Background(), o, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if r.Sent != 50 || r.Succeeded != 50 || r.Completed != 50 || len(r.Faults) != 0 || r.Closed != 0 {
		t.Errorf("sent %d, succeeded %d, completed %d, faults %v, closed %d", r.Sent, r.Succeeded, r.Completed, r.Faults, r.Closed)
	}
	if r.Last <= 0 || r.Last > r.Elapsed {
		t.Errorf("last InitialDataComplete %s after %s", r.Last, r.Elapsed)
	}
	if r.Idle.Subscriptions != 50 || r.Idle.Views != 50 || r.Base.Views != 0 {
		t.Errorf("views %d → %d, subscriptions %d", r.Base.Views, r.Idle.Views, r.Idle.Subscriptions)
	}
	if r.Base.Mem.Heap == 0 || r.Idle.Mem.Goroutines < r.Base.Mem.Goroutines || r.Idle.Window < time.Second {
		t.Errorf("baseline %+v, subscribed %+v", r.Base, r.Idle)
	}
	var out bytes.Buffer
	printGroups(&out, r)
	if r.Probe.Probed != 50 || r.Probe.Live != 50 || r.Probe.Max < r.Probe.P50 || r.Probe.P50 <= 0 {
		t.Errorf("live check %+v: want all 50 groups live", r.Probe)
	}
	if !strings.Contains(out.String(), "InitialDataComplete: 50 of 50 groups") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestNewCommandFlags checks that the new commands refuse bad flags.
func TestNewCommandFlags(t *testing.T) {
	for _, args := range [][]string{
		{"herd", "--clients", "0"}, {"herd", "--sample", "1ms"}, {"herd", "--format", "xml"}, {"herd", "extra"},
		{"groups", "--groups", "0"}, {"groups", "--clients", "2", "--groups", "1"}, {"groups", "--idle", "0s"},
		{"groups", "--timeout", "1m"},
	} {
		if err := run(context.Background(), args, nil, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestFailoverTiny kills the active adapter twice with a standby following;
// each takes over, and the router's changes go on through the new one.
func TestFailoverTiny(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := failoverCommand(ctx, []string{"--groups", "20", "--kills", "2", "--lease", "1s", "--warm", "300ms", "--rate", "500"}, &out, io.Discard)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "takeover after a kill: median") || strings.Count(out.String(), "\n    ") < 2 {
		t.Fatalf("no table of two kills:\n%s", out.String())
	}
}

// TestCentrifugeIdleHolder: the idle child's holder opens connections to
// a centrifuge node, each subscribed to one channel, which the node then
// holds; closing the holder ends them all.
func TestCentrifugeIdleHolder(t *testing.T) {
	ns := natstest.Server(t)
	nc, _ := natstest.Connect(t, ns)
	cf, err := startCentrifuge(nc, peerSubject(false), loadTenant, []string{"g1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cf.close)
	h := &idleHolder{kind: kindCentrifuge, cf: idleCentrifugeFleet(cf.url, "g1", 5)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := forEachParallel(ctx, 5, 2, h.open); err != nil {
		t.Fatal(err)
	}
	if n, s := cf.clients(), cf.subscribers("g1"); n != 5 || s != 5 {
		t.Fatalf("node holds %d clients, %d subscribers of g1; want 5 and 5", n, s)
	}
	h.close()
	if err := waitUntil(ctx, 10*time.Second, func() bool { return cf.clients() == 0 }); err != nil {
		t.Fatalf("%d clients left after close", cf.clients())
	}
}

// TestCentrifugeBadHandshake: a client whose Subscribe the node rejects
// (an empty channel: the node closes the connection) fails to connect,
// saying why, instead of hanging.
func TestCentrifugeBadHandshake(t *testing.T) {
	ns := natstest.Server(t)
	nc, _ := natstest.Connect(t, ns)
	cf, err := startCentrifuge(nc, peerSubject(false), loadTenant, []string{"g1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cf.close)
	f := idleCentrifugeFleet(cf.url, "", 1)
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = f.connect(ctx, 0)
	if err == nil || !strings.Contains(err.Error(), "before the handshake's replies") {
		t.Fatalf("connect with an empty channel: %v, want the handshake's failure", err)
	}
}

// TestCurveTiny runs a two-point curve twice a point (a point on both
// curves is run once), the peers following the stored events, prints the
// table and the targets, and draws both charts.
func TestCurveTiny(t *testing.T) {
	var o curveOpts
	fs := flag.NewFlagSet("curve", flag.ContinueOnError)
	o.register(fs)
	charts := t.TempDir() + "/curve"
	args := []string{"--clients", "10,20", "--clients-rate", "50", "--rates", "50", "--rate-clients", "10", "--groups", "5",
		"--per-client", "2", "--duration", "1s", "--drain", "5s", "--client-procs", "0", "--floor-conns", "10", "--charts", charts,
		"--peers-follow", "stored", "--repeat", "2", "--no-match"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := runCurve(ctx, o, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(res.ByClients) != 2 || len(res.ByRate) != 1 || res.FloorPerWrite <= 0 {
		t.Fatalf("%d + %d points, floor %s; want 2 + 1 and a floor", len(res.ByClients), len(res.ByRate), res.FloorPerWrite)
	}
	if n := strings.Count(progress.String(), "[curve] 10 clients"); n != 2 {
		t.Errorf("the shared point ran %d times, want twice (once, repeated)", n)
	}
	for _, p := range res.ByClients {
		if len(p.Results) != len(allSystems) || len(p.Runs) != 2*len(allSystems) || len(p.Matched) != 0 {
			t.Fatalf("%d clients: %d systems in %d runs, %d matched; want %d in twice as many, none matched",
				p.Clients, len(p.Results), len(p.Runs), len(p.Matched), len(allSystems))
		}
		for _, r := range p.Results {
			if r.Deliveries != r.Expected || r.Deliveries == 0 {
				t.Errorf("%d clients, %s: %d of %d deliveries", p.Clients, r.System, r.Deliveries, r.Expected)
			}
		}
	}
	var out bytes.Buffer
	printCurve(&out, o, res)
	for _, want := range []string{"centrifuge", "gateway p99 ÷ best peer", "targets (worst point)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if err := writeCharts(charts, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{charts + "-clients.png", charts + "-rate.png"} {
		data, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("%s: not a PNG (%v)", f, err)
		}
	}
}

// TestCurveFlags: bad lists are refused.
func TestCurveFlags(t *testing.T) {
	for _, args := range [][]string{
		{"curve", "--clients", "0,10"}, {"curve", "--rates", "a"}, {"curve", "--only", "redis"}, {"curve", "--floor-conns", "0"},
	} {
		if err := run(context.Background(), args, nil, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestRunMatched runs the gateway again, for real, at the rates two peers
// that held the router back carried: one run each, since they are more
// than 1 % apart, each asked for that peer's rate, and a peer that kept
// the rate gets none.
func TestRunMatched(t *testing.T) {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	var o fanoutOpts
	o.register(fs)
	args := []string{"--clients", "10", "--groups", "5", "--per-client", "2", "--duration", "1s",
		"--client-procs", "0", "--drain", "5s", "--log-level", "error"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	p := curvePoint{Clients: 10, Rate: 200, Results: []runResult{
		result(kindGateway, 1, 1, 200, time.Millisecond),
		result(kindNATS, 1, 1, 120, 5*time.Millisecond),
		result(kindCentrifuge, 1, 1, 60, 9*time.Millisecond),
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var progress bytes.Buffer
	if err := runMatched(ctx, o, &p, 1, &progress); err != nil || p.Failed != "" {
		t.Fatalf("%v %s\n%s", err, p.Failed, progress.String())
	}
	for peer, rate := range map[string]float64{kindNATS: 120, kindCentrifuge: 60} {
		m, ok := p.Matched[peer]
		if !ok || m.System != kindGateway || m.TargetRate != rate || m.Deliveries == 0 || m.Deliveries != m.Expected {
			t.Errorf("matched run for %s: %+v (ok %v), want the gateway asked for %.0f changes/s delivering everything", peer, m, ok, rate)
		}
	}
	if n := strings.Count(progress.String(), "the gateway at"); n != 2 {
		t.Errorf("%d matched runs, want 2:\n%s", n, progress.String())
	}
}

// cancelOn is a progress writer that cancels a run once it has written
// a line containing after.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	after  string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(b)
	if strings.Contains(w.buf.String(), w.after) {
		w.cancel()
	}
	return n, err
}

// TestCurveStoppedKeepsItsPoints: a curve stopped part way (a Ctrl-C at the
// second point) still writes, with --json, the points it finished, which
// --from prints; the error says it stopped.
func TestCurveStoppedKeepsItsPoints(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	progress := &cancelOn{after: "[curve] 20 clients", cancel: cancel}
	args := []string{"--clients", "10,20", "--clients-rate", "50", "--rates", "50", "--rate-clients", "10", "--groups", "5",
		"--per-client", "2", "--duration", "1s", "--drain", "5s", "--client-procs", "0", "--floor-conns", "10",
		"--repeat", "1", "--no-match", "--only", "gateway", "--json", dir + "/curve.json"}
	var out bytes.Buffer
	err := curveCommand(ctx, args, &out, progress)
	if err == nil {
		t.Fatal("a curve stopped at its second point reported no error")
	}
	res, rerr := readCurve(dir + "/curve.json")
	if rerr != nil || len(res.ByClients) != 1 || res.ByClients[0].Clients != 10 || len(res.ByClients[0].Results) != 1 {
		t.Fatalf("kept %+v (%v), want the 10-client point alone", res, rerr)
	}
	progress.mu.Lock()
	defer progress.mu.Unlock()
	if !strings.Contains(progress.buf.String(), "the 1 points measured are in "+dir+"/curve.json") {
		t.Errorf("progress does not say where the points went:\n%s", progress.buf.String())
	}
}
