package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/stats"
	"github.com/sisbridge/sisbridge/subjects"
)

// How a view follows its group: a core NATS subscription to the group's
// live subject (the events stream republishes every stored event there)
// feeds it; nothing on the server is per view beyond that subscription,
// so no consumer limit bounds how many groups a gateway follows. JetStream
// is read only to load the view and to repair it: the subscription is made
// first, the view loads, and the live events that came meanwhile apply on
// top (those the load already holds are skipped). A missing sequence
// number is read back from the stream; a history that no longer fits (an
// adapter that restarted on a stream that had lost its tail) is loaded
// anew and the subscribers are sent the difference.

// maxMisses is how many repairs in a row may fail to close a gap before
// the view is loaded anew.
const maxMisses = 3

// start subscribes to the group's live subject and loads the view in the
// background; the hub calls it once.
func (v *view) start() error {
	nsub, err := v.hub.srv.nc.ChanSubscribe(subjects.Live(v.group.TenantID, v.group.ServiceGroupID), v.hub.feed)
	if err != nil {
		return fmt.Errorf("follow %s: %w", v.group.ServiceGroupID, err)
	}
	v.pmu.Lock()
	v.nsub = nsub
	v.pmu.Unlock()
	v.goLoad()
	return nil
}

// goLoad loads the view in a goroutine of its own, until it succeeds or
// the view stops.
func (v *view) goLoad() {
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		v.loadLoop()
	}()
}

func (v *view) loadLoop() {
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		err := v.load()
		if err == nil || v.ctx.Err() != nil {
			return
		}
		v.failing(err)
		if !sleep(v.ctx, backoff) {
			return
		}
	}
}

// load reads the group's state from the bus and installs it. A history
// with a hole loads up to it, and the load is tried again later.
func (v *view) load() error {
	release, err := v.hub.loads.acquire(v.ctx)
	if err != nil {
		return err
	}
	defer release()
	// The subscription must be in place on the server before the history
	// is read, or an event stored in between would be missed.
	fctx, cancel := context.WithTimeout(v.ctx, 10*time.Second)
	err = v.hub.srv.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return fmt.Errorf("subscribe to live events: %w", err)
	}
	st, err := v.hub.srv.hist.Load(v.ctx, v.group.TenantID, v.group.ServiceGroupID)
	if err != nil && !errors.Is(err, subjects.ErrGap) {
		return err
	}
	var k *stats.Keeper
	if v.statsOn.Load() { // statistics only for views that were asked for them
		var kerr error
		if k, kerr = v.recallWindow(v.ctx, st.Queue.Sessions(), st.Seq, st.StreamSeq); kerr != nil {
			return kerr
		}
	}
	if !v.install(st, k, err) {
		return errStatsWanted
	}
	return err
}

// errStatsWanted: statistics were asked for while the view loaded
// without them; it loads again.
var errStatsWanted = errors.New("statistics asked for while the view loaded: loading again")

// install takes a loaded state: the first time as it is, later as the
// difference from what the subscribers hold; then live events apply again.
// It installs nothing (false) when statistics were asked for since the
// state was read without them.
func (v *view) install(st subjects.GroupState, k *stats.Keeper, loadErr error) bool {
	v.mu.Lock()
	if k == nil && v.statsOn.Load() {
		v.mu.Unlock()
		return false
	}
	v.keeper = k
	v.installs++
	if v.q == nil {
		v.q, v.seq, v.streamSeq = st.Queue, st.Seq, st.StreamSeq
		v.cur.seq = st.Seq
		close(v.ready)
	} else {
		v.rebuild(st)
	}
	// A load that repairs closed no gap for does not make the view follow
	// again: it stays failing until an event applies.
	if loadErr == nil && v.misses < maxMisses {
		v.loadErr, v.broken = nil, time.Time{}
	}
	v.misses = 0
	v.mu.Unlock()
	v.unpause(nil)
	return true
}

// rebuild moves the view to a state loaded anew, sending subscribers the
// changes from what they hold to it; v.mu is held.
func (v *view) rebuild(st subjects.GroupState) {
	v.hub.srv.metrics.rebuilds.Inc()
	v.beforeChange()
	old := queue.New(v.group.ServiceGroupID)
	for _, s := range v.q.Sessions() {
		_, _ = old.Apply(queue.Change{Op: queue.OpEnqueue, CallID: s.CallID, Session: s})
	}
	changes, _, err := old.Reconcile(st.Queue.Sessions())
	v.d.reset(v.kinds[0][1]+v.kinds[1][1] > 0)
	if err != nil { // the loaded queue repeats a CallID: take it as it is
		v.q, changes = st.Queue, nil
	}
	for _, c := range changes {
		_ = v.d.apply(v.q, c) // built from v.q's own state: cannot fail
	}
	v.seq, v.streamSeq = st.Seq, st.StreamSeq
	v.fanout(time.Time{})
}

