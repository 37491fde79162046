package main

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// serverCPUPerDelivery is the serving process's CPU (NATS server,
// adapter, router driver and the system measured) per delivery; with the
// clients in this process, theirs too.
func serverCPUPerDelivery(r runResult) time.Duration {
	if r.Deliveries == 0 {
		return 0
	}
	return (r.CPU - r.ClientCPU) / time.Duration(r.Deliveries)
}

// clientCPUPerDelivery is the client processes' CPU per delivery (0 with
// the clients in the serving process).
func clientCPUPerDelivery(r runResult) time.Duration {
	if r.Deliveries == 0 {
		return 0
	}
	return r.ClientCPU / time.Duration(r.Deliveries)
}

// msgsPerWrite is what the gateway's metrics say a write carried; 0 for
// the other systems, which do not say.
func msgsPerWrite(r runResult) float64 {
	if r.Stages == nil || r.Stages.Writes == 0 {
		return 0
	}
	return r.Stages.Frames / r.Stages.Writes
}

// pointRatios compares the gateway at one point with the best peer: the
// peer delivering most for deliveries, the one with the lowest p99 for
// p99. ok is false without both the gateway and a peer.
type pointRatios struct {
	Deliveries, P99 float64
	// P99Same is the gateway's p99 over the lowest of the peers that
	// carried the full offered load too (a peer that held the router back
	// was measured at a lighter load); 0 when no peer did.
	P99Same float64
	// P99Matched is the gateway's p99 over each peer's at that peer's own
	// load, the worst over the peers (matchedRatio); Unmatched counts the
	// peers left out of it for want of a matched run.
	P99Matched float64
	Unmatched  int
	// CPU is the gateway's serving CPU per delivery over the floor's
	// limit (floor per write / messages per write), the median over its
	// runs; Limit that limit.
	CPU   float64
	Limit time.Duration
	// Full says the gateway carried the whole offered load: the rate
	// asked (within 1 %), every change to every subscriber. Deliveries
	// is then the ratio of offered loads, which the random driver varies
	// by about a percent between runs.
	Full bool
	ok   bool
}

// carriedAll says r delivered every change to every subscriber at the
// rate asked (within 1 %).
func carriedAll(r runResult) bool {
	return r.Expected > 0 && r.Deliveries >= r.Expected && r.ChangesPerSec >= 0.99*r.TargetRate
}

func ratiosAt(p curvePoint, floor time.Duration) pointRatios {
	var gw *runResult
	bestD, bestP99, sameP99 := 0.0, time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for i, r := range p.Results {
		if r.System == kindGateway {
			gw = &p.Results[i]
			continue
		}
		bestD = max(bestD, r.DeliveriesPerSec)
		bestP99 = min(bestP99, r.P99)
		if carriedAll(r) {
			sameP99 = min(sameP99, r.P99)
		}
	}
	if gw == nil || bestD == 0 {
		return pointRatios{}
	}
	out := pointRatios{Deliveries: gw.DeliveriesPerSec / bestD, P99: float64(gw.P99) / float64(max(bestP99, 1)), Full: carriedAll(*gw), ok: true}
	if sameP99 != math.MaxInt64 {
		out.P99Same = float64(gw.P99) / float64(max(sameP99, 1))
	}
	out.P99Matched, out.Unmatched = matchedRatio(p, *gw)
	out.CPU, out.Limit = medianCPU(p, *gw, floor)
	return out
}

// cpuRatio is r's serving CPU per delivery over the floor's limit for the
// messages per write it achieved, and that limit; 0, 0 without writes.
func cpuRatio(r runResult, floor time.Duration) (float64, time.Duration) {
	mpw := msgsPerWrite(r)
	if mpw == 0 {
		return 0, 0
	}
	limit := time.Duration(float64(floor) / mpw)
	return float64(serverCPUPerDelivery(r)) / float64(max(limit, 1)), limit
}

