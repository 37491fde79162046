package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
)

// Live records the bus into out until ctx is cancelled, then writes the
// trailer. The capture starts with the directory and the current queue of
// every group the filter passes (each rebuilt from its snapshot and later
// events), then holds every later change, and each change of the router
// status (connected or not, epoch). A group that appears while recording
// gets its base when its first change arrives. Out gets whole frames only,
// at least every FlushInterval.
func (r *Recorder) Live(ctx context.Context, out io.Writer) (Trailer, error) {
	info, err := r.stream.Info(ctx)
	if err != nil {
		return Trailer{}, fmt.Errorf("stream info: %w", err)
	}
	// Watch first: a status written after the read below comes through it.
	watch, err := r.status.Watch(ctx, subjects.RouterStatusKey, jetstream.UpdatesOnly())
	if err != nil {
		return Trailer{}, fmt.Errorf("watch router status: %w", err)
	}
	defer func() { _ = watch.Stop() }()
	w, status, err := r.openLive(ctx, out)
	if err != nil {
		return Trailer{}, err
	}
	lv := &live{r: r, w: w, status: status, watch: watch}
	runErr := lv.run(ctx, info.State.LastSeq)
	tr, err := w.Close(time.Now(), "stopped")
	r.bytes.Store(w.Bytes())
	return tr, errors.Join(runErr, err)
}

// openLive writes the header, directory, bases and status.
func (r *Recorder) openLive(ctx context.Context, out io.Writer) (*Writer, subjects.RouterStatus, error) {
	var st subjects.RouterStatus
	dir, err := r.directory(ctx)
	if err != nil {
		return nil, st, err
	}
	w, err := NewWriter(out, Header{Source: r.cfg.Source + " live", Filter: r.cfg.Filter})
	if err != nil {
		return nil, st, err
	}
	if err := w.Directory(dir); err != nil {
		return nil, st, err
	}
	for _, g := range dir.Groups {
		if err := r.loadBase(ctx, w, g.TenantID, g.ServiceGroupID); err != nil {
			return nil, st, err
		}
	}
	st, ok, err := r.currentStatus(ctx)
	if err != nil {
		r.cfg.Log.Warn().Err(err).Msg("replay: router status unreadable")
	}
	if ok {
		err = w.Status(st)
	}
	return w, st, err
}

// live is one live recording.
type live struct {
	r      *Recorder
	w      *Writer
	status subjects.RouterStatus
	watch  jetstream.KeyWatcher
}

func (lv *live) run(ctx context.Context, lastSeq uint64) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: lv.r.filterSubjects(), DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: lastSeq + 1}
	cons, err := lv.r.js.OrderedConsumer(ctx, subjects.StreamEvents, cfg)
	if err != nil {
		return fmt.Errorf("events consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("events consumer: %w", err)
	}
	msgs, errc := make(chan jetstream.Msg, 1024), make(chan error, 1)
	stop, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		pump(it, msgs, stop, errc)
	}()
	defer func() {
		close(stop)
		it.Stop()
		<-exited
	}()
	tick := time.NewTicker(lv.r.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("events consumer: %w", err)
		case m := <-msgs:
			if err := lv.message(ctx, m); err != nil {
				return err
			}
		case e := <-lv.watch.Updates():
			if err := lv.statusEntry(e); err != nil {
				return err
			}
		case <-tick.C:
			if err := lv.w.Flush(); err != nil {
				return err
			}
			lv.r.bytes.Store(lv.w.Bytes())
		}
	}
}

// pump hands the consumer's messages to msgs until stop is closed or the
// iterator fails; a failure goes to errc.
func pump(it jetstream.MessagesContext, msgs chan<- jetstream.Msg, stop <-chan struct{}, errc chan<- error) {
	for {
		m, err := it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				errc <- err
			}
			return
		}
		select {
		case msgs <- m:
		case <-stop:
			return
		}
	}
}

// message writes the changes one bus message carries.
func (lv *live) message(ctx context.Context, m jetstream.Msg) error {
	events, err := subjects.DecodeEvents(m.Data())
	if err != nil {
		lv.r.cfg.Log.Error().Err(err).Str("subject", m.Subject()).Msg("replay: a message on the bus does not decode; left out")
		return nil
	}
	for i := range events {
		if err := lv.event(ctx, &events[i]); err != nil {
			return err
		}
	}
	return nil
}

// event writes one change, first the group's base when the capture has
// none or a change is missing (the base then includes the change).
func (lv *live) event(ctx context.Context, e *subjects.Event) error {
	if !lv.r.cfg.Filter.Match(e.Tenant, e.Group) {
		return nil
	}
	seq, known := lv.w.Seq(e.Group)
	if !known {
		if err := lv.newGroup(ctx, e.Tenant); err != nil {
			return err
		}
	}
	if known && e.Seq > seq+1 {
		lv.r.cfg.Log.Warn().Str("group", e.Group).Uint64("seq", e.Seq).Uint64("after", seq).Msg("replay: gap in the events; reloading the group")
	}
	if !known || e.Seq > seq+1 {
		if err := lv.r.loadBase(ctx, lv.w, e.Tenant, e.Group); err != nil {
			return err
		}
		seq, _ = lv.w.Seq(e.Group)
	}
	if e.Seq <= seq {
		return nil // already in the base
	}
	return lv.r.writeEvent(lv.w, e)
}

// newGroup writes the directory again: a group appeared.
func (lv *live) newGroup(ctx context.Context, tenant string) error {
	dir, err := lv.r.directory(ctx)
	if err != nil {
		return err
	}
	return lv.w.Directory(dir)
}

// statusEntry writes a router status that differs from the last one in
// more than its refresh time.
func (lv *live) statusEntry(e jetstream.KeyValueEntry) error {
	if e == nil || e.Operation() != jetstream.KeyValuePut {
		return nil
	}
	st, err := subjects.DecodeStatus(e.Value())
	if err != nil {
		lv.r.cfg.Log.Warn().Err(err).Msg("replay: router status does not decode")
		return nil
	}
	if st.Connected == lv.status.Connected && st.Epoch == lv.status.Epoch {
		return nil
	}
	lv.status = st
	return lv.w.Status(st)
}
