package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/router"
)

// Reasons the feed gives h.LinkDown on its own.
const (
	// ReasonIdle is reported after IdleTimeout without a line.
	ReasonIdle = "feed idle"
	// ReasonStopped is reported when Run returns with the link up.
	ReasonStopped = "feed stopped"
	// ReasonDown is reported for a link line with Up false and no Reason.
	ReasonDown = "router reported the link down"
)

// errStopping: the line came after Run was told to stop; not applied.
var errStopping = errors.New("feed shutting down")

// result is what became of one line.
type result int

const (
	blank    result = iota // an empty or white-space line: nothing to do
	accepted               // valid, and the handler took it
	rejected               // invalid, or the handler refused it
	stopped                // not looked at: the feed is stopping
)

// handle validates one line and applies it to h, one line at a time across
// every input. A rejected line comes with its error.
func (f *Feed) handle(ctx context.Context, h router.Handler, raw rawLine) (result, error) {
	var l Line
	var err error
	isBlank := !raw.long && len(bytes.TrimSpace(raw.text)) == 0
	switch {
	case raw.long:
		err = fmt.Errorf("%w: line longer than %d bytes", ErrLine, f.cfg.MaxLine)
	case !isBlank:
		l, err = ParseLine(raw.text)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped || ctx.Err() != nil {
		return stopped, errStopping
	}
	f.last = time.Now()
	if err == nil {
		err = f.applyLocked(ctx, h, l, isBlank)
	}
	switch {
	case err != nil:
		f.rejected.Add(1)
		return rejected, err
	case isBlank:
		return blank, nil
	}
	f.accepted.Add(1)
	return accepted, nil
}

// applyLocked brings the link back up if it went down for idleness, then
// applies l (nothing for a blank line). f.mu is held.
func (f *Feed) applyLocked(ctx context.Context, h router.Handler, l Line, isBlank bool) error {
	if l.Op == OpLink {
		f.idleDown = false
		return f.link(ctx, h, l.Up, l.Reason)
	}
	if f.idleDown {
		if err := h.LinkUp(ctx, nil); err != nil {
			return fmt.Errorf("rejected: reporting the link up after idle: %w", err)
		}
		f.idleDown, f.up = false, true
		f.log.Info().Msg("feed active again: link reported up")
	}
	if isBlank {
		return nil
	}
	if err := dispatch(ctx, h, l); err != nil {
		return fmt.Errorf("rejected: %w", err)
	}
	return nil
}

func dispatch(ctx context.Context, h router.Handler, l Line) error {
	switch l.Op {
	case OpTenant:
		return h.PutTenant(ctx, l.Tenant)
	case OpGroup:
		return h.PutGroup(ctx, l.Group)
	case OpRemoveGroup:
		return h.RemoveGroup(ctx, l.GroupID)
	case OpSync:
		return h.Sync(ctx, l.GroupID, l.Sessions)
	default:
		return h.Apply(ctx, l.GroupID, l.Change)
	}
}

// link reports the link state to h. f.mu is held.
func (f *Feed) link(ctx context.Context, h router.Handler, up bool, reason string) error {
	if up {
		if err := h.LinkUp(ctx, nil); err != nil {
			return fmt.Errorf("rejected: %w", err)
		}
		f.up = true
		return nil
	}
	if reason == "" {
		reason = ReasonDown
	}
	h.LinkDown(ctx, reason)
	f.up = false
	return nil
}

// begin reports the link up if StartUp says so, and starts the idle clock.
func (f *Feed) begin(ctx context.Context, h router.Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = time.Now()
	if !f.cfg.startUp() {
		return
	}
	if err := h.LinkUp(ctx, nil); err != nil {
		f.log.Error().Err(err).Msg("reporting the link up at start")
		return
	}
	f.up = true
}

// end stops line handling for good and reports the link down if it is up,
// with a context of its own: ctx is done by now.
func (f *Feed) end(ctx context.Context, h router.Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	if f.up {
		f.up = false
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		h.LinkDown(dctx, ReasonStopped)
	}
}

// watchIdle reports the link down after IdleTimeout without a line.
func (f *Feed) watchIdle(ctx context.Context, h router.Handler) {
	t := time.NewTimer(f.cfg.IdleTimeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(f.checkIdle(ctx, h))
		}
	}
}

// checkIdle reports the link down if the feed has been idle too long, and
// returns how long to wait before the next check.
func (f *Feed) checkIdle(ctx context.Context, h router.Handler) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	idle := f.cfg.IdleTimeout
	quiet := time.Since(f.last)
	if quiet < idle {
		return idle - quiet
	}
	if f.up && !f.stopped && ctx.Err() == nil {
		f.up, f.idleDown = false, true
		h.LinkDown(ctx, ReasonIdle)
		f.log.Warn().Dur("idle", quiet).Msg("no line for the idle timeout: link reported down")
	}
	return idle
}
