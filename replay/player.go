package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// PlayConfig says how to play a capture. The zero value, after defaults,
// plays everything once at the recorded pace with times shifted to now.
type PlayConfig struct {
	// Speed is how many seconds of the capture pass per second: 1 the
	// recorded pace, 10 ten times faster. Negative or +Inf plays as fast
	// as the handler takes changes. Default 1.
	Speed float64
	// Loop plays the capture again and again: at its end the player reports
	// the link up with the starting state (the handler reconciles back to
	// it) and starts over.
	Loop bool
	// KeepTimes plays TimeEnteredQueue as recorded. By default every
	// TimeEnteredQueue is shifted by the time between the capture's Start
	// and the moment playing (each round of a Loop) starts, so that waiting
	// times look current.
	KeepTimes bool
	// Filter plays only the tenants and groups it passes.
	Filter Filter
	// SkipCorrupt steps over damaged frames (see ReadOptions).
	SkipCorrupt bool
	// Log receives rejected changes (sampled). Default: discards.
	Log zerolog.Logger
}

// WithDefaults returns c with every unset field at its default.
func (c PlayConfig) WithDefaults() PlayConfig {
	if c.Speed == 0 {
		c.Speed = 1
	}
	return c
}

// Validate reports every problem of c at once.
func (c PlayConfig) Validate() error {
	var errs []error
	if math.IsNaN(c.Speed) || c.Speed == 0 {
		errs = append(errs, fmt.Errorf("speed %g: want a positive number, or negative or +Inf for maximum speed", c.Speed))
	}
	if err := c.Filter.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Max reports whether c plays at maximum speed.
func (c PlayConfig) Max() bool { return c.Speed < 0 || math.IsInf(c.Speed, 1) }

// Player plays a capture as a router: it is a router.Source. Create it with
// NewPlayer; Progress is safe to call while Run runs.
type Player struct {
	ra      io.ReaderAt
	size    int64
	cfg     PlayConfig
	index   *Index
	running atomic.Bool
	log     zerolog.Logger
	linkUp  bool // the link is up at the end of the last round (Run's goroutine only)

	played, rejected, rounds atomic.Uint64
	offset, at               atomic.Int64
	started                  atomic.Int64 // unix ns when the current round started
	// clockWall and clockAt (unix ns) map wall-clock time to capture time,
	// as the pacer does (RouterClock).
	clockWall, clockAt atomic.Int64
	clockShift         atomic.Int64 // the round's shift of times (ns)

	mu      sync.Mutex
	skipped []Span
}

var (
	_ router.Source = (*Player)(nil)
	_ router.Clock  = (*Player)(nil)
)

// mapClock records that capture time at0 is played at wall-clock time wall0.
func (p *Player) mapClock(wall0, at0 time.Time) {
	p.clockAt.Store(at0.UnixNano())
	p.clockWall.Store(wall0.UnixNano())
}

// RouterClock returns the capture time being played now, shifted as the
// times played are (KeepTimes), and how many seconds of capture pass per
// second (router.Clock): at maximum speed the capture time reached and
// rate 0. Before the first round it is the capture's start.
func (p *Player) RouterClock() (time.Time, float64) {
	shift := time.Duration(p.clockShift.Load())
	if p.cfg.Max() {
		return time.Unix(0, p.at.Load()).Add(shift).UTC(), 0
	}
	at, wall := time.Unix(0, p.clockAt.Load()), time.Unix(0, p.clockWall.Load())
	return at.Add(shift + time.Duration(float64(time.Since(wall))*p.cfg.Speed)).UTC(), p.cfg.Speed
}

// NewPlayer checks the whole capture held by ra (size bytes) with Scan and
// returns a player of it. Without SkipCorrupt a damaged capture is refused
// here, before anything is played.
func NewPlayer(ra io.ReaderAt, size int64, cfg PlayConfig) (*Player, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("play config: %w", err)
	}
	x, err := Scan(ra, size, ReadOptions{SkipCorrupt: cfg.SkipCorrupt})
	if err != nil {
		return nil, err
	}
	log := cfg.Log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second})
	p := &Player{ra: ra, size: size, cfg: cfg, index: x, log: log}
	p.at.Store(x.Header.Start.UnixNano())
	p.mapClock(time.Now(), x.Header.Start)
	return p, nil
}

// Index returns what NewPlayer's scan found.
func (p *Player) Index() *Index { return p.index }

