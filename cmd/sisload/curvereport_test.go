package main

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// result is a run of sys that delivered deliveries of expected at rate
// changes/s (200 asked), its p99 p99.
func result(sys string, deliveries, expected int64, rate float64, p99 time.Duration) runResult {
	return runResult{System: sys, Deliveries: deliveries, Expected: expected, TargetRate: 200, ChangesPerSec: rate,
		DeliveriesPerSec: float64(deliveries) / 10, P99: p99}
}

// TestTargetsFullLoad: a gateway that carried the whole offered load meets
// the deliveries target even when a peer was offered a little more; one
// that fell short does not.
func TestTargetsFullLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gateway runResult
		want    string
	}{
		{"full load, peer offered more", result(kindGateway, 99_000, 99_000, 199.8, time.Millisecond), "full offered load at every point  met"},
		{"short of the load", result(kindGateway, 90_000, 99_000, 199.8, time.Millisecond), "0.90× at 500 clients, 200 changes/s (of the points where the gateway fell short of the offered load)  NOT MET"},
		{"router held back", result(kindGateway, 99_000, 99_000, 150, time.Millisecond), "NOT MET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := curvePoint{Clients: 500, Rate: 200, Results: []runResult{tc.gateway,
				result(kindNATS, 100_000, 100_000, 200, 4*time.Millisecond)}}
			var out bytes.Buffer
			printTargets(&out, []curvePoint{p}, 10*time.Microsecond)
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("targets lack %q:\n%s", tc.want, out.String())
			}
			if !strings.Contains(out.String(), "0.25× at 500 clients") {
				t.Errorf("p99 ratio missing:\n%s", out.String())
			}
		})
	}
}

// TestP99AtTheSameLoad: a peer that held the router back (its p99 is of a
// lighter load) counts for the plain p99 ratio, not for the same-load one.
func TestP99AtTheSameLoad(t *testing.T) {
	p := curvePoint{Clients: 2000, Rate: 200, Results: []runResult{
		result(kindGateway, 99_000, 99_000, 200, 100*time.Millisecond),
		result(kindNATS, 99_000, 99_000, 200, 800*time.Millisecond),
		result(kindCentrifuge, 70_000, 70_000, 140, 50*time.Millisecond),
	}}
	r := ratiosAt(p, 10*time.Microsecond)
	if r.P99 != 2 || r.P99Same != 0.125 {
		t.Fatalf("p99 ratios %.3f and %.3f, want 2 and 0.125", r.P99, r.P99Same)
	}
	var out bytes.Buffer
	printTargets(&out, []curvePoint{p}, 10*time.Microsecond)
	for _, want := range []string{"2.00× at 2000 clients, 200 changes/s  NOT MET", "carried the full load: 0.12× at 2000 clients, 200 changes/s  met"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("targets lack %q:\n%s", want, out.String())
		}
	}
}

