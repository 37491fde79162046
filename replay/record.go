package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// RecordConfig says what a Recorder records.
type RecordConfig struct {
	// Filter records only the tenants and groups it passes.
	Filter Filter
	// Source describes the bus in the header, e.g. the NATS URL (without
	// credentials). Default "nats".
	Source string
	// FlushInterval is how often buffered frames are written to the file.
	// Default 250 ms.
	FlushInterval time.Duration
	// Log receives what the recorder cannot write (a message that does not
	// decode, a gap it heals). Default: discards.
	Log zerolog.Logger
}

// WithDefaults returns c with every unset field at its default.
func (c RecordConfig) WithDefaults() RecordConfig {
	if c.Source == "" {
		c.Source = "nats"
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 250 * time.Millisecond
	}
	return c
}

// Validate reports every problem of c at once.
func (c RecordConfig) Validate() error {
	var errs []error
	if c.FlushInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("flush interval %s: want at least 1ms", c.FlushInterval))
	}
	if err := c.Filter.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Recorder writes captures of a bus: live (Live) or from the history
// JetStream keeps (History). Progress is safe to call while either runs.
type Recorder struct {
	js     jetstream.JetStream
	cfg    RecordConfig
	hist   *subjects.History
	stream jetstream.Stream
	dir    jetstream.KeyValue
	status jetstream.KeyValue

	events, bases atomic.Uint64
	bytes         atomic.Int64
	mu            sync.Mutex
	seqs          map[string]uint64
}

// RecordProgress is how far a recording has got.
type RecordProgress struct {
	// Events counts the changes written; Bases the group queues.
	Events, Bases uint64
	// Bytes is the size of the capture so far.
	Bytes int64
	// Seqs is the sequence number written last for each group.
	Seqs map[string]uint64
}

// NewRecorder binds to the bus's stream and buckets; it fails with ErrNoBus
// when the server holds none.
func NewRecorder(ctx context.Context, js jetstream.JetStream, cfg RecordConfig) (*Recorder, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("record config: %w", err)
	}
	r := &Recorder{js: js, cfg: cfg, seqs: map[string]uint64{}}
	var err error
	if r.stream, err = js.Stream(ctx, subjects.StreamEvents); errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: stream %s not found (has a router adapter ever run on this server?)", ErrNoBus, subjects.StreamEvents)
	}
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", subjects.StreamEvents, err)
	}
	if r.hist, err = subjects.OpenHistory(ctx, js); err != nil {
		return nil, err
	}
	if r.dir, err = js.KeyValue(ctx, subjects.BucketDirectory); err != nil {
		return nil, fmt.Errorf("%w: bucket %s: %v", ErrNoBus, subjects.BucketDirectory, err)
	}
	if r.status, err = js.KeyValue(ctx, subjects.BucketRouter); err != nil {
		return nil, fmt.Errorf("%w: bucket %s: %v", ErrNoBus, subjects.BucketRouter, err)
	}
	return r, nil
}

// Progress returns how far the current or last recording has got.
func (r *Recorder) Progress() RecordProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RecordProgress{Events: r.events.Load(), Bases: r.bases.Load(), Bytes: r.bytes.Load(), Seqs: maps.Clone(r.seqs)}
}

func (r *Recorder) wrote(w *Writer, group string, seq uint64) {
	r.mu.Lock()
	r.seqs[group] = seq
	r.mu.Unlock()
	r.bytes.Store(w.Bytes())
}

// filterSubjects are the subjects a consumer of the filter's events reads.
func (r *Recorder) filterSubjects() []string {
	f := r.cfg.Filter
	var out []string
	switch {
	case len(f.Groups) > 0:
		for _, g := range f.Groups {
			out = append(out, subjects.Events("*", g))
		}
	case len(f.Tenants) > 0:
		for _, t := range f.Tenants {
			out = append(out, subjects.TenantEvents(t))
		}
	default:
		out = []string{subjects.AllEvents}
	}
	return out
}

// directory reads the directory, keeping what the filter passes.
func (r *Recorder) directory(ctx context.Context) (Directory, error) {
	d, err := subjects.ReadDirectory(ctx, r.dir)
	if err != nil {
		return Directory{}, err
	}
	var out Directory
	used := map[string]bool{}
	for _, g := range d.Groups {
		if r.cfg.Filter.Match(g.TenantID, g.ServiceGroupID) {
			out.Groups = append(out.Groups, g)
			used[g.TenantID] = true
		}
	}
	for _, t := range d.Tenants {
		if used[t.TenantID] {
			out.Tenants = append(out.Tenants, t)
		}
	}
	slices.SortFunc(out.Tenants, func(a, b subjects.Tenant) int { return cmp.Compare(a.TenantID, b.TenantID) })
	slices.SortFunc(out.Groups, func(a, b subjects.Group) int { return cmp.Compare(a.ServiceGroupID, b.ServiceGroupID) })
	return out, r.cfg.Filter.known(d)
}

// known reports the tenants and groups f names that d does not hold.
func (f Filter) known(d subjects.Directory) error {
	var missing []string
	for _, t := range f.Tenants {
		if _, ok := d.Tenants[t]; !ok {
			missing = append(missing, "tenant "+t)
		}
	}
	for _, g := range f.Groups {
		if _, ok := d.Groups[g]; !ok {
			missing = append(missing, "group "+g)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrUnknownFilter, strings.Join(missing, ", "))
	}
	return nil
}

// loadBase writes a group's current queue as its base.
func (r *Recorder) loadBase(ctx context.Context, w *Writer, tenant, group string) error {
	st, err := r.hist.Load(ctx, tenant, group)
	if err != nil {
		return fmt.Errorf("base of %s: %w", group, err)
	}
	return r.writeBase(w, &Base{Tenant: tenant, Group: group, Seq: st.Seq, Time: time.Now().UTC(), Sessions: st.Queue.Sessions()})
}

func (r *Recorder) writeBase(w *Writer, b *Base) error {
	if err := w.Base(b); err != nil {
		return err
	}
	r.bases.Add(1)
	r.wrote(w, b.Group, b.Seq)
	return nil
}

func (r *Recorder) writeEvent(w *Writer, e *subjects.Event) error {
	if err := w.Event(e); err != nil {
		return err
	}
	r.events.Add(1)
	r.wrote(w, e.Group, e.Seq)
	return nil
}

// currentStatus reads the router status; ok is false when none is stored.
func (r *Recorder) currentStatus(ctx context.Context) (subjects.RouterStatus, bool, error) {
	entry, err := r.status.Get(ctx, subjects.RouterStatusKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return subjects.RouterStatus{}, false, nil
	}
	if err != nil {
		return subjects.RouterStatus{}, false, fmt.Errorf("read router status: %w", err)
	}
	st, err := subjects.DecodeStatus(entry.Value())
	return st, err == nil, err
}

func emptyBase(tenant, group string, at time.Time) *Base {
	return &Base{Tenant: tenant, Group: group, Time: at, Sessions: []queue.Session{}}
}