// onMsg takes a live message (the hub's dispatcher calls it): it decodes
// it, queues its events and registers the view with the flusher.
func (v *view) onMsg(m *nats.Msg) {
	streamSeq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		v.log.Error().Str("header", m.Header.Get(jetstream.SequenceHeader)).Msg("live event without a stream sequence skipped")
		return
	}
	events, err := subjects.DecodeEvents(m.Data)
	if err != nil { // the next event shows a gap, and the repair reports it
		v.log.Error().Err(err).Uint64("stream_seq", streamSeq).Msg("undecodable live event skipped")
		return
	}
	v.pmu.Lock()
	if m.Sub != v.nsub {
		v.pmu.Unlock()
		return
	}
	for _, e := range events {
		v.pending = append(v.pending, event{Event: e, streamSeq: streamSeq})
	}
	v.registerLocked()
}

// registerLocked registers the view with the flusher if it has events to
// apply; it unlocks v.pmu.
func (v *view) registerLocked() {
	register := !v.paused && !v.queued && len(v.pending) > 0
	if register {
		v.queued = true
	}
	v.pmu.Unlock()
	if register {
		v.hub.srv.flush.addView(v)
	}
}

// pause stops applying events and puts back those not applied.
func (v *view) pause(rest []event) {
	v.pmu.Lock()
	v.paused = true
	v.pending = append(rest, v.pending...)
	v.pmu.Unlock()
}

// unpause applies events again, first the repaired ones.
func (v *view) unpause(repaired []event) {
	v.pmu.Lock()
	v.paused = false
	if len(repaired) > 0 {
		v.pending = append(repaired, v.pending...)
	}
	v.registerLocked()
}

// repair acts on a gap or a history that no longer fits; the view is
// paused and v.mu is held.
func (v *view) repair(trouble error) {
	var gap errGap
	if !errors.As(trouble, &gap) || v.misses >= maxMisses {
		v.failingLocked(trouble)
		v.goLoad()
		return
	}
	if v.misses > 0 {
		v.failingLocked(trouble)
	}
	v.misses++
	v.goFetch(v.streamSeq+1, gap.streamSeq-1, time.Duration(v.misses-1)*200*time.Millisecond)
}

// catchUp reads whatever the stream holds after the view's last event: a
// live message may have been lost (a reconnection, a dropped message) and
// no later one has shown the gap yet.
func (v *view) catchUp() {
	v.pmu.Lock()
	if v.paused {
		v.pmu.Unlock()
		return
	}
	v.paused = true
	v.pmu.Unlock()
	v.mu.Lock()
	from := v.streamSeq + 1
	v.mu.Unlock()
	v.goFetch(from, 0, 0)
}

// goFetch reads the group's events from..to (to 0: the newest) from the
// stream after a delay, then applies them ahead of the live ones. A read
// that fails loads the view anew.
func (v *view) goFetch(from, to uint64, delay time.Duration) {
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		if !sleep(v.ctx, delay) {
			return
		}
		events, err := v.fetch(from, to)
		if err != nil {
			if v.ctx.Err() == nil {
				v.failing(err)
				v.loadLoop()
			}
			return
		}
		v.hub.srv.metrics.repairs.Inc()
		v.unpause(events)
	}()
}

// fetch reads the group's events in a range of stream sequences.
func (v *view) fetch(from, to uint64) ([]event, error) {
	var out []event
	if to != 0 && to < from {
		return nil, nil
	}
	release, err := v.hub.loads.acquire(v.ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	err = v.hub.srv.hist.Walk(v.ctx, subjects.Events(v.group.TenantID, v.group.ServiceGroupID), from, to,
		func(e *subjects.Event, streamSeq uint64) error {
			out = append(out, event{Event: *e, streamSeq: streamSeq})
			return nil
		})
	return out, err
}

// failing notes that the view does not follow its group, and why.
func (v *view) failing(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.failingLocked(err)
}

// failingLocked is failing with v.mu held.
func (v *view) failingLocked(err error) {
	v.log.Warn().Err(err).Msg("group view does not follow its group; repairing")
	v.hub.srv.metrics.viewFaults.Inc()
	v.loadErr = err
	if v.broken.IsZero() {
		v.broken = time.Now()
	}
}

// followErr says why the view does not follow its group (nil while it
// does) and since when.
func (v *view) followErr() (time.Time, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.broken, v.loadErr
}
