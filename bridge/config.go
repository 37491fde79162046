// Package bridge is the gateway: it serves the Session Information protocol
// (package protocol) over WebSocket. It keeps one view of each subscribed
// service group, built from the group's snapshot and events on NATS
// (package subjects) and followed live, shared by all the gateway's clients,
// and fans every change out to the subscribed sessions. It holds only soft
// state: any number of gateways can serve the same NATS cluster.
package bridge

import (
	"errors"
	"fmt"
	"github.com/sisbridge/sisbridge/stats"
	"time"
)

// Config tunes a gateway. The zero value, after WithDefaults, serves one
// machine with authentication off.
type Config struct {
	// Auth requires Initialize to present the credentials of a host
	// administrator (checked by the Authenticator). Default false.
	Auth bool
	// Limits bound what one client or address may take; see Limits for
	// each default.
	Limits Limits
	// KeepAlive is how often a KeepAlive event is sent. Default 15 s.
	KeepAlive time.Duration
	// HeartbeatTimeout ends a session that sends no Heartbeat this long after
	// a KeepAlive (close code 4008); a connection that never initializes is
	// closed after as long without a request. Default 45 s.
	HeartbeatTimeout time.Duration
	// StatusTimeout is how long the gateway waits for a router status update
	// before it treats the router as disconnected. Default 3 s.
	StatusTimeout time.Duration
	// OutboundLimit is how many bytes may wait for one client: replies,
	// events, the part of its initial data already made, and the live
	// events held behind that initial data. Past it the client is closed
	// with 4009. Initial data is made only as the client takes it (see
	// InitialBudget), so a client that reads slowly is not closed for it.
	// Default 4 MiB.
	OutboundLimit int
	// InitialBudget bounds the bytes of initial data made and not yet
	// written, across every client of the gateway. Default 64 MiB.
	InitialBudget int
	// InitialConcurrency bounds how many connections are sent initial data
	// at once: a herd of clients that subscribe to deep groups together is
	// served in turn, first come first served, each to its end, instead of
	// all at once. Default 64.
	InitialConcurrency int
	// SendBuffer sets the kernel's send buffer of each client connection
	// (SO_SNDBUF): what may wait in the kernel for a client beyond what the
	// gateway holds and counts. Without it, the kernel grows a loopback or
	// LAN socket's buffer to megabytes, and a herd's initial data waits
	// there, all of it, outside every limit. Negative: the system's
	// default. Default 256 KiB.
	SendBuffer int
	// LoadConcurrency bounds how many reads of group history (view loads,
	// repairs, resumes) run at once. Default 16.
	LoadConcurrency int
	// WriteTimeout is how long a write to a client may make no progress
	// (it goes 64 KiB at a time) before the connection is closed: it bounds
	// a stall, not the time a slow but reading client takes. Default 10 s.
	WriteTimeout time.Duration
	// Coalesce is the most the gateway spaces its delivery rounds apart. A
	// round applies the changes that arrived for each group (one
	// SessionsUpdated per group and kind of subscriber) and writes each
	// client's events in one system call; spacing them lets more changes
	// share an event and a write, for up to that much latency. Rounds are
	// spaced by the load: after a round that wrote about one message per
	// client the next goes as soon as there is work, after one whose
	// clients had several each the next waits three times as long as the
	// last took, up to Coalesce; so a lightly loaded gateway writes each
	// change at once and a busy one gathers them (see FixedRounds).
	// Negative: rounds run back to back while changes arrive. Default
	// 10 ms.
	Coalesce time.Duration
	// FixedRounds spaces delivery rounds exactly Coalesce apart, however
	// short they are (the first change after a quiet spell still goes at
	// once): the fewest writes, for up to Coalesce of latency at any
	// load. Default false.
	FixedRounds bool
	// InitialChunk is how many sessions one initial-data SessionsUpdated
	// carries at most. Default 500.
	InitialChunk int
	// ViewIdle is how long a group's view is kept after its last subscriber
	// left. Default 30 s.
	ViewIdle time.Duration
	// SubscribeTimeout bounds the wait for a group's view to load. Default
	// 30 s.
	SubscribeTimeout time.Duration
	// AllowedOrigins lists the Origin headers a browser may connect from;
	// empty allows any. Default empty.
	AllowedOrigins []string
	// Statistics sets the QueueStatistics figures (PROTOCOL.md §9): the
	// window (default 15 min) and the service level threshold (default
	// 20 s). Every gateway of a cluster must use the same, or they send
	// different figures for the same Seq.
	Statistics stats.Config
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.KeepAlive, 15*time.Second)
	set(&c.HeartbeatTimeout, 45*time.Second)
	set(&c.StatusTimeout, 3*time.Second)
	set(&c.WriteTimeout, 10*time.Second)
	set(&c.ViewIdle, 30*time.Second)
	set(&c.SubscribeTimeout, 30*time.Second)
	set(&c.Coalesce, 10*time.Millisecond)
	if c.OutboundLimit == 0 {
		c.OutboundLimit = 4 << 20
	}
	if c.InitialChunk == 0 {
		c.InitialChunk = 500
	}
	if c.InitialBudget == 0 {
		c.InitialBudget = 64 << 20
	}
	if c.SendBuffer == 0 {
		c.SendBuffer = 256 << 10
	}
	if c.InitialConcurrency == 0 {
		c.InitialConcurrency = 64
	}
	if c.LoadConcurrency == 0 {
		c.LoadConcurrency = 16
	}
	c.Limits = c.Limits.withDefaults()
	c.Statistics = c.Statistics.WithDefaults()
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	errs := []error{c.Limits.validate(), c.Statistics.Validate()}
	positive := map[string]time.Duration{"keep-alive": c.KeepAlive, "heartbeat timeout": c.HeartbeatTimeout,
		"status timeout": c.StatusTimeout, "write timeout": c.WriteTimeout, "view idle": c.ViewIdle, "subscribe timeout": c.SubscribeTimeout}
	for name, d := range positive {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: want more than 0", name, d))
		}
	}
	if c.OutboundLimit < 64<<10 {
		errs = append(errs, fmt.Errorf("outbound limit %d: want at least 64 KiB", c.OutboundLimit))
	}
	if c.InitialChunk < 1 {
		errs = append(errs, fmt.Errorf("initial chunk %d: want at least 1", c.InitialChunk))
	}
	if c.InitialBudget < 1<<20 {
		errs = append(errs, fmt.Errorf("initial-data budget %d: want at least 1 MiB", c.InitialBudget))
	}
	if c.InitialConcurrency < 1 {
		errs = append(errs, fmt.Errorf("initial-data concurrency %d: want at least 1", c.InitialConcurrency))
	}
	if c.LoadConcurrency < 1 {
		errs = append(errs, fmt.Errorf("load concurrency %d: want at least 1", c.LoadConcurrency))
	}
	return errors.Join(errs...)
}
