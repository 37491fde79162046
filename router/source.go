// Package router is the router adapter: it keeps the authoritative queue
// state of every service group, validates each change a router source
// reports, and publishes every accepted change, snapshots, the directory and
// the router status onto NATS (package subjects). Sources (the simulator in
// router/sim, the NDJSON feed in router/feed, replay) implement Source.
package router

import (
	"context"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Source is a link to a router: it reports the router's directory, queues
// and every change of them.
type Source interface {
	// Run connects to the router and reports to h until ctx is cancelled,
	// then returns nil; it returns an error only when the source cannot go
	// on at all. Each time the link comes up it calls h.LinkUp, each time it
	// drops h.LinkDown; between the two it reports changes. A change h
	// rejects is the source's to log or answer; it does not stop Run.
	Run(ctx context.Context, h Handler) error
}

// Handler takes what a Source reports. The adapter implements it; its methods
// are safe for concurrent use and return once the report is applied to the
// adapter's state (publishing continues in the background).
type Handler interface {
	// LinkUp reports that the router link is up. A non-nil state is the
	// router's whole directory and queues: the adapter brings its own state
	// to match by publishing the difference as ordinary changes.
	LinkUp(ctx context.Context, state *State) error
	// LinkDown reports that the router link is lost, and why.
	LinkDown(ctx context.Context, reason string)
	// PutTenant adds or renames a tenant.
	PutTenant(ctx context.Context, t subjects.Tenant) error
	// PutGroup adds or renames a service group; its tenant must exist.
	PutGroup(ctx context.Context, g subjects.Group) error
	// RemoveGroup takes a service group out of the directory; its queued
	// sessions leave with ServiceGroupClosed.
	RemoveGroup(ctx context.Context, group string) error
	// Apply applies one change of a group's queue. A rejected change returns
	// an error wrapping a queue error (queue.ErrDuplicateCall, ...),
	// ErrUnknownGroup or subjects.ErrMalformedID, and changes nothing.
	Apply(ctx context.Context, group string, c queue.Change) error
	// Sync reports a group's whole queue; the adapter publishes the
	// difference from its own state as ordinary changes.
	Sync(ctx context.Context, group string, sessions []queue.Session) error
}

// Clock is implemented by a Source whose time is not the wall clock (a
// simulation, a capture played back faster): the adapter publishes it in
// the router status, so that clients measure waits by it, and checks times
// against it.
type Clock interface {
	// RouterClock returns the router's time now and how many of its
	// seconds pass per real second (0: not at a steady rate).
	RouterClock() (now time.Time, rate float64)
}

// State is a router's whole directory and queues.
type State struct {
	// Tenants lists every tenant.
	Tenants []subjects.Tenant
	// Groups lists every service group.
	Groups []subjects.Group
	// Queues holds each group's queue in order, by ServiceGroupID; a group
	// absent here has an empty queue.
	Queues map[string][]queue.Session
}
