package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
)

// liveProbe tracks one enqueue in each group with InitialDataComplete:
// when the adapter accepted it and when the client got an event of that
// group after it (nanoseconds since the probe's start; 0: not yet).
type liveProbe struct {
	start   time.Time
	applied []atomic.Int64 // by group number
	arrived []atomic.Int64
	live    atomic.Int64
}

// probeResult says how many followed groups deliver a live change.
type probeResult struct {
	// Wait is how long the probe waited; Probed how many groups it changed;
	// Live how many of them delivered the change in time, after P50 and
	// Max (from each change to its event).
	Wait   time.Duration `json:"waitNs"`
	Probed int           `json:"probed"`
	Live   int64         `json:"live"`
	P50    time.Duration `json:"p50Ns"`
	Max    time.Duration `json:"maxNs"`
}

// onEvent notes the first event of a probed group after its change.
func (p *liveProbe) onEvent(i int, m protocol.Message) {
	if m.Event != protocol.EventSessionsUpdated || p.applied[i].Load() == 0 {
		return
	}
	if p.arrived[i].CompareAndSwap(0, max(int64(time.Since(p.start)), 1)) {
		p.live.Add(1)
	}
}

// probeLive applies one enqueue to every group whose InitialDataComplete
// came and waits up to wait for the client to get each; the router is no
// longer idle from here on. It is skipped when a client was closed.
func probeLive(ctx context.Context, st *stack, t *groupsTally, wait time.Duration, stderr io.Writer) (probeResult, error) {
	r := probeResult{Wait: wait}
	if t.closed.Load() > 0 {
		fmt.Fprintf(stderr, "[groups] live check skipped: the gateway closed a client\n")
		return r, nil
	}
	p := &liveProbe{start: time.Now(), applied: make([]atomic.Int64, len(t.seen)), arrived: make([]atomic.Int64, len(t.seen))}
	t.probe.Store(p)
	for i := range t.seen {
		if !t.seen[i].Load() {
			continue
		}
		p.applied[i].Store(max(int64(time.Since(p.start)), 1))
		if err := st.driver.enqueue(ctx, i); err != nil {
			return r, err
		}
		r.Probed++
	}
	fmt.Fprintf(stderr, "[groups] live check: one enqueue applied in each of %d groups\n", r.Probed)
	_ = waitUntil(ctx, wait, func() bool { return p.live.Load() == int64(r.Probed) })
	r.Live = p.live.Load()
	var lat []time.Duration
	for i := range p.arrived {
		if a := p.arrived[i].Load(); a > 0 {
			lat = append(lat, time.Duration(a-p.applied[i].Load()))
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.Max = lat[len(lat)/2], lat[len(lat)-1]
	}
	return r, nil
}

// printProbe says what the live check found.
func printProbe(w io.Writer, r probeResult) {
	if r.Probed == 0 {
		return
	}
	fmt.Fprintf(w, "live check after the idle window: one enqueue in each of the %d groups with InitialDataComplete reached the client within %s in %d (median %s, slowest %s); in %d it did not\n",
		r.Probed, r.Wait, r.Live, ms(r.P50), ms(r.Max), int64(r.Probed)-r.Live)
}
