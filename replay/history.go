package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Bound is one end of a history range: a stream sequence or a time. The
// zero Bound is open: the oldest or newest event kept.
type Bound struct {
	// Seq is a stream sequence of SIS_EVENTS; Time a bus time. At most one
	// is set.
	Seq  uint64
	Time time.Time
}

// ParseBound reads a stream sequence ("1200") or an RFC 3339 time
// ("2026-11-25T09:00:00Z"); "" is the open bound.
func ParseBound(s string) (Bound, error) {
	if s == "" {
		return Bound{}, nil
	}
	if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
		return Bound{Seq: seq}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Bound{}, fmt.Errorf("%q: want a stream sequence or an RFC 3339 time", s)
	}
	return Bound{Time: t.UTC()}, nil
}

// CheckRange reports a range from..to that ends before it starts (both
// bounds set, of the same kind).
func CheckRange(from, to Bound) error {
	switch {
	case from.Seq > 0 && to.Seq > 0 && from.Seq > to.Seq,
		!from.Time.IsZero() && !to.Time.IsZero() && from.Time.After(to.Time):
		return fmt.Errorf("%w: from %s is after to %s", ErrRange, from, to)
	}
	return nil
}

// String returns the bound as ParseBound reads it.
func (b Bound) String() string {
	switch {
	case b.Seq > 0:
		return strconv.FormatUint(b.Seq, 10)
	case !b.Time.IsZero():
		return b.Time.Format(time.RFC3339Nano)
	}
	return ""
}

// History writes the changes JetStream keeps from from to to (inclusive)
// into out. Every group starts from its queue just before the range,
// rebuilt from the oldest events kept (or its snapshot when that is older
// than the range). A group whose history before the range is gone starts
// at the first point in the range where its state is known (its first
// change, or the change after its snapshot), and the header says so.
func (r *Recorder) History(ctx context.Context, out io.Writer, from, to Bound) (Trailer, error) {
	if err := CheckRange(from, to); err != nil {
		return Trailer{}, err
	}
	info, err := r.stream.Info(ctx)
	if err != nil {
		return Trailer{}, fmt.Errorf("stream info: %w", err)
	}
	st := info.State
	ex := &export{r: r, out: out, from: from, to: to, groups: map[string]*past{}}
	if ex.start, err = r.seqAtOrAfter(ctx, from, st.FirstSeq, st.LastSeq+1); err != nil {
		return Trailer{}, err
	}
	end := st.LastSeq
	if !to.Time.IsZero() || to.Seq > 0 {
		next, err := r.seqAtOrAfter(ctx, Bound{Seq: to.Seq + 1, Time: timeAfter(to.Time)}, st.FirstSeq, st.LastSeq+1)
		if err != nil {
			return Trailer{}, err
		}
		end = min(end, next-1)
	}
	if err := ex.prepare(ctx); err != nil {
		return Trailer{}, err
	}
	if st.Msgs > 0 && end >= st.FirstSeq {
		err = ex.walk(ctx, st.FirstSeq, end)
	}
	if err == nil && ex.w == nil {
		err = ex.open(ex.from.Time)
	}
	if ex.w == nil {
		return Trailer{}, err
	}
	endTime := ex.to.Time
	if endTime.IsZero() {
		endTime = ex.w.state.last
		if endTime.Before(ex.w.Origin()) {
			endTime = ex.w.Origin()
		}
	}
	tr, cerr := ex.w.Close(endTime, "range end")
	r.bytes.Store(ex.w.Bytes())
	return tr, errors.Join(err, cerr)
}

func timeAfter(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(time.Nanosecond)
}

// seqAtOrAfter resolves a bound to the first stream sequence at or after
// it: dflt for the open bound, none (past the end) when nothing is stored
// from there on.
func (r *Recorder) seqAtOrAfter(ctx context.Context, b Bound, dflt, none uint64) (uint64, error) {
	if b.Time.IsZero() {
		if b.Seq == 0 {
			return dflt, nil
		}
		return b.Seq, nil
	}
	seq, found, err := r.hist.SeqAt(ctx, subjects.AllEvents, b.Time)
	switch {
	case err != nil:
		return 0, err
	case !found:
		return none, nil
	}
	return seq, nil
}

// export is one History call.
type export struct {
	r        *Recorder
	out      io.Writer
	from, to Bound
	start    uint64 // first stream sequence of the range
	dir      Directory
	groups   map[string]*past
	w        *Writer
	dropped  uint64
}

// past is a group's state before the range is opened.
type past struct {
	tenant   string
	known    bool
	q        *queue.Queue
	seq      uint64
	lastSeen uint64
	snap     *subjects.Snapshot
}

func (ex *export) prepare(ctx context.Context) error {
	dir, err := ex.r.directory(ctx)
	if err != nil {
		return err
	}
	ex.dir = dir
	for _, g := range dir.Groups {
		snap, found, err := ex.r.hist.Snapshot(ctx, g.TenantID, g.ServiceGroupID)
		if err != nil {
			return err
		}
		p := &past{tenant: g.TenantID, q: queue.New(g.ServiceGroupID)}
		if found {
			p.snap = &snap
		}
		ex.groups[g.ServiceGroupID] = p
	}
	return nil
}

// walk reads the stream from..to and hands each change to before or in.
func (ex *export) walk(ctx context.Context, from, to uint64) error {
	subject := subjects.AllEvents
	if fs := ex.r.filterSubjects(); len(fs) == 1 {
		subject = fs[0]
	}
	return ex.r.hist.Walk(ctx, subject, from, to, ex.change)
}

// change hands one change of the history to before or in; a change
// that the filter does not pass is left out.
func (ex *export) change(e *subjects.Event, streamSeq uint64) error {
	if !ex.r.cfg.Filter.Match(e.Tenant, e.Group) {
		return nil
	}
	if streamSeq < ex.start {
		ex.before(e)
		return nil
	}
	if ex.w == nil {
		start := ex.from.Time
		if start.IsZero() {
			start = e.Time
		}
		if err := ex.open(start); err != nil {
			return err
		}
	}
	return ex.in(e)
}
