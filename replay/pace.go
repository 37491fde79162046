package replay

import (
	"context"
	"time"
)

// pacer waits until the wall-clock time of a capture time: capture time
// origin maps to the moment the pacer starts, and Speed seconds of capture
// pass per second. Running more than a second late, it stops catching up
// and paces from there.
type pacer struct {
	max   bool
	speed float64
	wall0 time.Time
	at0   time.Time
	timer *time.Timer
	// mapped, when set, is told each mapping of wall0 to at0.
	mapped func(wall0, at0 time.Time)
}

func newPacer(cfg PlayConfig, origin time.Time, mapped func(wall0, at0 time.Time)) *pacer {
	p := &pacer{max: cfg.Max(), speed: cfg.Speed, wall0: time.Now(), at0: origin, mapped: mapped}
	if !p.max {
		p.timer = time.NewTimer(time.Hour)
		p.timer.Stop()
	}
	p.mapped(p.wall0, p.at0)
	return p
}

// maxWait bounds one wait, so that a tiny speed cannot overflow.
const maxWait = float64(1000 * time.Hour)

// wait returns once at is due, or ctx's error.
func (p *pacer) wait(ctx context.Context, at time.Time) error {
	if p.max {
		return ctx.Err()
	}
	d := time.Until(p.wall0.Add(time.Duration(min(float64(at.Sub(p.at0))/p.speed, maxWait))))
	switch {
	case d < -time.Second:
		p.wall0, p.at0 = time.Now(), at
		p.mapped(p.wall0, p.at0)
		return ctx.Err()
	case d < time.Millisecond:
		return ctx.Err()
	}
	p.timer.Reset(d)
	select {
	case <-ctx.Done():
		p.timer.Stop()
		return ctx.Err()
	case <-p.timer.C:
		return nil
	}
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
