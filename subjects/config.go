package subjects

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Config sets how the streams and buckets are stored. The zero value, after
// defaults, suits one machine.
type Config struct {
	// Replicas is the JetStream replica count of every stream and bucket
	// (1, 3 or 5). Default 1.
	Replicas int
	// Memory keeps everything in memory instead of files. Default false: file
	// storage.
	Memory bool
	// EventRetention is how long events are kept. Default 24 h.
	EventRetention time.Duration
	// DuplicateWindow is how long the events stream remembers a Nats-Msg-Id
	// to drop a repeated publish. Default 2 min.
	DuplicateWindow time.Duration
	// MaxEventBytes caps the size of the events stream; the oldest events go
	// first. Default 0: no cap besides EventRetention.
	MaxEventBytes int64
	// SeatLeaseTTL is how long a license seat lease lives unless its holder
	// renews it: how long a crashed gateway's seats stay taken. Default 30 s.
	SeatLeaseTTL time.Duration
	// AdapterLeaseTTL is how long the active router adapter's lease lives
	// unless it renews it: how soon a standby takes over from an adapter
	// that died or stalled. Default 3 s.
	AdapterLeaseTTL time.Duration
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.EventRetention == 0 {
		c.EventRetention = 24 * time.Hour
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.SeatLeaseTTL == 0 {
		c.SeatLeaseTTL = 30 * time.Second
	}
	if c.AdapterLeaseTTL == 0 {
		c.AdapterLeaseTTL = 3 * time.Second
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1, 3 or 5", c.Replicas))
	}
	if c.EventRetention < time.Minute {
		errs = append(errs, fmt.Errorf("event retention %s: want at least 1m", c.EventRetention))
	}
	if c.DuplicateWindow <= 0 || c.DuplicateWindow > c.EventRetention {
		errs = append(errs, fmt.Errorf("duplicate window %s: want more than 0 and at most the retention", c.DuplicateWindow))
	}
	if c.SeatLeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("seat lease TTL %s: want at least 1s", c.SeatLeaseTTL))
	}
	if c.AdapterLeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("adapter lease TTL %s: want at least 1s", c.AdapterLeaseTTL))
	}
	if c.MaxEventBytes < 0 {
		errs = append(errs, fmt.Errorf("max event bytes %d: want 0 (no cap) or more", c.MaxEventBytes))
	}
	return errors.Join(errs...)
}

func (c Config) storage() jetstream.StorageType {
	if c.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// EventsStream is the configuration of StreamEvents.
func (c Config) EventsStream() jetstream.StreamConfig {
	maxBytes := c.MaxEventBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        StreamEvents,
		Description: "SIS Bridge router changes, one subject per service group",
		Subjects:    []string{AllEvents},
		Storage:     c.storage(),
		Replicas:    c.Replicas,
		MaxAge:      c.EventRetention,
		MaxBytes:    maxBytes,
		Duplicates:  c.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
		RePublish:   &jetstream.RePublish{Source: AllEvents, Destination: AllLive},
	}
}

// SnapshotStore is the configuration of BucketSnapshots.
func (c Config) SnapshotStore() jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      BucketSnapshots,
		Description: "SIS Bridge group snapshots",
		Storage:     c.storage(),
		Replicas:    c.Replicas,
	}
}

// DirectoryBucket is the configuration of BucketDirectory.
func (c Config) DirectoryBucket() jetstream.KeyValueConfig {
	return c.kv(BucketDirectory, "SIS Bridge tenants and service groups")
}

// RouterBucket is the configuration of BucketRouter. It is kept in memory
// whatever the Config says: the status is rewritten every second, and so
// can still say that the file store refuses writes when it is full.
func (c Config) RouterBucket() jetstream.KeyValueConfig {
	kv := c.kv(BucketRouter, "SIS Bridge router status")
	kv.Storage = jetstream.MemoryStorage
	return kv
}

// UsersBucket is the configuration of BucketUsers.
func (c Config) UsersBucket() jetstream.KeyValueConfig {
	return c.kv(BucketUsers, "SIS Bridge gateway users")
}

