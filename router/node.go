package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/subjects"
)

// ErrStandby: the adapter stands by; another holds the lease (Node.Ready).
var ErrStandby = errors.New("standing by")

// errUnanswered: the bus let a request go unanswered while a node opened.
var errUnanswered = errors.New("the bus did not answer")

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Node is one adapter of a router that may have standbys: it stands by,
// warm, until it holds the lease, serves its source while it does, and
// stands by again when it loses it. Run as many nodes of one router as
// you like, on as many machines: one is active at a time.
type Node struct {
	js  jetstream.JetStream
	log zerolog.Logger
	cfg Config

	mu      sync.Mutex
	standby *Standby
	active  *Adapter
	failed  error // why Run ended, when it did on a failure
}

// NewNode returns a node; Run runs it.
func NewNode(js jetstream.JetStream, log zerolog.Logger, cfg Config) *Node {
	return &Node{js: js, log: log, cfg: cfg}
}

// Run stands by, serves src once the lease is held, and stands by again
// after losing it (or finding a write of another's on a group's subject),
// until ctx ends (then it returns nil, the adapter closed) or another
// failure. src is run once per term: it must allow that (the simulator
// does; a feed does not, and its node ends when it stands down). Run once.
func (n *Node) Run(ctx context.Context, src Source) error {
	for {
		err := n.term(ctx, src)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errUnanswered):
			// The bus did not answer (a cluster electing its JetStream
			// leader drops requests): try again.
			n.log.Warn().Err(err).Msg("the bus does not answer yet; standing by again in a second")
			if !sleepCtx(ctx, time.Second) {
				return nil
			}
		case errors.Is(err, ErrLeaseLost), errors.Is(err, ErrForeignWrite):
			// A foreign write right after a takeover is most likely the
			// last of the previous holder's, sent before it knew: the bus
			// is read anew, and the lease taken again.
			n.log.Warn().Err(err).Msg("stood down; standing by again")
		default:
			n.mu.Lock()
			n.failed = err
			n.mu.Unlock()
			return err
		}
	}
}

// term is one turn: stand by, take over, serve until the lease is lost or
// ctx ends, close.
func (n *Node) term(ctx context.Context, src Source) error {
	sb, err := OpenStandby(ctx, n.js, n.log, n.cfg)
	if subjects.Unanswered(err) && ctx.Err() == nil {
		return fmt.Errorf("stand by: %w: %w", errUnanswered, err)
	}
	if err != nil {
		return fmt.Errorf("stand by: %w", err)
	}
	n.set(sb, nil)
	a, err := sb.Await(ctx)
	sb.Close()
	if subjects.Unanswered(err) && ctx.Err() == nil {
		return fmt.Errorf("take over: %w: %w", errUnanswered, err)
	}
	if err != nil {
		return fmt.Errorf("stand by: %w", err)
	}
	n.set(nil, a)
	runErr := a.Run(ctx, src)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	closeErr := a.Close(closeCtx)
	if errors.Is(runErr, ErrLeaseLost) || errors.Is(runErr, ErrForeignWrite) {
		return runErr // what Close says of it adds nothing
	}
	return errors.Join(runErr, closeErr)
}

func (n *Node) set(sb *Standby, a *Adapter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.standby, n.active = sb, a
}

// Adapter returns the adapter while the node is active, nil otherwise.
func (n *Node) Adapter() *Adapter {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.active
}

// Holder returns who holds the lease: this node's adapter while it is
// active, the other as last seen while it stands by.
func (n *Node) Holder() subjects.Lease {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.active != nil && n.active.lease != nil:
		return n.active.lease.held
	case n.standby != nil:
		return n.standby.Holder()
	}
	return subjects.Lease{}
}

// Health reports the active adapter's links; a standby reports the router
// not connected, saying who is active.
func (n *Node) Health() Health {
	if a := n.Adapter(); a != nil {
		return a.Health()
	}
	holder := n.Holder().Adapter
	return Health{RouterReason: fmt.Sprintf("standing by: adapter %q holds the lease", holder), Holder: holder}
}

// Ready returns nil while the node is active and its adapter ready; a
// standby returns an error wrapping ErrStandby that names the active.
func (n *Node) Ready() error {
	if a := n.Adapter(); a != nil {
		return a.Ready()
	}
	return fmt.Errorf("%w: adapter %q holds the lease", ErrStandby, n.Holder().Adapter)
}

// Failed returns why Run ended on a failure, or the active adapter's
// failure; nil otherwise.
func (n *Node) Failed() error {
	n.mu.Lock()
	failed, a := n.failed, n.active
	n.mu.Unlock()
	if failed != nil || a == nil {
		return failed
	}
	if err := a.Failed(); !errors.Is(err, ErrLeaseLost) {
		return err
	}
	return nil
}

// Stats returns the active adapter's counters (zero while standing by).
func (n *Node) Stats() Stats {
	if a := n.Adapter(); a != nil {
		return a.Stats()
	}
	return Stats{}
}
