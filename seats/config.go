package seats

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
)

// DefaultLeaseTTL is the default Config.LeaseTTL and the TTL BucketConfig
// gives the bucket.
const DefaultLeaseTTL = 30 * time.Second

// MaxSeats bounds Config.Seats: the pool keeps a few words per seat.
const MaxSeats = 1 << 20

// BucketConfig is the configuration of the seat bucket subjects.BucketSeats
// with a lease time of DefaultLeaseTTL: subjects.Config.SeatsBucket, which
// subjects.Ensure also applies. Every gateway's Config.LeaseTTL must equal
// the bucket's TTL; a pool checks it when it starts (ErrBucket).
func BucketConfig(replicas int, memory bool) jetstream.KeyValueConfig {
	return subjects.Config{Replicas: replicas, Memory: memory, SeatLeaseTTL: DefaultLeaseTTL}.WithDefaults().SeatsBucket()
}

// Config sets up a Pool.
type Config struct {
	// Seats is the license count: how many seats all gateways together may
	// hold. Required; 0 means no seat can be had. Every gateway sharing the
	// bucket must use the same count (a slot at or past Seats is ignored).
	Seats int
	// Holder names this gateway instance in the leases it writes. Unique per
	// running pool. Default: "gw-" and 12 random hex digits.
	Holder string
	// LeaseTTL is how long the seats of a gateway that died stay taken: a
	// lease nobody renews runs out after LeaseTTL. It must equal the seat
	// bucket's TTL (BucketConfig). At least 1 s. Default DefaultLeaseTTL
	// (30 s).
	LeaseTTL time.Duration
	// RenewEvery is how often the pool rewrites the leases it holds. More
	// than 0 and at most LeaseTTL/2. Default LeaseTTL/3.
	RenewEvery time.Duration
	// OnLost, when set, is called with the session ID of a seat this pool
	// held and lost: the lease was deleted or taken by someone else, or the
	// pool could not renew it within LeaseTTL (NATS unreachable). The
	// gateway ends that session. It runs on one of the pool's goroutines:
	// it must return promptly and must not call Close. Optional.
	OnLost func(sessionID string)
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Holder == "" {
		c.Holder = randomHolder()
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = c.LeaseTTL / 3
	}
	return c
}

// Validate reports every problem of c at once. Call it on WithDefaults's
// result; New does.
func (c Config) Validate() error {
	var errs []error
	if c.Seats < 0 || c.Seats > MaxSeats {
		errs = append(errs, fmt.Errorf("seats %d: want 0 to %d", c.Seats, MaxSeats))
	}
	if c.Holder == "" || len(c.Holder) > 128 {
		errs = append(errs, fmt.Errorf("holder %q: want 1 to 128 bytes", c.Holder))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("lease TTL %s: want at least 1s", c.LeaseTTL))
	}
	if c.RenewEvery <= 0 || c.RenewEvery > c.LeaseTTL/2 {
		errs = append(errs, fmt.Errorf("renew every %s: want more than 0 and at most half the lease TTL (%s)", c.RenewEvery, c.LeaseTTL/2))
	}
	return errors.Join(errs...)
}

func randomHolder() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "gw-" + hex.EncodeToString(b[:])
}
