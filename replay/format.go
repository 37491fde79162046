// Package replay captures SIS Bridge bus traffic to a file and plays a
// capture back as a router source.
//
// A capture is a versioned, append-only file of checksummed frames (see
// docs/replay.md for the byte layout): a header, the directory, the queue of
// every group when the capture starts (its base), then every change and
// router status change in order, and a trailer with counts and a hash of the
// final state of every group (StateHash). Recorder writes captures live from
// NATS or from JetStream history; Player is a router.Source that plays one
// into a router adapter; Inspect summarises one.
package replay

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Signature is the first 8 bytes of every capture; the format version byte
// follows it.
const Signature = "\x89SISCAP\n"

// FormatVersion is the version of the format this package writes and reads.
const FormatVersion = 1

// MaxFrameSize bounds the length a frame may declare (kind byte and body).
const MaxFrameSize = 64 << 20

// Kind is the type of a frame: its first payload byte.
type Kind byte

// The frame kinds.
const (
	// KindHeader is the first frame: a Header.
	KindHeader Kind = 'H'
	// KindDirectory lists tenants and groups: a Directory.
	KindDirectory Kind = 'D'
	// KindBase is a group's whole queue at a sequence number: a Base.
	KindBase Kind = 'B'
	// KindEvent is one change of a group: a subjects.Event.
	KindEvent Kind = 'E'
	// KindStatus is a change of the router status: a subjects.RouterStatus.
	KindStatus Kind = 'S'
	// KindTrailer is the last frame: a Trailer.
	KindTrailer Kind = 'T'
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindHeader:
		return "header"
	case KindDirectory:
		return "directory"
	case KindBase:
		return "base"
	case KindEvent:
		return "event"
	case KindStatus:
		return "status"
	case KindTrailer:
		return "trailer"
	}
	return "unknown"
}

func (k Kind) valid() bool { return k.String() != "unknown" }

// Header is the first frame of a capture.
type Header struct {
	// Created is when the file was started.
	Created time.Time `msgpack:"created" json:"created"`
	// Start is the capture's origin in bus time: the moment its bases
	// describe. Playback maps it to the moment playing starts.
	Start time.Time `msgpack:"start" json:"start"`
	// Source says where the capture comes from, e.g. "nats://127.0.0.1:4222
	// live" or "history nats://... stream seq 10..900".
	Source string `msgpack:"source" json:"source"`
	// Filter is what was recorded; empty means everything.
	Filter Filter `msgpack:"filter" json:"filter"`
	// Notes says anything a reader should know (history that was gone).
	Notes []string `msgpack:"notes,omitempty" json:"notes,omitempty"`
}

// Directory is the tenants and groups of the capture.
type Directory struct {
	// Tenants lists tenants.
	Tenants []subjects.Tenant `msgpack:"tenants" json:"tenants"`
	// Groups lists service groups.
	Groups []subjects.Group `msgpack:"groups" json:"groups"`
}

// Base is a group's whole queue at a sequence number: the state its later
// events apply to.
type Base struct {
	// Tenant and Group name the group.
	Tenant string `json:"tenant"`
	Group  string `json:"group"`
	// Seq is the group sequence number the queue reflects.
	Seq uint64 `json:"seq"`
	// Time is the bus time the base was taken.
	Time time.Time `json:"time"`
	// Sessions is the queue in order.
	Sessions []queue.Session `json:"sessions"`
}

// Counts counts what a capture holds.
type Counts struct {
	// Events counts changes; Enqueues, Moves and Removes split them by op.
	Events   uint64 `msgpack:"events" json:"events"`
	Enqueues uint64 `msgpack:"enqueues" json:"enqueues"`
	Moves    uint64 `msgpack:"moves" json:"moves"`
	Removes  uint64 `msgpack:"removes" json:"removes"`
	// Bases, Statuses and Directories count those frames.
	Bases       uint64 `msgpack:"bases" json:"bases"`
	Statuses    uint64 `msgpack:"statuses" json:"statuses"`
	Directories uint64 `msgpack:"directories" json:"directories"`
}

// Trailer is the last frame of a complete capture.
type Trailer struct {
	// Counts counts the frames before the trailer.
	Counts Counts `msgpack:"counts" json:"counts"`
	// First and Last are the bus times of the first and last change (zero
	// when there is none).
	First time.Time `msgpack:"first" json:"first"`
	Last  time.Time `msgpack:"last" json:"last"`
	// End is the bus time the capture ends.
	End time.Time `msgpack:"end" json:"end"`
	// Seqs is the final sequence number of every group.
	Seqs map[string]uint64 `msgpack:"seqs" json:"seqs"`
	// Sessions is how many sessions are queued at the end, in all groups.
	Sessions int `msgpack:"sessions" json:"sessions"`
	// Hash is StateHash of the final queues.
	Hash string `msgpack:"hash" json:"hash"`
	// Ended says why the capture ended: "stopped", "range end".
	Ended string `msgpack:"ended" json:"ended"`
}

// Span is a byte range of a capture that a reader skipped.
type Span struct {
	// From and To are byte offsets, To exclusive.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Reason says why the first frame of the span was refused.
	Reason string `json:"reason"`
}

// Filter selects tenants and groups. A change passes when its tenant is
// listed (or Tenants is empty) and its group is listed (or Groups is empty).
type Filter struct {
	// Tenants lists TenantIDs; empty means every tenant.
	Tenants []string `msgpack:"tenants,omitempty" json:"tenants,omitempty"`
	// Groups lists ServiceGroupIDs; empty means every group.
	Groups []string `msgpack:"groups,omitempty" json:"groups,omitempty"`
}

// Match reports whether the filter passes a group of a tenant.
func (f Filter) Match(tenant, group string) bool {
	return (len(f.Tenants) == 0 || contains(f.Tenants, tenant)) && (len(f.Groups) == 0 || contains(f.Groups, group))
}

// Empty reports whether the filter passes everything.
func (f Filter) Empty() bool { return len(f.Tenants) == 0 && len(f.Groups) == 0 }

// Validate checks every ID of the filter.
func (f Filter) Validate() error {
	for _, t := range f.Tenants {
		if err := subjects.CheckID("TenantID", t); err != nil {
			return err
		}
	}
	for _, g := range f.Groups {
		if err := subjects.CheckID("ServiceGroupID", g); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
