package protocol

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// A client decodes every event it receives: the msgpack path reads events
// straight from the bytes, without reflection, and gives the same Message as
// the reflection decoder would. Keys may come in any order; unknown keys are
// skipped; a key given twice is decoded again into the same field, as by
// reflection. Whatever this decoder does not read exactly as reflection
// does (a reply, a struct sent as an array, a time in another form) it
// declines, and DecodeMessage falls back to reflection.

// errDecline says the fast decoder does not read a message; it carries no
// detail because the reflection decoder then reads the message again.
var errDecline = errors.New("msgpack: declined by the event decoder")

// maxDepth is the deepest nesting mpcheck.Bounds accepts.
const maxDepth = 32

// The depth of the values of each map, as mpcheck.Bounds counts it: the
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
	eventNames  = []string{EventSessionsUpdated, EventInitialDataComplete, EventKeepAlive, EventRouterDisconnected}
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
// wherever mpcheck.Bounds fails: on nesting deeper than maxDepth, on an
// unknown type code, or on bytes after the message.
func decodeMessageMsgpack(data []byte, m *Message) error {
	r := mpReader{b: data}
	if err := r.message(m); err != nil {
		return err
	}
	if len(r.b) != 0 {
		return errDecline
	}
	return nil
}

// mpReader is a cursor over msgpack data: each method reads one value from
// the front of b.
type mpReader struct {
	b []byte
}

// message reads a Message; a reply's keys decline it, and nil reads as an
// empty Message, which has no event.
func (r *mpReader) message(m *Message) error {
	return readStruct(r, m, func(key []byte) (err error) {
		switch string(key) {
		case "event":
			m.Event, err = r.enum(eventNames)
		case "ServiceGroupID":
			m.ServiceGroupID, err = r.text("")
		case "Seq":
			m.Seq, err = r.uint()
		case "SessionUpdates":
			group := m.ServiceGroupID // which the sessions' usually repeat
			err = readArray(r, &m.SessionUpdates, func(u *SessionUpdate) error { return r.update(u, group) })
		case "id", "result", "fault":
			return errDecline // a reply: rare, left to reflection
		default:
			err = r.skip(messageDepth)
		}
		return err
	})
}

// update reads a SessionUpdate into *u.
func (r *mpReader) update(u *SessionUpdate, group string) error {
	return readStruct(r, u, func(key []byte) (err error) {
		switch string(key) {
		case "UpdateType":
			u.UpdateType, err = r.enum(updateNames)
		case "Session":
			err = r.session(&u.Session, group)
		case "RemoveCause":
			u.RemoveCause, err = r.enum(causeNames)
		default:
			err = r.skip(updateDepth)
		}
		return err
	})
}

// session reads a SessionInfo into *s; a ServiceGroupID equal to group
// shares its string.
func (r *mpReader) session(s *SessionInfo, group string) error {
	return readStruct(r, s, func(key []byte) (err error) {
		switch string(key) {
		case "ServiceGroupID":
			s.ServiceGroupID, err = r.text(group)
		case "CallID":
			s.CallID, err = r.text("")
		case "QueuePosition":
			s.QueuePosition, err = r.intValue()
		case "PreferredAgentID":
			s.PreferredAgentID, err = r.intValue()
		case "MediaType":
			s.MediaType, err = r.enum(mediaNames)
		case "TimeEnteredQueue":
			s.TimeEnteredQueue, err = r.time()
		case "CustomerInformation":
			s.CustomerInformation, err = r.text("")
		case "DialedNumber":
			s.DialedNumber, err = r.text("")
		case "IVRInformation":
			err = readArray(r, &s.IVRInformation, r.ivr)
		default:
			err = r.skip(sessionDepth)
		}
		return err
	})
}

// ivr reads an IVRInfo into *iv.
func (r *mpReader) ivr(iv *IVRInfo) error {
	return readStruct(r, iv, func(key []byte) (err error) {
		switch string(key) {
		case "Label":
			iv.Label, err = r.text("")
		case "Data":
			iv.Data, err = r.text("")
		default:
			err = r.skip(ivrDepth)
		}
		return err
	})
}

