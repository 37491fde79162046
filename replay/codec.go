package replay

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sisbridge/sisbridge/internal/msgpackwire"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
	"github.com/vmihailenco/msgpack/v5"
)

// Event and base frames are msgpack arrays written and read by hand: no
// keys, no reflection, so that a frame is small and playing one costs
// little. Only arrays, unsigned and signed integers, strings and nil occur.

// Times in event and base frames are microseconds since the header's Start
// (nil for the zero time): small numbers, exact to the microsecond.
func appendTime(b []byte, t, origin time.Time) []byte {
	if t.IsZero() {
		return msgpackwire.AppendNil(b)
	}
	return msgpackwire.AppendInt(b, t.Sub(origin).Microseconds())
}

// appendEvent encodes an event frame body:
// [tenant, group, seq, at, epoch, op, call, position, extra] where extra is
// the session (enqueue), the cause (remove) or nil (move).
func appendEvent(b []byte, e *subjects.Event, origin time.Time) []byte {
	c := &e.Change
	b = msgpackwire.AppendArrayLen(b, 9)
	b = msgpackwire.AppendStr(msgpackwire.AppendStr(b, e.Tenant), e.Group)
	b = appendTime(msgpackwire.AppendUint(b, e.Seq), e.Time, origin)
	b = msgpackwire.AppendUint(msgpackwire.AppendUint(b, e.Epoch), uint64(c.Op))
	b = msgpackwire.AppendUint(msgpackwire.AppendStr(b, c.CallID), uint64(max(c.Position, 0)))
	switch c.Op {
	case queue.OpEnqueue:
		return appendSession(b, &c.Session, "", origin)
	case queue.OpRemove:
		return msgpackwire.AppendUint(b, uint64(c.Cause))
	}
	return msgpackwire.AppendNil(b)
}

// appendSession encodes [call, preferred agent, media, time entered queue,
// customer information, dialed number, [label, data, label, data, ...]].
func appendSession(b []byte, s *queue.Session, call string, origin time.Time) []byte {
	b = msgpackwire.AppendStr(msgpackwire.AppendArrayLen(b, 7), call)
	b = msgpackwire.AppendUint(msgpackwire.AppendInt(b, int64(s.PreferredAgentID)), uint64(s.MediaType))
	b = appendTime(b, s.TimeEnteredQueue, origin)
	b = msgpackwire.AppendStr(msgpackwire.AppendStr(b, s.CustomerInformation), s.DialedNumber)
	b = msgpackwire.AppendArrayLen(b, 2*len(s.IVRInformation))
	for _, iv := range s.IVRInformation {
		b = msgpackwire.AppendStr(msgpackwire.AppendStr(b, iv.Label), iv.Data)
	}
	return b
}

// appendBase encodes [tenant, group, seq, at, [session, ...]].
func appendBase(b []byte, base *Base, origin time.Time) []byte {
	b = msgpackwire.AppendArrayLen(b, 5)
	b = msgpackwire.AppendStr(msgpackwire.AppendStr(b, base.Tenant), base.Group)
	b = appendTime(msgpackwire.AppendUint(b, base.Seq), base.Time, origin)
	b = msgpackwire.AppendArrayLen(b, len(base.Sessions))
	for i := range base.Sessions {
		b = appendSession(b, &base.Sessions[i], base.Sessions[i].CallID, origin)
	}
	return b
}

// decoder decodes frame bodies; it interns tenant and group IDs, which
// every event repeats. Its reads stop at the first error, which the frame
// then returns.
type decoder struct {
	origin time.Time
	ids    map[string]string
}

func newDecoder(origin time.Time) *decoder {
	return &decoder{origin: origin, ids: map[string]string{}}
}

func (d *decoder) id(r *msgpackwire.Reader) string {
	b := r.StrBytes()
	if s, ok := d.ids[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.ids) < 1<<16 {
		d.ids[s] = s
	}
	return s
}

