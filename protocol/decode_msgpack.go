package protocol

import (
	"errors"
	"time"

	"github.com/sisbridge/sisbridge/internal/msgpackwire"
	"github.com/sisbridge/sisbridge/queue"
)

// A client decodes every event it receives: the msgpack path reads events
// straight from the bytes, without reflection, and gives the same Message as
// the reflection decoder would. Keys may come in any order; unknown keys are
// skipped; a key given twice is decoded again into the same field, as by
// reflection. Whatever this decoder does not read exactly as reflection
// does (a reply, a struct sent as an array, a time in another form) it
// declines: it returns an error, and DecodeMessage falls back to
// reflection.

// errDecline declines a message the reader could read: a reply.
var errDecline = errors.New("msgpack: declined by the event decoder")

// The depth of the values of each map, as msgpackwire.Bounds counts it: the
// message is at 0, SessionUpdates at 1, an update at 2, its Session at 3,
// IVRInformation at 4 and its items at 5.
const (
	messageDepth = 1
	updateDepth  = 3
	sessionDepth = 4
	ivrDepth     = 6
)

// maxPrealloc caps the elements allocated for an array before they are read.
const maxPrealloc = 4096

// The members of the enumerations an event carries, which the decoder
// returns without allocating.
var (
	eventNames  = []string{EventSessionsUpdated, EventInitialDataComplete, EventKeepAlive, EventRouterDisconnected, EventQueueStatistics, EventServiceGroupRemoved}
	updateNames = names([]queue.UpdateType{queue.UpdateAdd, queue.UpdateModify, queue.UpdateRemove})
	causeNames  = names(queue.RemoveCauses)
	mediaNames  = names(queue.MediaTypes)
)

// names returns the member names of an enumeration.
func names[T interface{ String() string }](members []T) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = m.String()
	}
	return out
}

// intern returns the member of names equal to b, or else b as a new string.
func intern(b []byte, names []string) string {
	for _, n := range names {
		if string(b) == n {
			return n
		}
	}
	return string(b)
}

// decodeEventMsgpack decodes an event; false when the message is no event
// or is left to the reflection decoder.
func decodeEventMsgpack(data []byte) (Message, bool) {
	var m Message
	err := decodeMessageMsgpack(data, &m)
	return m, err == nil && m.Event != ""
}

// decodeMessageMsgpack decodes a message as the reflection decoder would,
// or declines it. It checks every length against the data and fails
// wherever msgpackwire.Bounds fails: on nesting deeper than
// msgpackwire.MaxDepth, on an unknown type code, or on bytes after the
// message.
func decodeMessageMsgpack(data []byte, m *Message) error {
	var r eventReader
	r.Reset(data)
	if err := r.message(m); err != nil {
		return err
	}
	return r.End()
}

// eventReader reads the values of events as the reflection decoder does.
type eventReader struct {
	msgpackwire.Reader
}

// message reads a Message; a reply's keys decline it, and nil reads as an
// empty Message, which has no event.
func (r *eventReader) message(m *Message) error {
	return readStruct(r, m, func(key []byte) error {
		switch string(key) {
		case "event":
			if m.Event = r.enum(eventNames); m.Event == EventQueueStatistics {
				return errDecline // rare (a second at most per group): left to reflection
			}
		case "ServiceGroupID":
			m.ServiceGroupID = r.text("")
		case "Seq":
			m.Seq = uint64(r.int()) // negative ones wrap, as with reflection
		case "SessionUpdates":
			group := m.ServiceGroupID // which the sessions' usually repeat
			return readArray(r, &m.SessionUpdates, func(u *SessionUpdate) error { return r.update(u, group) })
		case "id", "result", "fault", "Seqs":
			return errDecline // a reply or a KeepAlive's Seqs: rare, left to reflection
		default:
			r.Skip(messageDepth)
		}
		return nil
	})
}

// update reads a SessionUpdate into *u.
func (r *eventReader) update(u *SessionUpdate, group string) error {
	return readStruct(r, u, func(key []byte) error {
		switch string(key) {
		case "UpdateType":
			u.UpdateType = r.enum(updateNames)
		case "Session":
			return r.session(&u.Session, group)
		case "RemoveCause":
			u.RemoveCause = r.enum(causeNames)
		default:
			r.Skip(updateDepth)
		}
		return nil
	})
}