// readStruct reads a map into the struct *v, in place as the reflection
// decoder does: field reads the value of each key, and nil zeroes *v. (The
// reflection decoder also takes a struct as an array: declined here.)
func readStruct[T any](r *mpReader, v *T, field func(key []byte) error) error {
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	if n < 0 {
		var zero T
		*v = zero
	}
	for range max(n, 0) {
		key, err := r.str()
		if err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
	return nil
}

// readArray reads an array into *p, item reading each element in place.
// As the reflection decoder does, it reuses the elements of a slice decoded
// before (a key given twice), and nil is a nil slice.
func readArray[T any](r *mpReader, p *[]T, item func(*T) error) error {
	n, err := r.arrayLen()
	if err != nil {
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

// text reads a string; a value equal to same returns same.
func (r *mpReader) text(same string) (string, error) {
	b, err := r.str()
	if err == nil && string(b) == same {
		return same, nil
	}
	return string(b), err
}

// enum reads a string, returning the member of names it equals if any.
func (r *mpReader) enum(names []string) (string, error) {
	b, err := r.str()
	if err != nil {
		return "", err
	}
	return intern(b, names), nil
}

// intValue reads an integer into an int, wrapping as reflection does.
func (r *mpReader) intValue() (int, error) {
	v, err := r.int()
	return int(v), err
}

// uint reads an integer of any form as a uint64; negative ones wrap, as
// with the reflection decoder.
func (r *mpReader) uint() (uint64, error) {
	v, err := r.int()
	return uint64(v), err
}

// int reads an integer of any form; nil is 0 and a uint64 above the int64
// range wraps, as with the reflection decoder.
func (r *mpReader) int() (int64, error) {
	c, err := r.code()
	switch {
	case err != nil:
		return 0, err
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		return int64(int8(c)), nil
	case c == 0xc0:
		return 0, nil
	case c >= 0xcc && c <= 0xcf: // uint 8, 16, 32, 64
		v, err := r.bigEndian(1 << (c - 0xcc))
		return int64(v), err
	case c >= 0xd0 && c <= 0xd3: // int 8, 16, 32, 64
		w := 1 << (c - 0xd0)
		v, err := r.bigEndian(w)
		shift := 64 - 8*w
		return int64(v<<shift) >> shift, err
	}
	return 0, errDecline
}

// time reads a timestamp (extension -1) as the reflection decoder does:
// time.Unix in the local zone, but the zero time in UTC; nil is the zero
// time.
func (r *mpReader) time() (time.Time, error) {
	c, err := r.code()
	if err != nil || c == 0xc0 {
		return time.Time{}, err
	}
	var n uint64
	switch c {
	case 0xd6, 0xd7: // fixext 4, 8
		n = 4 << (c - 0xd6)
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32
		n, err = r.bigEndian(1 << (c - 0xc7))
	default:
		return time.Time{}, errDecline
	}
	if err != nil {
		return time.Time{}, err
	}
	if typ, err := r.code(); err != nil || int8(typ) != -1 {
		return time.Time{}, errDecline
	}
	b, err := r.take(n)
	if err != nil {
		return time.Time{}, err
	}
	return timestamp(b)
}

// timestamp decodes the 32, 64 or 96 bit timestamp payload.
func timestamp(b []byte) (time.Time, error) {
	var t time.Time
	switch len(b) {
	case 4:
		t = time.Unix(int64(binary.BigEndian.Uint32(b)), 0)
	case 8:
		v := binary.BigEndian.Uint64(b)
		t = time.Unix(int64(v&(1<<34-1)), int64(v>>34))
	case 12:
		t = time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b)))
	default:
		return t, errDecline
	}
	if t.IsZero() {
		t = t.UTC() // as the reflection decoder has it
	}
	return t, nil
}

