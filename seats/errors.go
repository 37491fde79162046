package seats

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors of the seat pool. Each is wrapped with context; test with
// errors.Is.
var (
	// ErrNoSeat: every seat of the license is held, cluster-wide. Acquire
	// returns it when its picture of the bucket says every slot is taken
	// (checked with at most two Create attempts per 100 ms per pool, see
	// docs/seats.md), or when 32 slots it tried were taken under it. The
	// gateway answers Initialize with NoLicenseFault.
	ErrNoSeat = errors.New("no license seat free")
	// ErrClosed: the pool is closed (Close was called): it grants no seat.
	ErrClosed = errors.New("seat pool closed")
	// ErrBucket: the seat bucket cannot hold leases as this pool needs: it
	// has no TTL, a TTL other than Config.LeaseTTL, no LimitMarkerTTL, or a
	// history other than 1.
	// Create it with BucketConfig. The pool grants no seat until it is
	// restarted against a correct bucket.
	ErrBucket = errors.New("seat bucket misconfigured")
)

// conflict reports whether err says that a compare-and-set on a key lost:
// the key exists (Create) or moved past the expected revision (Update,
// Delete, Purge). Stream CAS conflicts come as code 10071 on R1 and 10164 on
// replicated streams, and kv.Create returns the raw API error when it loses
// the race to re-create a deleted key, so the codes are checked as well as
// the KV sentinels.
func conflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}