// TestCurveFrom prints and draws a curve written earlier, measuring
// nothing; a file that is not a curve is refused with its name, and a
// measurement's flag beside --from with its name.
func TestCurveFrom(t *testing.T) {
	dir := t.TempDir()
	point := func(clients int, rate float64) curvePoint {
		return curvePoint{Clients: clients, Rate: rate, Results: []runResult{
			result(kindGateway, 99_000, 99_000, 200, 10*time.Millisecond),
			result(kindNATS, 99_000, 99_000, 200, 30*time.Millisecond),
			result(kindCentrifuge, 99_000, 99_000, 200, 40*time.Millisecond)}}
	}
	held := point(2000, 1000) // centrifuge held the router back; the gateway ran again at its load
	held.Results[2].ChangesPerSec = 150
	held.setMatched(kindCentrifuge, result(kindGateway, 70_000, 70_000, 150, 5*time.Millisecond))
	res := curveResult{FloorPerWrite: 20 * time.Microsecond, ByClients: []curvePoint{point(500, 200), point(1000, 200)},
		ByRate: []curvePoint{point(2000, 200), held}}
	path := dir + "/curve.json"
	if err := writeJSON(path, res); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if err := curveCommand(t.Context(), []string{"--from", path, "--charts", dir + "/c"}, &out, &errs); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	for _, want := range []string{"curve read from " + path, "as clients grow, 200 changes/s", "as the change rate grows, 2000 clients", "0.33",
		"the gateway alone at the load they carried"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, png := range []string{dir + "/c-clients.png", dir + "/c-rate.png"} {
		if st, err := os.Stat(png); err != nil || st.Size() == 0 {
			t.Errorf("chart %s: %v", png, err)
		}
	}
	bad := dir + "/bad.json"
	if err := os.WriteFile(bad, []byte(`{"byClients": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := curveCommand(t.Context(), []string{"--from", bad}, &out, &errs); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("a bad file gave %v, want an error naming it", err)
	}
	err := curveCommand(t.Context(), []string{"--from", path, "--json", dir + "/again.json", "--duration", "1s"}, &out, &errs)
	for _, want := range []string{"json: --from measures nothing", "duration: --from measures nothing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--from with measuring flags gave %v, want %q", err, want)
		}
	}
}

// TestP99MatchedLoad: a peer that held the router back is compared with
// the gateway's run at the rate it carried, a peer at full load with the
// gateway's run at the point; the worst of the two is the point's ratio.
// Without a matched run the peer is left out and counted.
func TestP99MatchedLoad(t *testing.T) {
	p := curvePoint{Clients: 2000, Rate: 200, Results: []runResult{
		result(kindGateway, 99_000, 99_000, 200, 300*time.Millisecond),
		result(kindNATS, 99_000, 99_000, 200, 1000*time.Millisecond),
		result(kindCentrifuge, 70_000, 70_000, 140, 200*time.Millisecond),
	}}
	r := ratiosAt(p, 10*time.Microsecond)
	if r.P99Matched != 0.3 || r.Unmatched != 1 {
		t.Fatalf("without a matched run: %.3f with %d unmatched, want 0.3 (nats only) and 1", r.P99Matched, r.Unmatched)
	}
	matched := result(kindGateway, 70_000, 70_000, 140, 80*time.Millisecond)
	matched.TargetRate = 140
	p.setMatched(kindCentrifuge, matched)
	for _, d := range []time.Duration{60, 80, 95} {
		run := matched
		run.P99 = d * time.Millisecond
		p.MatchedRuns = append(p.MatchedRuns, run)
	}
	other := matched
	other.TargetRate, other.P99 = 190, time.Second // another peer's rate: not in the range
	p.MatchedRuns = append(p.MatchedRuns, other)
	if r = ratiosAt(p, 10*time.Microsecond); r.P99Matched != 0.4 || r.Unmatched != 0 {
		t.Fatalf("with the matched run: %.3f with %d unmatched, want 0.4 (80 ms over centrifuge's 200 ms)", r.P99Matched, r.Unmatched)
	}
	var out bytes.Buffer
	printCurveTable(&out, "t", []curvePoint{p}, 10*time.Microsecond)
	printTargets(&out, []curvePoint{p}, 10*time.Microsecond)
	if !regexp.MustCompile(`centrifuge\s+140\s+200ms\s+140\s+80ms \(60ms–95ms\)`).MatchString(out.String()) {
		t.Errorf("no row of the gateway at centrifuge's load:\n%s", out.String())
	}
	for _, want := range []string{"at the same load (each peer at the load it carried): 0.40× at 2000 clients, 200 changes/s  met",
		"whatever its load: 1.50× at 2000 clients, 200 changes/s  NOT MET"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPeersHeldBack: only peers more than 1 % below the rate asked count,
// the slowest first; rates within 1 % of a run share it.
func TestPeersHeldBack(t *testing.T) {
	p := curvePoint{Results: []runResult{
		result(kindGateway, 1, 1, 150, 0),
		result(kindNATS, 1, 1, 198.5, 0),
		result(kindCentrifuge, 1, 1, 150, 0),
	}}
	got := peersHeldBack(p)
	if len(got) != 1 || got[0].System != kindCentrifuge {
		t.Fatalf("held back %+v, want centrifuge alone (nats is within 1 %%, the gateway is not a peer)", got)
	}
	run := runResult{TargetRate: 150}
	if _, ok := nearRate([]runResult{run}, 151); !ok {
		t.Error("151 changes/s does not share the run at 150")
	}
	if _, ok := nearRate([]runResult{run}, 153); ok {
		t.Error("153 changes/s shares the run at 150")
	}
}

// TestMedianRuns: with several runs each system is shown by its run of
// median p99 (the lower middle one of an even count), in the order the
// systems ran, with the range of its p99s.
func TestMedianRuns(t *testing.T) {
	ms := func(sys string, n int) runResult {
		return result(sys, int64(n), int64(n), 200, time.Duration(n)*time.Millisecond)
	}
	p := curvePoint{Clients: 500, Rate: 200, Runs: []runResult{
		ms(kindGateway, 3), ms(kindNATS, 5), ms(kindGateway, 1), ms(kindNATS, 4), ms(kindGateway, 2)}}
	p.Results = medianRuns(p.Runs)
	if len(p.Results) != 2 || p.Results[0].System != kindGateway || p.Results[0].P99 != 2*time.Millisecond ||
		p.Results[1].System != kindNATS || p.Results[1].P99 != 4*time.Millisecond {
		t.Fatalf("median runs %+v, want the gateway's of 2 ms, then nats's of 4 ms", p.Results)
	}
	if lo, hi, ok := p99Range(p.Runs, kindGateway); !ok || lo != time.Millisecond || hi != 3*time.Millisecond {
		t.Errorf("gateway range %s-%s (%v), want 1ms-3ms", lo, hi, ok)
	}
	if _, _, ok := p99Range(p.Runs[:1], kindGateway); ok {
		t.Error("a range out of one run")
	}
	var out bytes.Buffer
	printCurveTable(&out, "t", []curvePoint{p}, 10*time.Microsecond)
	for _, want := range []string{"2.00ms (1.00ms–3.00ms)", "4.00ms (4.00ms–5.00ms)", "0.50"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	var o curveOpts
	fs := flag.NewFlagSet("curve", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse([]string{"--repeat", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "repeat") {
		t.Errorf("--repeat 0 gave %v, want it refused", err)
	}
}

// TestMedianCPU: with several runs the CPU ratio is the median of the
// gateway's runs' ratios, not that of its run of median p99; with one run
// it is that run's.
func TestMedianCPU(t *testing.T) {
	run := func(p99 time.Duration, cpuPerDelivery time.Duration) runResult {
		r := result(kindGateway, 1000, 1000, 200, p99)
		r.CPU, r.Stages = 1000*cpuPerDelivery, &stages{Writes: 500, Frames: 500}
		return r
	}
	p := curvePoint{Clients: 500, Rate: 200, Runs: []runResult{
		run(2*time.Millisecond, 25*time.Microsecond), // median p99, highest CPU
		run(time.Millisecond, 19*time.Microsecond),
		run(3*time.Millisecond, 20*time.Microsecond),
		result(kindNATS, 1000, 1000, 200, 9*time.Millisecond),
	}}
	p.Results = medianRuns(p.Runs)
	if r := ratiosAt(p, 10*time.Microsecond); r.CPU != 2 || r.Limit != 10*time.Microsecond {
		t.Errorf("CPU ratio %.2f (limit %s), want the median 2.00 (10µs), not the shown run's 2.50", r.CPU, r.Limit)
	}
	one := curvePoint{Results: []runResult{p.Runs[0], p.Runs[3]}}
	if r := ratiosAt(one, 10*time.Microsecond); r.CPU != 2.5 {
		t.Errorf("one run: CPU ratio %.2f, want its own 2.50", r.CPU)
	}
}