// medianCPU is the gateway's cpuRatio at p: its median over the gateway's
// runs when it ran more than once (the run shown is the one of median p99,
// not always the one of median CPU), else gw's.
func medianCPU(p curvePoint, gw runResult, floor time.Duration) (float64, time.Duration) {
	var runs []runResult
	for _, r := range p.Runs {
		if r.System == kindGateway && msgsPerWrite(r) > 0 {
			runs = append(runs, r)
		}
	}
	if len(runs) < 2 {
		return cpuRatio(gw, floor)
	}
	return cpuRatio(lowerMedian(runs, func(r runResult) float64 { c, _ := cpuRatio(r, floor); return c }), floor)
}

// printCurve prints both curves, each point's ratios and the targets.
func printCurve(w io.Writer, o curveOpts, res curveResult) {
	if o.from != "" {
		fmt.Fprintf(w, "\ncurve read from %s; floor %s per write\n", o.from, res.FloorPerWrite)
	} else {
		fmt.Fprintf(w, "\ncurve: %d of %d groups per client, gateway format %s, coalesce %s (fixed rounds %v), centrifuge write delay %s, peers follow events %s, %s per run, %d run(s) per point and system, clients in %s; floor %s per write\n",
			o.f.perClient, o.f.groups, o.f.format, o.f.coalesce, o.f.fixed, o.f.writeDelay(), o.f.peers, o.f.duration, o.repeat, procsLabel(o.f.procs), res.FloorPerWrite)
	}
	if len(res.ByClients) > 0 {
		printCurveTable(w, fmt.Sprintf("as clients grow, %.0f changes/s", res.ByClients[0].Rate), res.ByClients, res.FloorPerWrite)
	}
	if len(res.ByRate) > 0 {
		printCurveTable(w, fmt.Sprintf("as the change rate grows, %d clients", res.ByRate[0].Clients), res.ByRate, res.FloorPerWrite)
	}
	printTargets(w, append(append([]curvePoint{}, res.ByClients...), res.ByRate...), res.FloorPerWrite)
}

// printCurveTable prints one curve: a row per point and system, then the
// gateway's ratios at each point.
func printCurveTable(w io.Writer, title string, ps []curvePoint, floor time.Duration) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tchanges/s\tsystem\tdeliveries/s\tdelivered\tp50\tp99\tserver µs/delivery\tclient µs/delivery\tmsgs/write\tclosed\t")
	for _, p := range ps {
		for _, r := range p.Results {
			fmt.Fprintf(tw, "%d\t%.0f\t%s\t%.0f\t%s\t%s\t%s\t%.2f\t%.2f\t%s\t%d\t\n", p.Clients, r.ChangesPerSec, systemLabel(r.System),
				r.DeliveriesPerSec, percent(r.Deliveries, r.Expected), ms(r.P50), p99Label(p.Runs, r),
				us(serverCPUPerDelivery(r)), us(clientCPUPerDelivery(r)), mpwLabel(r), r.Closed)
		}
	}
	_ = tw.Flush()
	for _, p := range ps {
		if p.Failed != "" {
			fmt.Fprintf(w, "%d clients, %.0f changes/s: %s\n", p.Clients, p.Rate, p.Failed)
		}
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tchanges/s asked\tgateway deliveries/s ÷ best peer\tgateway p99 ÷ best peer\t÷ best peer at full load\t÷ each peer at its load\tgateway server µs/delivery ÷ limit (limit µs)\t")
	for _, p := range ps {
		if r := ratiosAt(p, floor); r.ok {
			fmt.Fprintf(tw, "%d\t%.0f\t%.2f%s\t%.2f\t%s\t%s\t%.2f (%.2f)\t\n", p.Clients, p.Rate, r.Deliveries, fullMark(r), r.P99, sameLabel(r), matchedLabel(r), r.CPU, us(r.Limit))
		}
	}
	_ = tw.Flush()
	printMatched(w, ps)
}

