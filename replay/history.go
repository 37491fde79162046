package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	t := b.Time
	fail := func(err error) (uint64, error) {
		return 0, fmt.Errorf("find the stream sequence at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	cons, err := r.js.OrderedConsumer(ctx, subjects.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.AllEvents}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t})
	if err != nil {
		return fail(err)
	}
	if cons.CachedInfo().NumPending == 0 {
		return none, nil
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		return fail(err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		return fail(err)
	}
	return meta.Sequence.Stream, nil
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
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: ex.r.filterSubjects(), DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	cons, err := ex.r.js.OrderedConsumer(ctx, subjects.StreamEvents, cfg)
	if err != nil {
		return fmt.Errorf("history consumer: %w", err)
	}
	if cons.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("history consumer: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			return errors.Join(ctx.Err(), fmt.Errorf("history: %w", err))
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("history metadata: %w", err)
		}
		if meta.Sequence.Stream > to {
			return nil
		}
		if err := ex.message(m, meta.Sequence.Stream); err != nil {
			return err
		}
		if meta.Sequence.Stream >= to || meta.NumPending == 0 {
			return nil
		}
	}
}

func (ex *export) message(m jetstream.Msg, streamSeq uint64) error {
	events, err := subjects.DecodeEvents(m.Data())
	if err != nil {
		ex.r.cfg.Log.Error().Err(err).Uint64("stream_seq", streamSeq).Msg("replay: a message in the history does not decode; left out")
		return nil
	}
	for i := range events {
		e := &events[i]
		if !ex.r.cfg.Filter.Match(e.Tenant, e.Group) {
			continue
		}
		if streamSeq < ex.start {
			ex.before(e)
			continue
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
		if err := ex.in(e); err != nil {
			return err
		}
	}
	return nil
}
