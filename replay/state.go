package replay

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// StateHash is the hex SHA-256 of the queues of a set of groups, as a
// capture's trailer records it. Groups are taken in byte order of their
// ServiceGroupID; a group with an empty queue contributes nothing, so an
// empty group and an absent one hash alike. Each other group contributes
// its ID and its session count, then for each session in queue order: its
// position (1, 2, ...), CallID, MediaType, PreferredAgentID,
// CustomerInformation, DialedNumber and IVR pairs. TimeEnteredQueue is left
// out: playback shifts it. Integers are uvarints, strings a uvarint length
// and the bytes (the layout is in docs/replay.md).
func StateHash(groups map[string][]queue.Session) string {
	h := sha256.New()
	var buf []byte
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		sessions := groups[id]
		if len(sessions) == 0 {
			continue
		}
		buf = hashStr(buf[:0], id)
		buf = binary.AppendUvarint(buf, uint64(len(sessions)))
		for i := range sessions {
			buf = hashSession(buf, i+1, &sessions[i])
			buf = flushHash(h, buf)
		}
		buf = flushHash(h, buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashSession(b []byte, pos int, s *queue.Session) []byte {
	b = binary.AppendUvarint(b, uint64(pos))
	b = hashStr(b, s.CallID)
	b = binary.AppendUvarint(b, uint64(s.MediaType))
	b = binary.AppendVarint(b, int64(s.PreferredAgentID))
	b = hashStr(hashStr(b, s.CustomerInformation), s.DialedNumber)
	b = binary.AppendUvarint(b, uint64(len(s.IVRInformation)))
	for _, iv := range s.IVRInformation {
		b = hashStr(hashStr(b, iv.Label), iv.Data)
	}
	return b
}

func hashStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func flushHash(h hash.Hash, b []byte) []byte {
	if len(b) > 0 {
		h.Write(b)
	}
	return b[:0]
}

// tracker follows the queues a capture describes: what the writer checks
// each event against, and what its trailer and Inspect report.
type tracker struct {
	groups      map[string]*tracked
	counts      Counts
	first, last time.Time
}

type tracked struct {
	tenant string
	q      *queue.Queue
	seq    uint64
}

func newTracker() *tracker { return &tracker{groups: map[string]*tracked{}} }

// base sets a group's queue.
func (t *tracker) base(b *Base) error {
	q := queue.New(b.Group)
	if _, _, err := q.Reconcile(b.Sessions); err != nil {
		return fmt.Errorf("%w: base of %s: %v", ErrState, b.Group, err)
	}
	t.groups[b.Group] = &tracked{tenant: b.Tenant, q: q, seq: b.Seq}
	t.counts.Bases++
	return nil
}

// event applies a change; it must be the next of its group's sequence.
func (t *tracker) event(e *subjects.Event) (queue.Effect, error) {
	g, ok := t.groups[e.Group]
	switch {
	case !ok:
		return queue.Effect{}, fmt.Errorf("%w: event %d of %s: no base for the group", ErrState, e.Seq, e.Group)
	case e.Seq != g.seq+1:
		return queue.Effect{}, fmt.Errorf("%w: event %d of %s follows %d", ErrState, e.Seq, e.Group, g.seq)
	}
	eff, err := g.q.Apply(e.Change)
	if err != nil {
		return eff, fmt.Errorf("%w: event %d of %s: %v", ErrState, e.Seq, e.Group, err)
	}
	g.seq = e.Seq
	t.count(e)
	return eff, nil
}

func (t *tracker) count(e *subjects.Event) {
	t.counts.Events++
	switch e.Change.Op {
	case queue.OpEnqueue:
		t.counts.Enqueues++
	case queue.OpMove:
		t.counts.Moves++
	default:
		t.counts.Removes++
	}
	if t.first.IsZero() {
		t.first = e.Time
	}
	t.last = e.Time
}

// sessions returns every group's queue.
func (t *tracker) sessions() map[string][]queue.Session {
	out := make(map[string][]queue.Session, len(t.groups))
	for id, g := range t.groups {
		out[id] = g.q.Sessions()
	}
	return out
}

// trailer summarises the capture so far.
func (t *tracker) trailer(end time.Time, ended string) Trailer {
	tr := Trailer{Counts: t.counts, First: t.first, Last: t.last, End: end, Seqs: map[string]uint64{}, Ended: ended}
	for id, g := range t.groups {
		tr.Seqs[id] = g.seq
		tr.Sessions += g.q.Len()
	}
	tr.Hash = StateHash(t.sessions())
	return tr
}