// Skipped lists what the last round skipped (with SkipCorrupt).
func (p *Player) Skipped() []Span {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.skipped
}

// Run plays the capture to h, as router.Source says: h.LinkUp with the
// capture's directory and starting queues, then every change at the
// configured pace, the recorded router link changes as LinkDown and LinkUp.
// It returns nil at the end of the capture (never, with Loop) or when ctx
// is cancelled; an error when the handler refuses the starting state, is
// closed, or the capture cannot be read.
func (p *Player) Run(ctx context.Context, h router.Handler) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer p.running.Store(false)
	for {
		err := p.round(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil || !p.cfg.Loop {
			return err
		}
		p.rounds.Add(1)
	}
}

// round plays the capture once.
func (p *Player) round(ctx context.Context, h router.Handler) error {
	r, err := NewReader(p.ra, p.size, ReadOptions{SkipCorrupt: p.cfg.SkipCorrupt})
	if err != nil {
		return err
	}
	now := time.Now()
	pb := &playback{p: p, h: h, ctx: ctx, r: r, start: r.Header().Start}
	if !p.cfg.KeepTimes {
		pb.shift = now.Sub(pb.start)
	}
	p.started.Store(now.UnixNano())
	p.at.Store(pb.start.UnixNano())
	p.clockShift.Store(int64(pb.shift))
	p.mapClock(now, pb.start)
	first, err := pb.opening(p.rounds.Load() > 0)
	if err != nil {
		return err
	}
	pb.pace = newPacer(p.cfg, pb.start, p.mapClock)
	defer pb.pace.stop()
	err = pb.play(first)
	p.linkUp = pb.connected
	p.mu.Lock()
	p.skipped = r.Skipped()
	p.mu.Unlock()
	return err
}

// playback is one round of a Player.
type playback struct {
	p     *Player
	h     router.Handler
	ctx   context.Context
	r     *Reader
	start time.Time
	shift time.Duration
	pace  *pacer
	dir   Directory
	// connected and epoch are the last router status played.
	connected bool
	epoch     uint64
}

// errStop ends a round early without an error: ctx is done.
var errStop = errors.New("stop")

// opening reads the frames before the first change and reports the link up
// with the state they describe; it returns the first change's record. A
// later round of a Loop syncs each group back to its starting queue
// instead: the link stays up, so gateways keep their clients.
func (pb *playback) opening(again bool) (*Record, error) {
	state := &router.State{Queues: map[string][]queue.Session{}}
	var first *Record
	for first == nil {
		rec, err := pb.r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch rec.Kind {
		case KindDirectory:
			pb.dir = mergeDirectory(pb.dir, rec.Directory)
		case KindBase:
			if pb.p.cfg.Filter.Match(rec.Base.Tenant, rec.Base.Group) {
				state.Queues[rec.Base.Group] = pb.shifted(rec.Base.Sessions)
			}
		case KindStatus:
			pb.connected, pb.epoch = rec.Status.Connected, rec.Status.Epoch
		case KindEvent:
			first = &rec
		}
	}
	state.Tenants, state.Groups = pb.filtered(pb.dir)
	if again && pb.p.linkUp {
		pb.connected = true
		return first, pb.resync(state)
	}
	if err := pb.h.LinkUp(pb.ctx, state); err != nil {
		if pb.ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("link up with the capture's starting state: %w", err)
	}
	pb.connected = true
	return first, nil
}

// resync brings every group back to the state's queue.
func (pb *playback) resync(state *router.State) error {
	for _, g := range state.Groups {
		id := g.ServiceGroupID
		if err := pb.handled(pb.h.Sync(pb.ctx, id, state.Queues[id]), id, "sync"); err != nil {
			return err
		}
	}
	return nil
}