// str reads a str or bin value's bytes, which alias the data; nil is empty.
func (r *mpReader) str() ([]byte, error) {
	c, err := r.code()
	if err != nil {
		return nil, err
	}
	n, err := r.strLen(c)
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// strLen reads the length of a str or bin value of code c.
func (r *mpReader) strLen(c byte) (uint64, error) {
	switch {
	case c&0xe0 == 0xa0: // fixstr
		return uint64(c & 0x1f), nil
	case c >= 0xd9 && c <= 0xdb: // str 8, 16, 32
		return r.bigEndian(1 << (c - 0xd9))
	case c >= 0xc4 && c <= 0xc6: // bin 8, 16, 32
		return r.bigEndian(1 << (c - 0xc4))
	case c == 0xc0:
		return 0, nil
	}
	return 0, errDecline
}

// mapLen reads a map's number of entries; nil is -1.
func (r *mpReader) mapLen() (int, error) { return r.length(0x80, 0xde, 2) }

// arrayLen reads an array's number of elements; nil is -1.
func (r *mpReader) arrayLen() (int, error) { return r.length(0x90, 0xdc, 1) }

// length reads the length of a map or an array: fix is its fix- code
// (length in the low nibble), big its 16-bit code (the 32-bit one follows),
// per the values an entry holds; nil is -1.
func (r *mpReader) length(fix, big byte, per uint64) (int, error) {
	c, err := r.code()
	switch {
	case err != nil:
		return 0, err
	case c&0xf0 == fix:
		return r.count(uint64(c&0x0f), per)
	case c == big || c == big+1:
		n, err := r.bigEndian(2 << (c - big))
		if err != nil {
			return 0, err
		}
		return r.count(n, per)
	case c == 0xc0:
		return -1, nil
	}
	return 0, errDecline
}

// count checks that n items of per values each can fit in the rest of the
// data, at least a byte a value, and returns n.
func (r *mpReader) count(n, per uint64) (int, error) {
	if n*per > uint64(len(r.b)) {
		return 0, errDecline
	}
	return int(n), nil
}

// skip passes over one value of any type at the given nesting depth.
func (r *mpReader) skip(depth int) error {
	if depth > maxDepth {
		return errDecline
	}
	c, err := r.code()
	if err != nil {
		return err
	}
	var n, per uint64 = 0, 1
	switch {
	case c&0xf0 == 0x80: // fixmap
		n, per = uint64(c&0x0f), 2
	case c&0xf0 == 0x90: // fixarray
		n = uint64(c & 0x0f)
	case c == 0xdc || c == 0xdd: // array 16, 32
		n, err = r.bigEndian(2 << (c - 0xdc))
	case c == 0xde || c == 0xdf: // map 16, 32
		n, err = r.bigEndian(2 << (c - 0xde))
		per = 2
	default:
		return r.skipScalar(c)
	}
	if err != nil {
		return err
	}
	return r.skipItems(n*per, depth+1)
}

// skipItems passes over n values at the given depth.
func (r *mpReader) skipItems(n uint64, depth int) error {
	if n > uint64(len(r.b)) {
		return errDecline // every value takes a byte at least
	}
	for range n {
		if err := r.skip(depth); err != nil {
			return err
		}
	}
	return nil
}

// skipScalar passes over the rest of a value of code c that is not a map or
// an array.
func (r *mpReader) skipScalar(c byte) error {
	var n uint64
	var err error
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil // fixint, nil, false, true
	case c == 0xca || c == 0xcb: // float 32, 64
		n = 4 << (c - 0xca)
	case c >= 0xcc && c <= 0xcf: // uint 8, 16, 32, 64
		n = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3: // int 8, 16, 32, 64
		n = 1 << (c - 0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16 and the type
		n = 1<<(c-0xd4) + 1
	case c >= 0xc7 && c <= 0xc9: // ext 8, 16, 32 and the type
		n, err = r.bigEndian(1 << (c - 0xc7))
		n++
	default:
		n, err = r.strLen(c) // fixstr, str, bin; declines 0xc1
	}
	if err != nil {
		return err
	}
	_, err = r.take(n)
	return err
}

// code reads one byte: a value's type code.
func (r *mpReader) code() (byte, error) {
	if len(r.b) == 0 {
		return 0, errDecline
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

// take reads n bytes, which alias the data.
func (r *mpReader) take(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)) {
		return nil, errDecline
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b, nil
}

// bigEndian reads a w-byte (1, 2, 4 or 8) unsigned big-endian integer.
func (r *mpReader) bigEndian(w int) (uint64, error) {
	b, err := r.take(uint64(w))
	if err != nil {
		return 0, err
	}
	switch w {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}