// SeatsBucket is the configuration of BucketSeats. Its TTL is the lease
// time: a holder rewrites each lease (revision-checked) well within it, and
// the server drops a lease nobody rewrote, leaving a marker (LimitMarkerTTL)
// that every gateway's watch sees. Per-key TTLs would not do: only Create
// sets one, and a rewrite drops it.
func (c Config) SeatsBucket() jetstream.KeyValueConfig {
	kv := c.kv(BucketSeats, "SIS Bridge license seat leases")
	kv.TTL = c.SeatLeaseTTL
	kv.LimitMarkerTTL = time.Minute
	return kv
}

// LeaseBucket is the configuration of BucketLease: in memory (a lease
// outlives no cluster restart), its TTL the lease time. The active adapter
// rewrites its lease (revision-checked) well within it; one nobody rewrote
// is dropped by the server, and a standby's Create then succeeds.
func (c Config) LeaseBucket() jetstream.KeyValueConfig {
	kv := c.kv(BucketLease, "SIS Bridge active router adapter lease")
	kv.Storage = jetstream.MemoryStorage
	kv.TTL = c.AdapterLeaseTTL
	return kv
}

func (c Config) kv(name, desc string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: name, Description: desc, Storage: c.storage(), Replicas: c.Replicas, History: 1}
}

// Ensure creates or updates every stream and bucket of the bus. Each
// request is bounded (2 s, then 4, 8, 16) and made again, 4 times in all,
// when it went unanswered: a cluster electing its JetStream leader drops
// API requests rather than answering them.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("bus config: %w", err)
	}
	err := patient(ctx, func(ctx context.Context) error { return ensureStream(ctx, js, c.EventsStream()) })
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamEvents, err)
	}
	if err := patient(ctx, func(ctx context.Context) error { return ensureObjects(ctx, js, c.SnapshotStore()) }); err != nil {
		return fmt.Errorf("ensure object store %s: %w", BucketSnapshots, err)
	}
	for _, kv := range []jetstream.KeyValueConfig{c.DirectoryBucket(), c.UsersBucket(), c.SeatsBucket()} {
		if err := patient(ctx, func(ctx context.Context) error { return ensureKV(ctx, js, kv) }); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kv.Bucket, err)
		}
	}
	for _, kv := range []jetstream.KeyValueConfig{c.RouterBucket(), c.LeaseBucket()} {
		if err := patient(ctx, func(ctx context.Context) error { return ensureTransient(ctx, js, kv) }); err != nil {
			return err
		}
	}
	return nil
}

// ensureTimeouts bound the attempts of one request of Ensure. A forming
// cluster loses a request now and then (it is answered in milliseconds or
// never), so the first attempts are short; a busy server may take a few
// seconds to create a replicated stream, and the later ones are long (a
// request made again finds what the earlier one created).
var ensureTimeouts = []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}

// patient runs an idempotent request to the JetStream API, each attempt
// bounded by the next of ensureTimeouts, again when it went unanswered
// while ctx still runs.
func patient(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for _, d := range ensureTimeouts {
		if err = bounded(ctx, d, fn); !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// ensureTransient creates or updates a bucket whose content is rewritten
// all the time, so that it may be dropped: one stored otherwise (by an
// older version, which kept the router status on file) is made anew.
func ensureTransient(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValueConfig) error {
	if old, err := js.KeyValue(ctx, kv.Bucket); err == nil {
		st, err := old.Status(ctx)
		if err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kv.Bucket, err)
		}
		if b, ok := st.(*jetstream.KeyValueBucketStatus); ok && b.StreamInfo().Config.Storage != kv.Storage {
			if err := js.DeleteKeyValue(ctx, kv.Bucket); err != nil {
				return fmt.Errorf("ensure bucket %s: drop its old storage: %w", kv.Bucket, err)
			}
		}
	}
	if err := ensureKV(ctx, js, kv); err != nil {
		return fmt.Errorf("ensure bucket %s: %w", kv.Bucket, err)
	}
	return nil
}
