// Package subjects is the bus contract of SIS Bridge: every NATS subject,
// stream, bucket and key name with its builder, the configuration of each
// stream and bucket, and the msgpack schema of what travels on them. Nothing
// else in the project spells a subject; downstream Go services import this
// package to read the bus.
//
// Layout:
//
//	stream SIS_EVENTS       sis.v1.evt.<tenantID>.<groupID>   one Event per router change
//	republished             sis.v1.live.<tenantID>.<groupID>  each event once stored, for core subscribers
//	object SIS_SNAPSHOTS    <tenantID>.<groupID>              a group's queue at a known Seq
//	kv     SIS_DIRECTORY    tenant.<tenantID>, group.<groupID>
//	kv     SIS_ROUTER       status                            RouterStatus, refreshed every second
//	kv     SIS_USERS        base64url(<logonID>)              gateway users (host administrators)
//	kv     SIS_SEATS        <seatID>                          license seat leases
//	kv     SIS_LEASE        adapter                           the active router adapter's lease
package subjects

import (
	"fmt"
	"strings"
)

// Names of the streams and buckets.
const (
	// StreamEvents keeps every router change of every group.
	StreamEvents = "SIS_EVENTS"
	// BucketSnapshots is the object store of group snapshots. An object store,
	// not a key-value bucket: a deep queue's snapshot outgrows a NATS message.
	BucketSnapshots = "SIS_SNAPSHOTS"
	// BucketDirectory holds tenants and service groups.
	BucketDirectory = "SIS_DIRECTORY"
	// BucketRouter holds the router status.
	BucketRouter = "SIS_ROUTER"
	// BucketUsers holds the gateway's users.
	BucketUsers = "SIS_USERS"
	// BucketSeats holds the license seat leases.
	BucketSeats = "SIS_SEATS"
	// BucketLease holds the active router adapter's lease (LeaseKey): one
	// adapter writes to the bus at a time, the others stand by.
	BucketLease = "SIS_LEASE"
)

const (
	eventsPrefix = "sis.v1.evt."
	livePrefix   = "sis.v1.live."
	// AllEvents matches the events of every group.
	AllEvents = eventsPrefix + ">"
	// AllLive matches the republished events of every group.
	AllLive = livePrefix + ">"
	// RouterStatusKey is the key of the router status in BucketRouter.
	RouterStatusKey = "status"
	// LeaseKey is the key of the adapter lease in BucketLease.
	LeaseKey        = "adapter"
	tenantKeyPrefix = "tenant."
	groupKeyPrefix  = "group."
	// removedKeyPrefix keys the groups removed from the directory: their
	// history stays, and a group added again goes on after it.
	removedKeyPrefix = "removed."
)

// Events returns the subject of a group's events.
func Events(tenant, group string) string { return eventsPrefix + tenant + "." + group }

// Live returns the subject on which the events stream republishes each
// event of a group once it is stored: what a core NATS subscriber follows.
// A message there carries the headers Nats-Sequence (its stream sequence)
// and Nats-Last-Sequence (the stream sequence of the group's previous
// event), and the event's own Seq: a missed message shows as a gap.
// Only stored events are republished: a publish the stream refused (a
// duplicate, a fenced or a failed write) never appears there.
func Live(tenant, group string) string { return livePrefix + tenant + "." + group }

// ParseLive splits a live subject into its tenant and group.
func ParseLive(subject string) (tenant, group string, ok bool) {
	return parseGroupSubject(livePrefix, subject)
}

// TenantEvents returns the subject matching every group of one tenant: what a
// NATS permission for a tenant's downstream service allows.
func TenantEvents(tenant string) string { return eventsPrefix + tenant + ".>" }

// ParseEvents splits an events subject into its tenant and group.
func ParseEvents(subject string) (tenant, group string, ok bool) {
	return parseGroupSubject(eventsPrefix, subject)
}

func parseGroupSubject(prefix, subject string) (tenant, group string, ok bool) {
	rest, found := strings.CutPrefix(subject, prefix)
	if !found {
		return "", "", false
	}
	tenant, group, found = strings.Cut(rest, ".")
	if !found || !ValidID(tenant) || !ValidID(group) {
		return "", "", false
	}
	return tenant, group, true
}

// SnapshotName returns the object name of a group's snapshot.
func SnapshotName(tenant, group string) string { return tenant + "." + group }

// TenantKey returns the directory key of a tenant.
func TenantKey(tenant string) string { return tenantKeyPrefix + tenant }

// GroupKey returns the directory key of a service group. Group IDs are
// unique across tenants, as the protocol's Subscribe by ID requires.
func GroupKey(group string) string { return groupKeyPrefix + group }

// RemovedKey returns the directory key of a group removed from the
// directory (its entry under GroupKey is deleted): the adapter keeps it so
// that the group's sequence goes on if it is added again.
func RemovedKey(group string) string { return removedKeyPrefix + group }

// ParseDirectoryKey reports whether key names a tenant, a group or a
// removed group ("tenant", "group", "removed"), and which.
func ParseDirectoryKey(key string) (kind, id string, ok bool) {
	if id, ok := strings.CutPrefix(key, tenantKeyPrefix); ok {
		return "tenant", id, true
	}
	if id, ok := strings.CutPrefix(key, groupKeyPrefix); ok {
		return "group", id, true
	}
	if id, ok := strings.CutPrefix(key, removedKeyPrefix); ok {
		return "removed", id, true
	}
	return "", "", false
}

// MsgID returns the Nats-Msg-Id of a group's message whose first event is
// seq, written by the adapter instance writer: the stream stores a retried
// publish once. The writer keeps a restarted adapter, which may number
// events again from a shorter history, from being taken for a retry.
func MsgID(writer, tenant, group string, seq uint64) string {
	return fmt.Sprintf("%s.%s:%d@%s", tenant, group, seq, writer)
}

// ValidID reports whether s is a well-formed ServiceGroupID, TenantID or
// CallID: 1 to 64 characters from [A-Za-z0-9_-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckID returns an error naming what is wrong with an identifier.
func CheckID(kind, s string) error {
	if ValidID(s) {
		return nil
	}
	return fmt.Errorf("%w: %s %q: want 1 to 64 characters from [A-Za-z0-9_-]", ErrMalformedID, kind, s)
}
