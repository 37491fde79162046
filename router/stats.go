package router

import (
	"errors"
	"sync/atomic"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Stats is a snapshot of the adapter's counters.
type Stats struct {
	// Accepted counts changes applied to the state; Rejected those refused,
	// RejectedBy those by reason (see RejectReasons).
	Accepted, Rejected uint64
	RejectedBy         map[string]uint64
	// Published counts changes stored in JetStream, in Messages messages
	// (several changes of a group share one while publishing has a backlog);
	// Retries counts the publishes retried; Lost the changes abandoned by an
	// aborted Close or a failure.
	Published, Messages, Retries, Lost uint64
	// Snapshots counts snapshots stored; SnapshotErrors those that failed.
	Snapshots, SnapshotErrors uint64
	// Groups is how many service groups the adapter holds; Queued how many
	// sessions wait in all of them.
	Groups, Queued int64
}

// RejectReasons names why changes are rejected, as Stats.RejectedBy and
// the metrics count them: a malformed identifier or change, a call queued
// twice or not queued, an impossible position, a group the directory does
// not hold, and anything else.
var RejectReasons = []string{"malformed_id", "invalid", "duplicate_call", "unknown_call", "position", "unknown_group", "other"}

var rejectCauses = []error{subjects.ErrMalformedID, queue.ErrInvalid, queue.ErrDuplicateCall, queue.ErrUnknownCall, queue.ErrPosition, ErrUnknownGroup}

// rejectReason is the index in RejectReasons of err's reason.
func rejectReason(err error) int {
	for i, cause := range rejectCauses {
		if errors.Is(err, cause) {
			return i
		}
	}
	return len(RejectReasons) - 1
}

type counters struct {
	accepted, rejected, published, messages, retries, lost, snapshots, snapshotErrors atomic.Uint64
	rejectedBy                                                                        [7]atomic.Uint64
	groups, queued                                                                    atomic.Int64
}

func (c *counters) reject(err error) {
	c.rejected.Add(1)
	c.rejectedBy[rejectReason(err)].Add(1)
}

// Stats returns the adapter's counters. It never waits for the adapter.
func (a *Adapter) Stats() Stats {
	s := &a.stats
	by := make(map[string]uint64, len(RejectReasons))
	for i, r := range RejectReasons {
		by[r] = s.rejectedBy[i].Load()
	}
	return Stats{Accepted: s.accepted.Load(), Rejected: s.rejected.Load(), RejectedBy: by, Published: s.published.Load(),
		Messages: s.messages.Load(), Retries: s.retries.Load(), Lost: s.lost.Load(), Snapshots: s.snapshots.Load(),
		SnapshotErrors: s.snapshotErrors.Load(), Groups: s.groups.Load(), Queued: s.queued.Load()}
}

// Depth returns how many groups the adapter holds and how many sessions
// are queued in all of them. It never waits for the adapter.
func (a *Adapter) Depth() (groups, sessions int) {
	return int(a.stats.groups.Load()), int(a.stats.queued.Load())
}
