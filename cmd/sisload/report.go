package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// systemLabel names a system in the tables.
func systemLabel(kind string) string {
	switch kind {
	case kindNATS:
		return "nats-ws"
	case kindCentrifuge:
		return "centrifuge"
	}
	return "gateway"
}

// printFanout prints the side-by-side table of a fanout run.
func printFanout(w io.Writer, o fanoutOpts, rs []runResult) {
	where := "clients in this process"
	if len(rs) > 0 && rs[0].ClientProcs > 0 {
		where = fmt.Sprintf("clients in %d child process(es)", rs[0].ClientProcs)
	}
	fmt.Fprintf(w, "\nfan-out: %d clients x %d of %d groups, target %.0f changes/s for %s, gateway format %s, coalesce %s (fixed rounds %v), centrifuge write delay %s, peers follow events %s, %s\n",
		o.clients, o.perClient, o.groups, o.rate, o.duration, o.format, o.coalesce, o.fixed, o.writeDelay(), o.peers, where)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tclients\tgroups/client\tchanges/s\tdeliveries/s\tdelivered\tp50\tp99\tp99.9\tmax\tclosed (4009)\tdrops\tlagging\tcpu\tcpu/wall\tothers\theap MiB\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d (%d)\t%d\t%d\t%s\t%.2f\t%s\t%s\t\n",
			systemLabel(r.System), r.Clients, r.GroupsPerClient, r.ChangesPerSec, r.DeliveriesPerSec, percent(r.Deliveries, r.Expected),
			ms(r.P50), ms(r.P99), ms(r.P999), ms(r.Max), r.Closed, r.Closed4009, r.Dropped+r.SlowConsumer+r.ServerSlow, r.Lagging,
			r.CPU.Round(10*time.Millisecond), r.CPU.Seconds()/r.Window.Seconds(), othersLabel(r), heapLabel(r))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "delivered: deliveries / (changes x subscribers of the changed group); drops: nats.go dropped + slow-consumer errors + server slow-consumer closes;")
	fmt.Fprintln(w, "cpu: process CPU time (user+system, every client included) from the driver's start to the end of the drain; cpu/wall: cores busy on average;")
	fmt.Fprintln(w, "others: cores busy on average with other processes of the machine (from /proc/stat) over the same window.")
	for _, r := range rs {
		if r.Stages != nil {
			fmt.Fprintf(w, "%s: %s\n", systemLabel(r.System), r.Stages)
		}
		if r.Untimed > 0 {
			fmt.Fprintf(w, "%s: %d deliveries could not be timed\n", systemLabel(r.System), r.Untimed)
		}
		if len(r.CloseCodes) > 0 {
			fmt.Fprintf(w, "%s: clients closed by close code (0: no close frame): %v\n", systemLabel(r.System), r.CloseCodes)
		}
		if r.Undecoded > 0 {
			fmt.Fprintf(w, "%s: %d bus messages could not be decoded\n", systemLabel(r.System), r.Undecoded)
		}
		if r.RouterDown > 0 {
			fmt.Fprintf(w, "%s: %d RouterDisconnected events: the gateway lost the router status and ended those sessions\n", systemLabel(r.System), r.RouterDown)
		}
	}
}

// othersLabel is the cores other processes kept busy, "-" when unknown.
func othersLabel(r runResult) string {
	if r.OtherCPU < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.OtherCPU.Seconds()/r.Window.Seconds())
}

// heapLabel is the heap column: this process, plus the client processes'.
func heapLabel(r runResult) string {
	if r.ClientProcs > 0 {
		return fmt.Sprintf("%.0f+%.0f", mib(r.Heap), mib(r.ClientHeap))
	}
	return fmt.Sprintf("%.0f", mib(r.Heap))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 1000:
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.2fs", v/1000)
}

func percent(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// writeJSON writes v, indented, to path; nothing when path is empty (no
// --json).
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
