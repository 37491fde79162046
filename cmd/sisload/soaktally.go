package main

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// soakTally counts what the soak's clients and oracle did and found.
type soakTally struct {
	// Client side.
	dials, dialFails, sessions, subscribes, unsubscribes atomic.Int64
	events, heartbeats, connected, routerDisconnects     atomic.Int64

	mu         sync.Mutex
	closes     map[int]int    // close code the gateway sent (0: none) → connections
	violations map[string]int // kind → count
	first      []string       // the first violations, in full
}

// soakFirstViolations is how many violations keep their message.
const soakFirstViolations = 20

func newSoakTally() *soakTally {
	return &soakTally{closes: map[int]int{}, violations: map[string]int{}}
}

// report records what the oracle found.
func (t *soakTally) report(kind, msg string) { t.violation(kind, "%s", msg) }

// violation records a broken promise of kind.
func (t *soakTally) violation(kind, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.violations[kind]++
	if len(t.first) < soakFirstViolations {
		t.first = append(t.first, kind+": "+fmt.Sprintf(format, args...))
	}
}

// closed records how a connection the gateway ended was closed.
func (t *soakTally) closed(code int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closes[code]++
}

// violationCount returns how many violations were found.
func (t *soakTally) violationCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.violations {
		n += c
	}
	return n
}

// closeSummary lists the close codes seen, e.g. "1001×3 4009×12".
func (t *soakTally) closeSummary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := ""
	for _, code := range slices.Sorted(maps.Keys(t.closes)) {
		out += fmt.Sprintf(" %d×%d", code, t.closes[code])
	}
	if out == "" {
		return "none"
	}
	return out[1:]
}

// findings returns the violations by kind and the first in full.
func (t *soakTally) findings() (map[string]int, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.violations), slices.Clone(t.first)
}