// matchedLabel is P99Matched, marked with the peers left out for want of
// a matched run.
func matchedLabel(r pointRatios) string {
	switch {
	case r.P99Matched == 0:
		return "-"
	case r.Unmatched > 0:
		return fmt.Sprintf("%.2f (%d peer unmatched)", r.P99Matched, r.Unmatched)
	}
	return fmt.Sprintf("%.2f", r.P99Matched)
}

// printTargets says, over every point, how the gateway stands against
// each target: the worst ratio and where.
func printTargets(w io.Writer, ps []curvePoint, floor time.Duration) {
	var worstD, worstP, worstS, worstM, worstC pointRatios
	var atD, atP, atS, atM, atC curvePoint
	worstD.Deliveries = math.Inf(1)
	for _, p := range ps {
		r := ratiosAt(p, floor)
		if !r.ok {
			continue
		}
		if r.Deliveries < worstD.Deliveries && !r.Full {
			worstD, atD = r, p
		}
		if r.P99 > worstP.P99 || !worstP.ok {
			worstP, atP = r, p
		}
		if r.P99Same > worstS.P99Same {
			worstS, atS = r, p
		}
		if r.P99Matched > worstM.P99Matched {
			worstM, atM = r, p
		}
		if r.CPU > worstC.CPU {
			worstC, atC = r, p
		}
	}
	if !worstP.ok {
		return
	}
	fmt.Fprintln(w, "\ntargets (worst point):")
	if math.IsInf(worstD.Deliveries, 1) {
		fmt.Fprintln(w, "  deliveries/s ≥ 1.0× the best peer: the gateway carried the full offered load at every point  met")
	} else {
		fmt.Fprintf(w, "  deliveries/s ≥ 1.0× the best peer: %.2f× at %s (of the points where the gateway fell short of the offered load)  %s\n", worstD.Deliveries, pointLabel(atD), verdict(worstD.Deliveries >= 1))
	}
	if worstM.P99Matched > 0 {
		fmt.Fprintf(w, "  p99 ≤ 0.5× the best peer's at the same load (each peer at the load it carried): %.2f× at %s  %s\n", worstM.P99Matched, pointLabel(atM), verdict(worstM.P99Matched <= 0.5))
	}
	fmt.Fprintf(w, "    the gateway's p99 over the lowest peer's at each point, whatever its load: %.2f× at %s  %s\n", worstP.P99, pointLabel(atP), verdict(worstP.P99 <= 0.5))
	if worstS.ok {
		fmt.Fprintf(w, "    counting only peers that carried the full load: %.2f× at %s  %s\n", worstS.P99Same, pointLabel(atS), verdict(worstS.P99Same <= 0.5))
	}
	fmt.Fprintf(w, "  server CPU per delivery ≤ 2× floor ÷ messages per write: %.2f× at %s  %s\n", worstC.CPU, pointLabel(atC), verdict(worstC.CPU <= 2))
}

// p99Label is r's p99, with the range of its system's p99s among runs
// when it ran more than once.
func p99Label(runs []runResult, r runResult) string {
	if lo, hi, ok := p99Range(runs, r.System); ok {
		return fmt.Sprintf("%s (%s–%s)", ms(r.P99), ms(lo), ms(hi))
	}
	return ms(r.P99)
}

// sameLabel is P99Same, "-" where no peer carried the full load.
func sameLabel(r pointRatios) string {
	if r.P99Same == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.P99Same)
}

// fullMark marks a ratio where the gateway carried the full offered load.
func fullMark(r pointRatios) string {
	if r.Full {
		return " (full load)"
	}
	return ""
}

func pointLabel(p curvePoint) string {
	return fmt.Sprintf("%d clients, %.0f changes/s", p.Clients, p.Rate)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// us is a duration in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// mpwLabel is the messages per write column: "-" where unknown.
func mpwLabel(r runResult) string {
	if m := msgsPerWrite(r); m > 0 {
		return fmt.Sprintf("%.2f", m)
	}
	return "-"
}
