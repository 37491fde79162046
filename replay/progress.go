package replay

import (
	"fmt"
	"time"
)

// PlayProgress is how far a Player has got.
type PlayProgress struct {
	// Played counts changes handed to the handler in every round; Rejected
	// those it refused. Rounds counts the rounds completed (Loop).
	Played, Rejected, Rounds uint64
	// Total is how many changes one round plays, before filters.
	Total uint64
	// Offset is the byte offset reached in this round; Size the file's.
	Offset, Size int64
	// At is the capture time reached; Start and End bound the capture.
	At, Start, End time.Time
	// Max is true at maximum speed; Speed is the speed otherwise.
	Max   bool
	Speed float64
}

// Progress returns how far the player has got.
func (p *Player) Progress() PlayProgress {
	x := p.index
	end := x.Header.Start.Add(x.Span())
	return PlayProgress{
		Played: p.played.Load(), Rejected: p.rejected.Load(), Rounds: p.rounds.Load(), Total: x.Events,
		Offset: p.offset.Load(), Size: x.Size, At: time.Unix(0, p.at.Load()).UTC(), Start: x.Header.Start, End: end,
		Max: p.cfg.Max(), Speed: p.cfg.Speed,
	}
}

// ETA estimates how long the current round still takes: from the capture
// time left and the speed, or at maximum speed from the bytes left and the
// byte rate since the round started.
func (pp PlayProgress) ETA(roundElapsed time.Duration) time.Duration {
	if !pp.Max {
		return time.Duration(float64(pp.End.Sub(pp.At)) / pp.Speed)
	}
	if pp.Offset <= 0 || roundElapsed <= 0 {
		return 0
	}
	left := float64(pp.Size-pp.Offset) / float64(pp.Offset)
	return time.Duration(left * float64(roundElapsed))
}

// RoundElapsed returns how long the current round has been playing.
func (p *Player) RoundElapsed() time.Duration {
	if s := p.started.Load(); s != 0 {
		return time.Since(time.Unix(0, s))
	}
	return 0
}

// Line is the progress line the command prints: rate over the last
// interval, position in the capture and the time left.
func (pp PlayProgress) Line(prev PlayProgress, interval, roundElapsed time.Duration) string {
	rate := float64(pp.Played-prev.Played) / interval.Seconds()
	pos := "max speed"
	if !pp.Max {
		pos = fmt.Sprintf("%gx", pp.Speed)
	}
	line := fmt.Sprintf("played %d changes (%.0f/s, %s), capture at %s of %s, ETA %s",
		pp.Played, rate, pos, pp.At.Sub(pp.Start).Truncate(time.Second), pp.End.Sub(pp.Start).Truncate(time.Second),
		pp.ETA(roundElapsed).Round(100*time.Millisecond))
	if pp.Rounds > 0 {
		line += fmt.Sprintf(", round %d", pp.Rounds+1)
	}
	if pp.Rejected > 0 {
		line += fmt.Sprintf(", %d rejected", pp.Rejected)
	}
	return line
}
