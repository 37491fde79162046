package subjects

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/queue"
)

// History reads and writes what the bus keeps of each group: snapshots in
// BucketSnapshots and events in StreamEvents. The streams must exist
// (Ensure). It is safe for concurrent use.
type History struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	snaps  jetstream.ObjectStore

	undecodable atomic.Uint64 // messages walks skipped: see Undecodable
}

// GroupState is a group's queue rebuilt from the bus.
type GroupState struct {
	// Queue holds the sessions.
	Queue *queue.Queue
	// Seq is the group sequence number the queue reflects (0: no history).
	Seq uint64
	// StreamSeq is the stream sequence of the last event applied, or the
	// snapshot's hint: later events of the group come after it.
	StreamSeq uint64
	// SnapshotSeq is the sequence number of the snapshot the state started
	// from (0: none).
	SnapshotSeq uint64
	// Newest is the sequence number of the newest stored event; it exceeds
	// Seq only when loading stopped at a gap.
	Newest uint64
	// NewestStreamSeq is the stream sequence of the group's last message
	// (0: none): where its next message follows.
	NewestStreamSeq uint64
}

// OpenHistory binds to the events stream and the snapshot store.
func OpenHistory(ctx context.Context, js jetstream.JetStream) (*History, error) {
	stream, err := js.Stream(ctx, StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", StreamEvents, err)
	}
	snaps, err := js.ObjectStore(ctx, BucketSnapshots)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", BucketSnapshots, err)
	}
	return &History{js: js, stream: stream, snaps: snaps}, nil
}

// Republishes reports an error unless the events stream republishes every
// stored event on the live subjects (AllLive), as Ensure configures it: a
// reader that follows the live subjects of a stream that does not would
// hear nothing.
func (h *History) Republishes() error {
	rp := h.stream.CachedInfo().Config.RePublish
	if rp == nil || rp.Source != AllEvents || rp.Destination != AllLive || rp.HeadersOnly {
		return fmt.Errorf("%w: stream %s does not republish %s to %s (it was made by an older adapter: start the router adapter of this version once, it updates the stream)",
			ErrSchema, StreamEvents, AllEvents, AllLive)
	}
	return nil
}

// snapshotAttempts bounds the reading of a snapshot. A read that meets the
// snapshot's replacement (the writer purges the old chunks) waits for chunks
// that are gone, or sees a digest mismatch; so each attempt has a deadline
// scaled to the snapshot's size (a 10,000-session snapshot reads in tens of
// milliseconds), doubled at each attempt, and the next attempt reads the new
// snapshot.
const snapshotAttempts = 5

func snapshotDeadline(size uint64, attempt int) time.Duration {
	base := 250*time.Millisecond + time.Duration(size/(8<<20))*time.Second
	return base << (attempt - 1)
}

// Snapshot returns a group's latest snapshot; found is false when it has none.
func (h *History) Snapshot(ctx context.Context, tenant, group string) (s Snapshot, found bool, err error) {
	var data []byte
	name := SnapshotName(tenant, group)
	for attempt := 1; attempt <= snapshotAttempts; attempt++ {
		var info *jetstream.ObjectInfo
		if info, err = h.snaps.GetInfo(ctx, name); err != nil {
			break
		}
		actx, cancel := context.WithTimeout(ctx, snapshotDeadline(info.Size, attempt))
		data, err = h.snaps.GetBytes(actx, name)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, jetstream.ErrObjectNotFound) {
			break
		}
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Snapshot{Tenant: tenant, Group: group}, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("load snapshot %s.%s: %w", tenant, group, err)
	}
	if s, err = DecodeSnapshot(data); err != nil {
		return s, false, fmt.Errorf("load snapshot %s.%s: %w", tenant, group, err)
	}
	if s.Tenant != tenant || s.Group != group {
		return s, false, fmt.Errorf("load snapshot %s.%s: %w: holds %s.%s", tenant, group, ErrSchema, s.Tenant, s.Group)
	}
	return s, true, nil
}

// PutSnapshot stores s as its group's latest snapshot.
func (h *History) PutSnapshot(ctx context.Context, s *Snapshot) error {
	data, err := EncodeSnapshot(s)
	if err != nil {
		return fmt.Errorf("encode snapshot %s.%s: %w", s.Tenant, s.Group, err)
	}
	if _, err := h.snaps.PutBytes(ctx, SnapshotName(s.Tenant, s.Group), data); err != nil {
		return fmt.Errorf("store snapshot %s.%s at %d: %w", s.Tenant, s.Group, s.Seq, err)
	}
	return nil
}

