package subjects

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// SchemaVersion is the version of every message this package writes. A
// reader refuses another version (ErrVersion); fields added within a
// version are ignored by older readers.
const SchemaVersion = 1

// Event is one router change of one group, as stored on Events(tenant,
// group). Positions are not republished: the change says where its own
// session went, and the positions of the others follow (queue.Effect).
type Event struct {
	// Tenant and Group name the group.
	Tenant, Group string
	// Seq is the group's sequence number of this change: 1, 2, 3, ... with
	// no gap.
	Seq uint64
	// Time is when the adapter accepted the change.
	Time time.Time
	// RouterTime is the router's time when the adapter accepted the
	// change, for a router with a clock of its own (the simulator, a
	// capture played back); zero when it is Time. RouterAt reads it.
	RouterTime time.Time
	// Epoch is the router link epoch the change arrived in.
	Epoch uint64
	// Change is the change, resolved: Position is never 0 for an enqueue or
	// a move. A removal carries the removed session's MediaType and
	// TimeEnteredQueue in Change.Session (zero in events written before
	// they were), so that a removal's wait is known from the event alone.
	Change queue.Change
}

// RouterAt is the router's time of the change: RouterTime, or Time when
// the router has no clock of its own.
func (e *Event) RouterAt() time.Time {
	if e.RouterTime.IsZero() {
		return e.Time
	}
	return e.RouterTime
}

// Snapshot is a group's whole queue at a known Seq.
type Snapshot struct {
	// Tenant and Group name the group.
	Tenant, Group string
	// Seq is the group sequence number the snapshot reflects; the next event
	// has Seq+1.
	Seq uint64
	// StreamSeq is a stream sequence at or before the event with Seq: events
	// after the snapshot are found from StreamSeq+1 on. 0 when unknown.
	StreamSeq uint64
	// Time is when the snapshot was taken.
	Time time.Time
	// Sessions is the queue in order.
	Sessions []queue.Session
}

// Tenant is a directory entry for a tenant.
type Tenant struct {
	// TenantID identifies the tenant.
	TenantID string `msgpack:"id" json:"TenantID"`
	// Name is the tenant's display name.
	Name string `msgpack:"name" json:"Name"`
}

// Group is a directory entry for a service group.
type Group struct {
	// ServiceGroupID identifies the group, across tenants.
	ServiceGroupID string `msgpack:"id" json:"ServiceGroupID"`
	// TenantID is the tenant the group belongs to.
	TenantID string `msgpack:"tenant" json:"TenantID"`
	// Name is the group's name, unique within its tenant ignoring case.
	Name string `msgpack:"name" json:"ServiceGroupName"`
}

// RouterStatus is the state of the router link, refreshed by the adapter
// every second.
type RouterStatus struct {
	// Connected says whether the adapter has a live link to the router.
	Connected bool `msgpack:"connected"`
	// Epoch counts link-ups; it grows by one each time the link comes up.
	Epoch uint64 `msgpack:"epoch"`
	// Since is when the link last went up or down.
	Since time.Time `msgpack:"since"`
	// Updated is when the adapter wrote this status.
	Updated time.Time `msgpack:"updated"`
	// Adapter names the adapter instance that wrote it.
	Adapter string `msgpack:"adapter"`
	// Reason says why the link is down; empty when connected.
	Reason string `msgpack:"reason,omitempty"`
	// Clock is the router's clock when it is not the wall clock (the
	// simulator, a capture played back); nil for a real router.
	Clock *RouterClock `msgpack:"clock,omitempty"`
}

// Lease is the value of the adapter lease: who holds it.
type Lease struct {
	// Adapter names the holder (its --name); Instance tells two runs of
	// one name apart.
	Adapter  string `msgpack:"adapter"`
	Instance string `msgpack:"instance"`
	// Since is when the holder took the lease.
	Since time.Time `msgpack:"since"`
}

// RouterClock is a router's clock: its time when the status was written
// (Updated) and how many of its seconds pass per real second (0: it does
// not run at a steady rate, as a simulation at full speed).
type RouterClock struct {
	At   time.Time `msgpack:"at"`
	Rate float64   `msgpack:"rate"`
}

// RouterTime returns the router's time at wall-clock time wall: the wall
// clock itself without a Clock.
func (st RouterStatus) RouterTime(wall time.Time) time.Time {
	if st.Clock == nil {
		return wall
	}
	return st.Clock.At.Add(time.Duration(float64(wall.Sub(st.Updated)) * st.Clock.Rate))
}
