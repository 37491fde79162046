package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/router"
)

// Run reports the simulated router to h, as router.Source says: h.LinkUp
// with the full state first, then every change as it happens in simulated
// time, paced by Config.Speed. It returns nil when ctx is cancelled or, with
// Config.MaxChanges, once that many changes are reported. Run may be called
// again after it returned: the simulation continues where it stopped and
// the next LinkUp again carries the full state. Only one Run may be active
// at a time (ErrRunning).
func (s *Sim) Run(ctx context.Context, h router.Handler) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	r := &runner{s: s, h: h, ctx: ctx, paced: s.cfg.paced()}
	if r.paced {
		r.timer = time.NewTimer(time.Hour)
		r.timer.Stop()
		defer r.timer.Stop()
	}
	s.mu.Lock()
	s.link = true
	st := s.stateLocked()
	r.rebaseLocked(s.now)
	s.mu.Unlock()
	if err := r.linkUp(st); err != nil || ctx.Err() != nil {
		return err
	}
	return r.loop()
}

// runner is one Run: it paces the simulation and makes the Handler calls.
type runner struct {
	s     *Sim
	h     router.Handler
	ctx   context.Context
	paced bool
	timer *time.Timer
	// wall0 is the wall-clock time of simulated time sim0.
	wall0   time.Time
	sim0    time.Duration
	changes int
}

func (r *runner) loop() error {
	for r.ctx.Err() == nil {
		r.s.mu.Lock()
		at, ok := r.s.agenda.next()
		r.s.mu.Unlock()
		if !ok {
			return fmt.Errorf("sim: internal error: nothing left to simulate")
		}
		if !r.pace(at) {
			return nil
		}
		r.s.mu.Lock()
		out := r.s.step()
		err := r.s.err
		r.s.mu.Unlock()
		if err != nil {
			return err
		}
		if err := r.report(out); err != nil {
			return err
		}
		if limit := r.s.cfg.MaxChanges; limit > 0 && r.changes >= limit {
			return nil
		}
	}
	return nil
}

// rebaseLocked maps simulated time at to the wall-clock time now, for the
// pacing and for RouterClock; r.s.mu is held.
func (r *runner) rebaseLocked(at time.Duration) {
	r.wall0, r.sim0 = time.Now(), at
	r.s.paceWall, r.s.paceSim, r.s.pacing = r.wall0, at, r.paced
}

// maxWait bounds one pacing wait, so that a tiny Speed cannot overflow.
const maxWait = float64(1000 * time.Hour)

// pace waits until the wall-clock time of simulated time at; it returns
// false if ctx is cancelled first. Running late by more than a second, it
// stops catching up and paces from now on.
func (r *runner) pace(at time.Duration) bool {
	if !r.paced {
		return true
	}
	d := time.Until(r.wall0.Add(time.Duration(min(float64(at-r.sim0)/r.s.cfg.Speed, maxWait))))
	if d < -time.Second {
		r.s.mu.Lock()
		r.rebaseLocked(at)
		r.s.mu.Unlock()
		return true
	}
	if d <= 0 {
		return true
	}
	r.timer.Reset(d)
	select {
	case <-r.ctx.Done():
		r.timer.Stop()
		return false
	case <-r.timer.C:
		return true
	}
}

// report makes the Handler calls of one simulated event. A rejected change
// is logged and answered with the group's whole queue (h.Sync); the rest of
// the event's changes of that group are then already included.
func (r *runner) report(out []report) error {
	var synced map[string]bool
	for i := range out {
		if r.ctx.Err() != nil {
			return nil
		}
		o := &out[i]
		switch o.kind {
		case repLinkDown:
			r.h.LinkDown(r.ctx, o.reason)
		case repLinkUp:
			if err := r.linkUp(o.state); err != nil {
				return err
			}
		case repRemoveGroup:
			if err := r.h.RemoveGroup(r.ctx, o.group); err != nil && r.ctx.Err() == nil {
				r.s.cfg.Log.Error().Err(err).Str("group", o.group).Msg("sim: group removal rejected")
			}
		case repPutGroup:
			if err := r.h.PutGroup(r.ctx, r.s.groupInfo(o.group)); err != nil && r.ctx.Err() == nil {
				r.s.cfg.Log.Error().Err(err).Str("group", o.group).Msg("sim: group set up again rejected")
			}
		case repChange:
			r.changes++
			if synced[o.group] {
				continue
			}
			if err := r.h.Apply(r.ctx, o.group, o.change); err != nil && r.ctx.Err() == nil {
				if synced == nil {
					synced = map[string]bool{}
				}
				synced[o.group] = true
				r.resync(o, err)
			}
		}
	}
	return nil
}

// linkUp reports the link up with the full state. A failure other than
// cancellation stops Run: the Handler's state is unknown.
func (r *runner) linkUp(st *router.State) error {
	err := r.h.LinkUp(r.ctx, st)
	if err == nil || r.ctx.Err() != nil {
		return nil
	}
	r.s.cfg.Log.Error().Err(err).Msg("sim: link up rejected")
	return fmt.Errorf("sim: link up: %w", err)
}

// resync answers a rejected change with the group's whole queue.
func (r *runner) resync(o *report, err error) {
	r.s.cfg.Log.Warn().Err(err).Str("group", o.group).Str("call", o.change.CallID).
		Stringer("op", o.change.Op).Msg("sim: change rejected; syncing the group")
	if err := r.h.Sync(r.ctx, o.group, r.s.groupSessions(o.group)); err != nil && r.ctx.Err() == nil {
		r.s.cfg.Log.Error().Err(err).Str("group", o.group).Msg("sim: sync rejected")
	}
}