func (d *decoder) time(r *msgpackwire.Reader) time.Time {
	if r.IsNil() {
		return time.Time{}
	}
	us := r.Int()
	if us > math.MaxInt64/1000 || us < math.MinInt64/1000 {
		r.Fail(fmt.Errorf("time %dµs %w", us, msgpackwire.ErrRange))
	}
	return d.origin.Add(time.Duration(us) * time.Microsecond)
}

// event decodes an event frame body into e, overwriting all of it.
func (d *decoder) event(body []byte, e *subjects.Event) error {
	var r msgpackwire.Reader
	r.Reset(body)
	expect(&r, 9, "event")
	e.Tenant, e.Group = d.id(&r), d.id(&r)
	e.Seq = r.Uint(math.MaxUint64)
	e.Time = d.time(&r)
	e.Epoch = r.Uint(math.MaxUint64)
	c := &e.Change
	*c = queue.Change{Op: queue.Op(r.Uint(uint64(queue.OpRemove))), CallID: r.Str(), Position: int(r.Uint(math.MaxInt32))}
	switch {
	case r.Err() != nil:
	case c.Op == queue.OpEnqueue:
		d.session(&r, &c.Session)
		c.Session.CallID = "" // the event's CallID names it
	case c.Op == queue.OpRemove:
		c.Cause = queue.RemoveCause(r.Uint(math.MaxUint8))
	case c.Op == queue.OpMove:
		if !r.IsNil() {
			r.Fail(errors.New("move: want nil after the position"))
		}
	default:
		r.Fail(fmt.Errorf("unknown op %d", c.Op))
	}
	return finish(&r, "event")
}

func (d *decoder) session(r *msgpackwire.Reader, s *queue.Session) {
	expect(r, 7, "session")
	s.CallID = r.Str()
	s.PreferredAgentID = int(r.Int())
	s.MediaType = queue.MediaType(r.Uint(math.MaxUint8))
	s.TimeEnteredQueue = d.time(r)
	s.CustomerInformation, s.DialedNumber = r.Str(), r.Str()
	n := r.ArrayLen()
	if n%2 != 0 {
		r.Fail(fmt.Errorf("IVR information: odd item count %d", n))
	}
	if n == 0 || r.Err() != nil {
		return
	}
	s.IVRInformation = make([]queue.IVRInfo, n/2)
	for i := range s.IVRInformation {
		s.IVRInformation[i] = queue.IVRInfo{Label: r.Str(), Data: r.Str()}
	}
}

func (d *decoder) base(body []byte) (*Base, error) {
	var r msgpackwire.Reader
	r.Reset(body)
	expect(&r, 5, "base")
	b := &Base{Tenant: d.id(&r), Group: d.id(&r), Seq: r.Uint(math.MaxUint64), Time: d.time(&r)}
	n := r.ArrayLen()
	if r.Err() == nil {
		b.Sessions = make([]queue.Session, n)
	}
	for i := range b.Sessions {
		d.session(&r, &b.Sessions[i])
		b.Sessions[i].ServiceGroupID, b.Sessions[i].QueuePosition = b.Group, i+1
		if r.Err() != nil {
			break
		}
	}
	return b, finish(&r, "base")
}

// expect reads an array header and checks its length.
func expect(r *msgpackwire.Reader, n int, what string) {
	if got := r.ArrayLen(); got != n && r.Err() == nil {
		r.Fail(fmt.Errorf("%s: want %d items, found %d", what, n, got))
	}
}

// finish returns the error of a frame's reads, or of bytes after its body.
func finish(r *msgpackwire.Reader, what string) error {
	if err := r.End(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Header, directory, status and trailer frames are msgpack maps with the
// keys their types' tags name: rare, and readable by any msgpack tool.
func encodeTagged(v any) ([]byte, error) { return msgpack.Marshal(v) }

func decodeTagged(body []byte, v any, what string) error {
	if err := msgpackwire.Bounds(body); err != nil {
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
