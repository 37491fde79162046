package router

import (
	"errors"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/subjects"
)

// Config tunes the adapter. The zero value, after WithDefaults, suits one
// machine.
type Config struct {
	// Bus is how the streams and buckets are stored; see subjects.Config.
	Bus subjects.Config
	// Name identifies this adapter instance in the router status. Default
	// "adapter".
	Name string
	// TakeOver starts the adapter even while another one keeps the router
	// status current (replay play --take-over). Default false: Open refuses
	// with ErrAdapterLive.
	TakeOver bool
	// SnapshotEvery writes a group's snapshot after this many changes.
	// Default 5000.
	SnapshotEvery uint64
	// SnapshotInterval writes a snapshot of every group that changed since
	// its last one, this often. Default 5 s.
	SnapshotInterval time.Duration
	// StatusInterval is how often the router status is refreshed. Default
	// 1 s; gateways treat 3 s of silence as a lost router.
	StatusInterval time.Duration
	// Window is how many publishes may await their acknowledgement. It must
	// stay below the JetStream context's async max pending (nats.go default
	// 4000). Default 2048.
	Window int
	// AckTimeout is how long a publish may await its acknowledgement,
	// counted from its sending, before it is retried. Default 5 s.
	AckTimeout time.Duration
	// ClockSkew is how far a TimeEnteredQueue may lie ahead of the router's
	// clock (the source's Clock, else this machine's): two machines' clocks
	// differ a little; a time further ahead is refused. Default 5 min.
	ClockSkew time.Duration
	// MaxBatch is how many consecutive changes of one group one message may
	// carry. Changes are batched only while half the Window awaits
	// acknowledgement; otherwise each goes out at once. Default 64.
	MaxBatch int
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	c.Bus = c.Bus.WithDefaults()
	if c.Name == "" {
		c.Name = "adapter"
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 5000
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 5 * time.Second
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = time.Second
	}
	if c.Window == 0 {
		c.Window = 2048
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 64
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 5 * time.Minute
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	errs := []error{c.Bus.Validate()}
	if c.SnapshotInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("snapshot interval %s: want at least 10ms", c.SnapshotInterval))
	}
	if c.StatusInterval < 10*time.Millisecond || c.StatusInterval > 2*time.Second {
		errs = append(errs, fmt.Errorf("status interval %s: want 10ms to 2s (gateways give up after 3s)", c.StatusInterval))
	}
	if c.Window < 1 || c.Window > 3900 {
		errs = append(errs, fmt.Errorf("window %d: want 1 to 3900", c.Window))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 4096 {
		errs = append(errs, fmt.Errorf("max batch %d: want 1 to 4096", c.MaxBatch))
	}
	if c.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("clock skew %s: want 0 (default) or more", c.ClockSkew))
	}
	if c.AckTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("ack timeout %s: want at least 100ms", c.AckTimeout))
	}
	return errors.Join(errs...)
}
