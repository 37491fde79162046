package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"text/tabwriter"
	"time"
)

// A peer that holds the router below the rate asked (its relay competes
// with the adapter for the machine) is measured at a lighter load than the
// gateway, which keeps the rate: its latency is not comparable with the
// gateway's at the same point. sisload curve therefore runs the gateway
// again, alone, at the rate each such peer carried ("matched runs"), and
// compares the p99s at equal load.

// heldBack says r kept the router more than 1 % below the rate asked.
func heldBack(r runResult) bool {
	return r.TargetRate > 0 && r.ChangesPerSec < 0.99*r.TargetRate
}

// matchTolerance is how far apart two carried rates may be and share one
// matched run.
const matchTolerance = 0.01

// runMatched runs the gateway alone (repeat times, keeping the run of
// median p99) at the rate each peer of p that held the router back
// carried, filling p.Matched by peer. A failed run is noted
// in p.Failed and leaves that peer unmatched; it returns an error only
// when ctx ends.
func runMatched(ctx context.Context, f fanoutOpts, p *curvePoint, repeat int, stderr io.Writer) error {
	f.only = kindGateway
	var runs []runResult
	for _, r := range peersHeldBack(*p) {
		if m, ok := nearRate(runs, r.ChangesPerSec); ok {
			p.setMatched(r.System, m)
			continue
		}
		fmt.Fprintf(stderr, "[curve] the gateway at %s's load: %d clients, %.0f changes/s\n", systemLabel(r.System), p.Clients, r.ChangesPerSec)
		sub, err := curveRun(ctx, f, p.Clients, r.ChangesPerSec, repeat, stderr)
		if err != nil {
			return err
		}
		if sub.Failed != "" || len(sub.Results) != 1 {
			why := cmp.Or(sub.Failed, fmt.Sprintf("%d results, want the gateway's", len(sub.Results)))
			p.Failed = joinFailure(p.Failed, fmt.Sprintf("the gateway at %s's load: %s", systemLabel(r.System), why))
			continue
		}
		runs = append(runs, sub.Results[0])
		p.MatchedRuns = append(p.MatchedRuns, sub.Runs...)
		p.setMatched(r.System, sub.Results[0])
	}
	return nil
}

// peersHeldBack lists the peers of p that held the router back, the
// slowest first.
func peersHeldBack(p curvePoint) []runResult {
	var out []runResult
	for _, r := range p.Results {
		if r.System != kindGateway && heldBack(r) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChangesPerSec < out[j].ChangesPerSec })
	return out
}

// nearRate finds a run asked for a rate within matchTolerance of rate.
func nearRate(runs []runResult, rate float64) (runResult, bool) {
	for _, r := range runs {
		if math.Abs(r.TargetRate-rate) <= matchTolerance*rate {
			return r, true
		}
	}
	return runResult{}, false
}

// setMatched records the gateway's run at peer's load.
func (p *curvePoint) setMatched(peer string, r runResult) {
	if p.Matched == nil {
		p.Matched = map[string]runResult{}
	}
	p.Matched[peer] = r
}

// joinFailure adds failure b to the failures a of a point.
func joinFailure(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// matchedRatio is the gateway's p99 over each peer's at that peer's own
// load, the worst over the peers: a peer that carried the full load is
// compared with the gateway's run at the point, one that held the router
// back with the gateway's matched run. missing counts the peers that held
// the router back without a matched run (a curve written before matched
// runs, or a run that failed); they are left out.
func matchedRatio(p curvePoint, gw runResult) (worst float64, missing int) {
	for _, r := range p.Results {
		if r.System == kindGateway {
			continue
		}
		at := gw
		if heldBack(r) {
			m, ok := p.Matched[r.System]
			if !ok {
				missing++
				continue
			}
			at = m
		}
		worst = max(worst, float64(at.P99)/float64(max(r.P99, 1)))
	}
	return worst, missing
}

// printMatched lists, under a curve's table, the peers that held the router
// back and the gateway at their loads.
func printMatched(w io.Writer, ps []curvePoint) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := false
	for _, p := range ps {
		for _, r := range peersHeldBack(p) {
			if !header {
				fmt.Fprintln(w, "\npeers that held the router back, and the gateway alone at the load they carried:")
				fmt.Fprintln(tw, "clients\tchanges/s asked\tpeer\tpeer changes/s\tpeer p99\tgateway changes/s\tgateway p99\tgateway p50\tgateway ÷ peer p99\t")
				header = true
			}
			m, ok := p.Matched[r.System]
			if !ok {
				fmt.Fprintf(tw, "%d\t%.0f\t%s\t%.0f\t%s\t-\t-\t-\t-\t\n", p.Clients, p.Rate, systemLabel(r.System), r.ChangesPerSec, ms(r.P99))
				continue
			}
			fmt.Fprintf(tw, "%d\t%.0f\t%s\t%.0f\t%s\t%.0f\t%s\t%s\t%.2f\t\n", p.Clients, p.Rate, systemLabel(r.System), r.ChangesPerSec, p99Label(p.Runs, r),
				m.ChangesPerSec, matchedP99Label(p, m), ms(m.P50), float64(m.P99)/float64(max(r.P99, time.Duration(1))))
		}
	}
	_ = tw.Flush()
}

// matchedP99Label is a matched run's p99, with the range of the p99s of
// the runs asked for the same rate when there were several.
func matchedP99Label(p curvePoint, m runResult) string {
	var same []runResult
	for _, r := range p.MatchedRuns {
		if r.TargetRate == m.TargetRate {
			same = append(same, r)
		}
	}
	return p99Label(same, m)
}
