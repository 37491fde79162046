package main

import (
	"bytes"
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