// Load rebuilds a group's queue: its latest snapshot, then every later
// event in order. A missing sequence number in the events returns an error
// wrapping ErrGap with the state up to the gap.
func (h *History) Load(ctx context.Context, tenant, group string) (GroupState, error) {
	snap, _, err := h.Snapshot(ctx, tenant, group)
	if err != nil {
		return GroupState{}, err
	}
	st, err := FromSnapshot(&snap)
	if err != nil {
		return st, fmt.Errorf("load snapshot %s.%s: %w", tenant, group, err)
	}
	last, err := h.lastEvent(ctx, tenant, group)
	if last != nil {
		st.NewestStreamSeq = last.streamSeq
	}
	if err == nil && last != nil && last.undecodable {
		// Someone else's message ends the subject: the end is wherever the
		// events before it end (Replay skips what is no event).
		err = h.Replay(ctx, tenant, group, st.StreamSeq+1, last.streamSeq, st.Apply)
		st.Newest = st.Seq
		if err != nil {
			return st, fmt.Errorf("load events %s.%s after %d: %w", tenant, group, st.Seq, err)
		}
		return st, nil
	}
	if err != nil || last == nil || last.Seq <= st.Seq {
		if last != nil && last.Seq == st.Seq { // the snapshot's hint may be older
			st.StreamSeq = max(st.StreamSeq, last.streamSeq)
		}
		st.Newest = st.Seq
		return st, err
	}
	st.Newest = last.Seq
	err = h.Replay(ctx, tenant, group, st.StreamSeq+1, last.streamSeq, st.Apply)
	if err != nil {
		return st, fmt.Errorf("load events %s.%s after %d: %w", tenant, group, st.Seq, err)
	}
	return st, nil
}

// FromSnapshot returns the state a snapshot holds; later events follow with
// Apply.
func FromSnapshot(s *Snapshot) (GroupState, error) {
	st := GroupState{Queue: queue.New(s.Group), Seq: s.Seq, StreamSeq: s.StreamSeq, SnapshotSeq: s.Seq}
	for _, ss := range s.Sessions {
		if _, err := st.Queue.Apply(queue.Change{Op: queue.OpEnqueue, CallID: ss.CallID, Session: ss}); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Apply applies the group's next event; older ones (already in the state)
// are skipped, a later one is an error wrapping ErrGap.
func (st *GroupState) Apply(e *Event, streamSeq uint64) error {
	switch {
	case e.Seq <= st.Seq:
		return nil
	case e.Seq > st.Seq+1:
		return fmt.Errorf("%w: after %d comes %d", ErrGap, st.Seq, e.Seq)
	}
	if _, err := st.Queue.Apply(e.Change); err != nil {
		return fmt.Errorf("event %d: %w", e.Seq, err)
	}
	st.Seq, st.StreamSeq = e.Seq, streamSeq
	return nil
}

type lastEvent struct {
	Event
	streamSeq   uint64
	undecodable bool // the last message is no event (Event is empty)
}

// lastEvent returns the group's newest stored event, or nil when it has
// none; a last message that is no event is returned as undecodable (and
// counted as Walk counts those it skips).
func (h *History) lastEvent(ctx context.Context, tenant, group string) (*lastEvent, error) {
	msg, err := h.stream.GetLastMsgForSubject(ctx, Events(tenant, group))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last event of %s.%s: %w", tenant, group, err)
	}
	events, err := DecodeEvents(msg.Data)
	if err != nil {
		return &lastEvent{streamSeq: msg.Sequence, undecodable: true}, nil
	}
	return &lastEvent{Event: events[len(events)-1], streamSeq: msg.Sequence}, nil
}

// Replay calls fn for every stored change of the group in the messages with
// a stream sequence from..to (inclusive; to 0 means up to the newest), in
// order; the changes of one message share its stream sequence (Walk on the
// group's subject).
func (h *History) Replay(ctx context.Context, tenant, group string, from, to uint64, fn func(e *Event, streamSeq uint64) error) error {
	return h.Walk(ctx, Events(tenant, group), from, to, fn)
}
