package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sisbridge/sisbridge/internal/process"
)

// soakProc is a sisbridge process the soak runs, restarts and watches
// through its /metrics and /readyz.
type soakProc struct {
	*process.Process
	metrics string // host:port of /metrics and /readyz
	url     string // a gateway's WebSocket URL
}

// procSample is what a process's /metrics says of it.
type procSample struct {
	Up         bool    `json:"up"`
	RSS        float64 `json:"rss"`
	Goroutines float64 `json:"goroutines"`
	OpenFiles  float64 `json:"openFiles"`
	// Extra holds the metrics sampleProc was asked for.
	Extra map[string]float64 `json:"extra,omitempty"`
}

// sample reads the process's metrics; Up is false when it does not answer.
func (p *soakProc) sample(ctx context.Context, extra ...string) procSample {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	code, body, err := process.Get(ctx, "http://"+p.metrics+"/metrics")
	if err != nil || code != http.StatusOK {
		return procSample{}
	}
	vals := metricValues(strings.NewReader(body), append(extra, "process_resident_memory_bytes", "go_goroutines", "process_open_fds")...)
	s := procSample{Up: true, RSS: vals["process_resident_memory_bytes"], Goroutines: vals["go_goroutines"], OpenFiles: vals["process_open_fds"], Extra: map[string]float64{}}
	for _, name := range extra {
		s.Extra[name] = vals[name]
	}
	return s
}

// metricValues returns the values of the unlabelled metrics named, from a
// Prometheus text exposition.
func metricValues(body io.Reader, names ...string) map[string]float64 {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}