// play plays first and every later frame.
func (pb *playback) play(first *Record) error {
	if first == nil {
		return nil
	}
	rec := *first
	for {
		err := pb.frame(&rec)
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
		pb.p.offset.Store(rec.Offset + int64(rec.Size))
		if rec, err = pb.r.Read(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

func (pb *playback) frame(rec *Record) error {
	switch rec.Kind {
	case KindEvent:
		return pb.event(rec.Event)
	case KindDirectory:
		pb.dir = mergeDirectory(pb.dir, rec.Directory)
		return pb.putDirectory(rec.Directory)
	case KindBase:
		return pb.base(rec.Base)
	case KindStatus:
		return pb.status(rec.Status)
	}
	return nil
}

func (pb *playback) event(e *subjects.Event) error {
	if !pb.p.cfg.Filter.Match(e.Tenant, e.Group) {
		return nil
	}
	if err := pb.pace.wait(pb.ctx, e.Time); err != nil {
		return errStop
	}
	pb.p.at.Store(e.Time.UnixNano())
	c := e.Change
	if c.Op == queue.OpEnqueue && pb.shift != 0 && !c.Session.TimeEnteredQueue.IsZero() {
		c.Session.TimeEnteredQueue = c.Session.TimeEnteredQueue.Add(pb.shift)
	}
	err := pb.h.Apply(pb.ctx, e.Group, c)
	pb.p.played.Add(1)
	return pb.handled(err, e.Group, "change")
}

// handled sorts a handler's answer: ctx done or the handler closed end the
// round; anything else is a rejected change, counted and logged.
func (pb *playback) handled(err error, group, what string) error {
	switch {
	case err == nil:
		return nil
	case pb.ctx.Err() != nil:
		return errStop
	case errors.Is(err, router.ErrClosed):
		return err
	}
	pb.p.rejected.Add(1)
	pb.p.log.Warn().Err(err).Str("group", group).Msgf("replay: %s rejected", what)
	return nil
}

func (pb *playback) base(b *Base) error {
	if !pb.p.cfg.Filter.Match(b.Tenant, b.Group) {
		return nil
	}
	return pb.handled(pb.h.Sync(pb.ctx, b.Group, pb.shifted(b.Sessions)), b.Group, "base")
}

func (pb *playback) status(s *subjects.RouterStatus) error {
	if s.Connected == pb.connected && s.Epoch == pb.epoch {
		return nil
	}
	if err := pb.pace.wait(pb.ctx, s.Since); err != nil {
		return errStop
	}
	pb.connected, pb.epoch = s.Connected, s.Epoch
	if !s.Connected {
		pb.h.LinkDown(pb.ctx, s.Reason)
		return nil
	}
	return pb.handled(pb.h.LinkUp(pb.ctx, nil), "", "link up")
}

func (pb *playback) putDirectory(d *Directory) error {
	tenants, groups := pb.filtered(*d)
	for _, t := range tenants {
		if err := pb.handled(pb.h.PutTenant(pb.ctx, t), "", "tenant "+t.TenantID); err != nil {
			return err
		}
	}
	for _, g := range groups {
		if err := pb.handled(pb.h.PutGroup(pb.ctx, g), g.ServiceGroupID, "group"); err != nil {
			return err
		}
	}
	return nil
}

// filtered returns the tenants and groups the filter passes; a tenant
// passes when one of its groups does.
func (pb *playback) filtered(d Directory) ([]subjects.Tenant, []subjects.Group) {
	f := pb.p.cfg.Filter
	var groups []subjects.Group
	used := map[string]bool{}
	for _, g := range d.Groups {
		if f.Match(g.TenantID, g.ServiceGroupID) {
			groups = append(groups, g)
			used[g.TenantID] = true
		}
	}
	var tenants []subjects.Tenant
	for _, t := range d.Tenants {
		if used[t.TenantID] {
			tenants = append(tenants, t)
		}
	}
	return tenants, groups
}

// shifted returns sessions with TimeEnteredQueue shifted to now.
func (pb *playback) shifted(sessions []queue.Session) []queue.Session {
	if pb.shift == 0 {
		return sessions
	}
	out := make([]queue.Session, len(sessions))
	for i, s := range sessions {
		if !s.TimeEnteredQueue.IsZero() {
			s.TimeEnteredQueue = s.TimeEnteredQueue.Add(pb.shift)
		}
		out[i] = s
	}
	return out
}

// mergeDirectory adds d's entries to dir, replacing those with the same ID.
func mergeDirectory(dir Directory, d *Directory) Directory {
	dir.Tenants = mergeByID(dir.Tenants, d.Tenants, func(t subjects.Tenant) string { return t.TenantID })
	dir.Groups = mergeByID(dir.Groups, d.Groups, func(g subjects.Group) string { return g.ServiceGroupID })
	return dir
}

// mergeByID appends add to list, an entry whose ID list holds replacing it.
func mergeByID[T any](list, add []T, id func(T) string) []T {
	at := make(map[string]int, len(list))
	for i, e := range list {
		at[id(e)] = i
	}
	for _, e := range add {
		if i, ok := at[id(e)]; ok {
			list[i] = e
			continue
		}
		at[id(e)] = len(list)
		list = append(list, e)
	}
	return list
}
