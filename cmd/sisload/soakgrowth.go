package main

import (
	"fmt"
	"slices"
)

// growthRule says when a series of samples kept growing.
type growthRule struct {
	what  string
	value func(procSample) float64
	// rel and abs: the last third's median must pass the first's by more
	// than rel of it plus abs.
	rel, abs float64
	unit     float64 // what a printed value is divided by
}

// growthRules are the rules of the soak: resident memory, goroutines and
// open files.
var growthRules = []growthRule{
	{what: "resident MiB", value: func(s procSample) float64 { return s.RSS }, rel: 0.25, abs: 32 << 20, unit: 1 << 20},
	{what: "goroutines", value: func(s procSample) float64 { return s.Goroutines }, rel: 0.25, abs: 50, unit: 1},
	{what: "open files", value: func(s procSample) float64 { return s.OpenFiles }, rel: 0.25, abs: 50, unit: 1},
}

// keptGrowing reports whether samples kept growing: split in thirds, each
// third's median is above the one before, and the last's passes the
// first's by more than rel of it plus abs. Fewer than 6 samples are not
// judged. It returns the first and last thirds' medians.
func keptGrowing(v []float64, rel, abs float64) (grew bool, first, last float64) {
	if len(v) < 6 {
		return false, 0, 0
	}
	n := len(v) / 3
	a, b, c := median(v[:n]), median(v[n:len(v)-n]), median(v[len(v)-n:])
	return a < b && b < c && c > a*(1+rel)+abs, a, c
}

// median returns the median of v (v is not changed).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// judgedProcs are the processes whose growth is judged: those never
// restarted (a restart resets what a leak would have grown).
func (r *soakRun) judgedProcs() []string {
	names := []string{r.st.router.Name}
	gws := r.st.gateways
	if r.o.restartEvery > 0 {
		gws = gws[:len(gws)-1]
	}
	for _, g := range gws {
		names = append(names, g.Name)
	}
	return names
}

// growth returns what kept growing after the warm-up, in the processes
// judged.
func (r *soakRun) growth() []string {
	var out []string
	for _, name := range r.judgedProcs() {
		for _, rule := range growthRules {
			var v []float64
			for _, row := range r.rows {
				if s := row.Procs[name]; s.Up && row.Elapsed >= r.o.warmup {
					v = append(v, rule.value(s))
				}
			}
			if grew, a, c := keptGrowing(v, rule.rel, rule.abs); grew {
				out = append(out, fmt.Sprintf("%s %s from %.0f to %.0f (medians of the first and last thirds after the warm-up)", name, rule.what, a/rule.unit, c/rule.unit))
			}
		}
	}
	return out
}
