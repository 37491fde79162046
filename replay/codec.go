package replay

import (
	"fmt"
	"math"
	"time"

	"github.com/sisbridge/sisbridge/internal/mpcheck"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
	"github.com/vmihailenco/msgpack/v5"
)

// Times in event and base frames are microseconds since the header's Start
// (nil for the zero time): small numbers, exact to the microsecond.
func appendTime(b []byte, t, origin time.Time) []byte {
	if t.IsZero() {
		return append(b, msgpackNil)
	}
	return appendInt(b, t.Sub(origin).Microseconds())
}

// appendEvent encodes an event frame body:
// [tenant, group, seq, at, epoch, op, call, position, extra] where extra is
// the session (enqueue), the cause (remove) or nil (move).
func appendEvent(b []byte, e *subjects.Event, origin time.Time) []byte {
	c := &e.Change
	b = appendArrayLen(b, 9)
	b = appendStr(appendStr(b, e.Tenant), e.Group)
	b = appendTime(appendUint(b, e.Seq), e.Time, origin)
	b = appendUint(appendUint(b, e.Epoch), uint64(c.Op))
	b = appendUint(appendStr(b, c.CallID), uint64(max(c.Position, 0)))
	switch c.Op {
	case queue.OpEnqueue:
		return appendSession(b, &c.Session, "", origin)
	case queue.OpRemove:
		return appendUint(b, uint64(c.Cause))
	}
	return append(b, msgpackNil)
}

// appendSession encodes [call, preferred agent, media, time entered queue,
// customer information, dialed number, [label, data, label, data, ...]].
func appendSession(b []byte, s *queue.Session, call string, origin time.Time) []byte {
	b = appendStr(appendArrayLen(b, 7), call)
	b = appendUint(appendInt(b, int64(s.PreferredAgentID)), uint64(s.MediaType))
	b = appendTime(b, s.TimeEnteredQueue, origin)
	b = appendStr(appendStr(b, s.CustomerInformation), s.DialedNumber)
	b = appendArrayLen(b, 2*len(s.IVRInformation))
	for _, iv := range s.IVRInformation {
		b = appendStr(appendStr(b, iv.Label), iv.Data)
	}
	return b
}

// appendBase encodes [tenant, group, seq, at, [session, ...]].
func appendBase(b []byte, base *Base, origin time.Time) []byte {
	b = appendStr(appendStr(appendArrayLen(b, 5), base.Tenant), base.Group)
	b = appendTime(appendUint(b, base.Seq), base.Time, origin)
	b = appendArrayLen(b, len(base.Sessions))
	for i := range base.Sessions {
		b = appendSession(b, &base.Sessions[i], base.Sessions[i].CallID, origin)
	}
	return b
}

// decoder decodes frame bodies; it interns tenant and group IDs, which
// every event repeats.
type decoder struct {
	origin time.Time
	ids    map[string]string
}

func newDecoder(origin time.Time) *decoder {
	return &decoder{origin: origin, ids: map[string]string{}}
}

func (d *decoder) id(w *wire) string {
	b := w.strBytes()
	if s, ok := d.ids[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.ids) < 1<<16 {
		d.ids[s] = s
	}
	return s
}

func (d *decoder) time(w *wire) time.Time {
	if w.isNil() {
		return time.Time{}
	}
	us := w.int()
	if us > math.MaxInt64/1000 || us < math.MinInt64/1000 {
		w.fail(fmt.Errorf("time %dµs out of range", us))
	}
	return d.origin.Add(time.Duration(us) * time.Microsecond)
}

// event decodes an event frame body into e, overwriting all of it.
func (d *decoder) event(body []byte, e *subjects.Event) error {
	w := &wire{b: body}
	w.expect(9, "event")
	e.Tenant, e.Group = d.id(w), d.id(w)
	e.Seq = w.uint(math.MaxUint64)
	e.Time = d.time(w)
	e.Epoch = w.uint(math.MaxUint64)
	c := &e.Change
	*c = queue.Change{Op: queue.Op(w.uint(uint64(queue.OpRemove))), CallID: w.str(), Position: int(w.uint(math.MaxInt32))}
	switch {
	case w.err != nil:
	case c.Op == queue.OpEnqueue:
		d.session(w, &c.Session)
		c.Session.CallID = "" // the event's CallID names it
	case c.Op == queue.OpRemove:
		c.Cause = queue.RemoveCause(w.uint(math.MaxUint8))
	case c.Op == queue.OpMove:
		if !w.isNil() {
			w.fail(fmt.Errorf("move: want nil after the position"))
		}
	default:
		w.fail(fmt.Errorf("unknown op %d", c.Op))
	}
	return finish(w, "event")
}

func (d *decoder) session(w *wire, s *queue.Session) {
	w.expect(7, "session")
	s.CallID = w.str()
	s.PreferredAgentID = int(w.int())
	s.MediaType = queue.MediaType(w.uint(math.MaxUint8))
	s.TimeEnteredQueue = d.time(w)
	s.CustomerInformation, s.DialedNumber = w.str(), w.str()
	n := w.arrayLen()
	if n%2 != 0 {
		w.fail(fmt.Errorf("IVR information: odd item count %d", n))
	}
	if n == 0 || w.err != nil {
		return
	}
	s.IVRInformation = make([]queue.IVRInfo, n/2)
	for i := range s.IVRInformation {
		s.IVRInformation[i] = queue.IVRInfo{Label: w.str(), Data: w.str()}
	}
}

func (d *decoder) base(body []byte) (*Base, error) {
	w := &wire{b: body}
	w.expect(5, "base")
	b := &Base{Tenant: d.id(w), Group: d.id(w), Seq: w.uint(math.MaxUint64), Time: d.time(w)}
	n := w.arrayLen()
	if w.err == nil {
		b.Sessions = make([]queue.Session, n)
	}
	for i := range b.Sessions {
		d.session(w, &b.Sessions[i])
		b.Sessions[i].ServiceGroupID, b.Sessions[i].QueuePosition = b.Group, i+1
		if w.err != nil {
			break
		}
	}
	return b, finish(w, "base")
}

func finish(w *wire, what string) error {
	if w.err == nil && len(w.b) > 0 {
		w.fail(fmt.Errorf("%d bytes after the value", len(w.b)))
	}
	if w.err != nil {
		return fmt.Errorf("%s: %w", what, w.err)
	}
	return nil
}

// Header, directory, status and trailer frames are msgpack maps with the
// keys their types' tags name: rare, and readable by any msgpack tool.
func encodeTagged(v any) ([]byte, error) { return msgpack.Marshal(v) }

func decodeTagged(body []byte, v any, what string) error {
	if err := mpcheck.Bounds(body); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if err := msgpack.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

func decodeHeader(body []byte) (Header, error) {
	var h Header
	err := decodeTagged(body, &h, "header")
	h.Created, h.Start = h.Created.UTC(), h.Start.UTC()
	return h, err
}

func decodeStatus(body []byte) (subjects.RouterStatus, error) {
	var s subjects.RouterStatus
	err := decodeTagged(body, &s, "status")
	s.Since, s.Updated = s.Since.UTC(), s.Updated.UTC()
	return s, err
}

func decodeTrailer(body []byte) (Trailer, error) {
	var t Trailer
	err := decodeTagged(body, &t, "trailer")
	t.First, t.Last, t.End = t.First.UTC(), t.Last.UTC(), t.End.UTC()
	return t, err
}