// session reads a SessionInfo into *s; a ServiceGroupID equal to group
// shares its string.
func (r *eventReader) session(s *SessionInfo, group string) error {
	return readStruct(r, s, func(key []byte) error {
		switch string(key) {
		case "ServiceGroupID":
			s.ServiceGroupID = r.text(group)
		case "CallID":
			s.CallID = r.text("")
		case "QueuePosition":
			s.QueuePosition = int(r.int())
		case "PreferredAgentID":
			s.PreferredAgentID = int(r.int())
		case "MediaType":
			s.MediaType = r.enum(mediaNames)
		case "TimeEnteredQueue":
			s.TimeEnteredQueue = r.time()
		case "CustomerInformation":
			s.CustomerInformation = r.text("")
		case "DialedNumber":
			s.DialedNumber = r.text("")
		case "IVRInformation":
			return readArray(r, &s.IVRInformation, r.ivr)
		default:
			r.Skip(sessionDepth)
		}
		return nil
	})
}

// ivr reads an IVRInfo into *iv.
func (r *eventReader) ivr(iv *IVRInfo) error {
	return readStruct(r, iv, func(key []byte) error {
		switch string(key) {
		case "Label":
			iv.Label = r.text("")
		case "Data":
			iv.Data = r.text("")
		default:
			r.Skip(ivrDepth)
		}
		return nil
	})
}

// readStruct reads a map into the struct *v, in place as the reflection
// decoder does: field reads the value of each key (or declines), and nil
// zeroes *v. (The reflection decoder also takes a struct as an array:
// declined here.)
func readStruct[T any](r *eventReader, v *T, field func(key []byte) error) error {
	if r.IsNil() {
		var zero T
		*v = zero
		return nil
	}
	for range r.MapLen() {
		key := r.bytes()
		if r.Err() != nil {
			break
		}
		if err := field(key); err != nil {
			return err
		}
	}
	return r.Err()
}

// readArray reads an array into *p, item reading each element in place.
// As the reflection decoder does, it reuses the elements of a slice decoded
// before (a key given twice), and nil is a nil slice.
func readArray[T any](r *eventReader, p *[]T, item func(*T) error) error {
	n := -1
	if !r.IsNil() {
		n = r.ArrayLen()
	}
	if err := r.Err(); err != nil {
		return err
	}
	s := resize(*p, n)
	for i := range max(n, 0) {
		if i == len(s) {
			var zero T
			s = append(s, zero)
		}
		if err := item(&s[i]); err != nil {
			return err
		}
	}
	*p = s
	return nil
}

// resize prepares the slice an array of n elements (-1: nil) is decoded
// into as the reflection decoder does, keeping the elements up to its
// capacity; it allocates at most maxPrealloc elements, the caller appends
// the rest as it reads them.
func resize[T any](s []T, n int) []T {
	switch {
	case n < 0:
		return nil
	case n == 0 && s == nil:
		return []T{}
	case cap(s) >= n:
		return s[:n]
	case s == nil:
		return make([]T, min(n, maxPrealloc))
	}
	s = s[:cap(s)] // a key given twice
	return append(s, make([]T, max(min(n, maxPrealloc)-len(s), 0))...)
}

// bytes reads a string as the reflection decoder does: a str or bin
// value, nil as empty. The bytes alias the data.
func (r *eventReader) bytes() []byte {
	if r.IsNil() {
		return nil
	}
	return r.StrOrBin()
}

// text reads a string; a value equal to same returns same.
func (r *eventReader) text(same string) string {
	b := r.bytes()
	if string(b) == same {
		return same
	}
	return string(b)
}

// enum reads a string, returning the member of names it equals if any.
func (r *eventReader) enum(names []string) string { return intern(r.bytes(), names) }

// int reads an integer of any form; nil is 0 and a uint64 above the int64
// range wraps, as with the reflection decoder.
func (r *eventReader) int() int64 {
	if r.IsNil() {
		return 0
	}
	return r.IntWrap()
}

// time reads a timestamp (extension -1) as the reflection decoder does:
// time.Unix in the local zone, but the zero time in UTC; nil is the zero
// time.
func (r *eventReader) time() time.Time {
	if r.IsNil() {
		return time.Time{}
	}
	return r.Time()
}
