package msgpackwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Reader reads msgpack values one after another from the front of a byte
// slice. It never reads past the slice, it refuses an array or map length
// that the bytes left cannot hold (every item takes one byte at least), and
// none of its reads allocates, but Str's string and an error's.
//
// The first error sticks: the reader then stops, every later read returns
// the zero value, and Err returns that error. A caller can thus read a
// whole structure and check Err once, or after each item of a long array.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader of data.
func NewReader(data []byte) *Reader { return &Reader{b: data} }

// Reset makes r read data, clearing its error.
func (r *Reader) Reset(data []byte) { *r = Reader{b: data} }

// Len returns the number of bytes not read yet.
func (r *Reader) Len() int { return len(r.b) }

// Err returns the first error of a read, or nil.
func (r *Reader) Err() error { return r.err }

// Fail stops the reader with err unless it has failed already: a caller's
// own check of what it read (a count, a range) then sticks as a read error
// does. A nil err changes nothing.
func (r *Reader) Fail(err error) {
	if err == nil {
		return
	}
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

// End returns Err, or if the reader has not failed but bytes are left, an
// error wrapping ErrTrailing. Call it once the last value is read.
func (r *Reader) End() error {
	if r.err == nil && len(r.b) > 0 {
		return fmt.Errorf("%d %w", len(r.b), ErrTrailing)
	}
	return r.err
}

// Peek returns the type code of the next value without reading it; false
// when no byte is left (at the end, or after an error).
func (r *Reader) Peek() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	return r.b[0], true
}

// IsNil reads a nil if one comes next and reports whether it did; it
// leaves any other value to read.
func (r *Reader) IsNil() bool {
	if len(r.b) > 0 && r.b[0] == codeNil {
		r.b = r.b[1:]
		return true
	}
	return false
}

// Bool reads true or false.
func (r *Reader) Bool() bool {
	switch c, ok := r.code(); {
	case !ok:
	case c == codeTrue:
		return true
	case c != codeFalse:
		r.Fail(&typeError{want: "a bool", code: c})
	}
	return false
}

// Int reads an integer of any form; one above math.MaxInt64 fails with
// ErrRange.
func (r *Reader) Int() int64 {
	v, neg, ok := r.integer()
	if ok && !neg && v > math.MaxInt64 {
		r.Fail(fmt.Errorf("integer %d %w", v, ErrRange))
		return 0
	}
	return int64(v)
}

// IntWrap reads an integer of any form as Int does, but a uint 64 above
// math.MaxInt64 wraps to a negative number, as Go's conversion of the
// uint64 to int64 would, rather than failing.
func (r *Reader) IntWrap() int64 {
	v, _, _ := r.integer()
	return int64(v)
}

// Uint reads an integer of any form from 0 to max; one outside fails with
// ErrRange.
func (r *Reader) Uint(max uint64) uint64 {
	v, neg, ok := r.integer()
	switch {
	case !ok:
		return 0
	case neg:
		r.Fail(fmt.Errorf("integer %d %w", int64(v), ErrRange))
		return 0
	case v > max:
		r.Fail(fmt.Errorf("integer %d %w", v, ErrRange))
		return 0
	}
	return v
}

// integer reads an integer of any form: its 64 bits (sign-extended for the
// signed forms), whether it is negative, and false on failure.
func (r *Reader) integer() (v uint64, neg, ok bool) {
	c, ok := r.code()
	switch {
	case !ok:
		return 0, false, false
	case c < codeFixmap:
		return uint64(c), false, true
	case c >= codeNegFixint:
		return uint64(int64(int8(c))), true, true
	case c >= codeUint8 && c <= codeUint8+3:
		v, ok := r.bigEndian(1 << (c - codeUint8))
		return v, false, ok
	case c >= codeInt8 && c <= codeInt8+3:
		w := 1 << (c - codeInt8)
		v, ok := r.bigEndian(w)
		shift := 64 - 8*w
		s := int64(v<<shift) >> shift
		return uint64(s), s < 0, ok
	}
	r.Fail(&typeError{want: "an integer", code: c})
	return 0, false, false
}

// Str reads a str value (fixstr, str 8, 16 or 32) as a new string.
func (r *Reader) Str() string { return string(r.StrBytes()) }

// StrBytes reads a str value; its bytes alias the data.
func (r *Reader) StrBytes() []byte {
	if b, ok := r.fixstr(); ok {
		return b
	}
	return r.sized("a string", false)
}

// StrOrBin reads a str or a bin value (bin 8, 16 or 32); its bytes alias
// the data.
func (r *Reader) StrOrBin() []byte {
	if b, ok := r.fixstr(); ok {
		return b
	}
	return r.sized("a string or binary", true)
}

// fixstr reads a fixstr, if one comes next and the data holds it: the
// most common value of all, read inline.
func (r *Reader) fixstr() ([]byte, bool) {
	if len(r.b) == 0 || r.b[0]&0xe0 != codeFixstr {
		return nil, false
	}
	n := int(r.b[0]&0x1f) + 1
	if n > len(r.b) {
		return nil, false
	}
	b := r.b[1:n:n]
	r.b = r.b[n:]
	return b, true
}

// sized reads a str value, or with bin a bin value: want names them.
func (r *Reader) sized(want string, bin bool) []byte {
	c, ok := r.code()
	switch {
	case !ok:
		return nil
	case !isStr(c) && !(bin && isBin(c)):
		r.Fail(&typeError{want: want, code: c})
		return nil
	}
	n, ok := r.bytesLen(c)
	if !ok {
		return nil
	}
	b, _ := r.take(n)
	return b
}

// isStr reports whether c is the code of a str value.
func isStr(c byte) bool { return c&0xe0 == codeFixstr || c >= codeStr8 && c <= codeStr8+2 }

// isBin reports whether c is the code of a bin value.
func isBin(c byte) bool { return c >= codeBin8 && c <= codeBin8+2 }

// bytesLen reads the length of a str or bin value of code c.
func (r *Reader) bytesLen(c byte) (uint64, bool) {
	switch {
	case c&0xe0 == codeFixstr:
		return uint64(c & 0x1f), true
	case c >= codeStr8:
		return r.bigEndian(1 << (c - codeStr8))
	}
	return r.bigEndian(1 << (c - codeBin8))
}

// ArrayLen reads an array header and returns its number of items, which
// the caller reads next. A length the bytes left cannot hold fails with
// ErrShort.
func (r *Reader) ArrayLen() int { return r.length(codeFixarray, codeArray16, 1, "an array") }

// MapLen reads a map header and returns its number of entries, whose key
// and value the caller reads next. A length the bytes left cannot hold
// fails with ErrShort.
func (r *Reader) MapLen() int { return r.length(codeFixmap, codeMap16, 2, "a map") }

// length reads an array or map header: fix is its fix code, big its
// 16-bit code (the 32-bit one follows), per the values an item holds.
func (r *Reader) length(fix, big byte, per uint64, want string) int {
	c, ok := r.code()
	var n uint64
	switch {
	case !ok:
		return 0
	case c&0xf0 == fix:
		n = uint64(c & 0x0f)
	case c == big || c == big+1:
		if n, ok = r.bigEndian(2 << (c - big)); !ok {
			return 0
		}
	default:
		r.Fail(&typeError{want: want, code: c})
		return 0
	}
	if n*per > uint64(len(r.b)) {
		r.Fail(fmt.Errorf("%s of %d: %w", want, n, ErrShort))
		return 0
	}
	return int(n)
}

// Time reads a timestamp (extension -1) of any of its three widths, as a
// fixext or an ext value. The time is in the local zone, as time.Unix
// returns it, but for the zero instant, which is the zero Time.
func (r *Reader) Time() time.Time {
	n, ok := r.timestampLen()
	if !ok {
		return time.Time{}
	}
	b, ok := r.take(n)
	if !ok {
		return time.Time{}
	}
	return r.timestamp(b)
}

// timestampLen reads the code, the payload length and the extension type
// of a timestamp, and returns the length.
func (r *Reader) timestampLen() (uint64, bool) {
	c, ok := r.code()
	var n uint64
	switch {
	case !ok:
		return 0, false
	case c == codeFixext4 || c == codeFixext8:
		n = 4 << (c - codeFixext4)
	case c >= codeExt8 && c <= codeExt8+2:
		if n, ok = r.bigEndian(1 << (c - codeExt8)); !ok {
			return 0, false
		}
	default:
		r.Fail(&typeError{want: "a timestamp", code: c})
		return 0, false
	}
	typ, ok := r.code()
	if ok && typ != extTimestamp {
		r.Fail(&typeError{want: "a timestamp", code: typ, ext: true})
		return 0, false
	}
	return n, ok
}

// timestamp decodes the 4, 8 or 12-byte payload of a timestamp.
func (r *Reader) timestamp(b []byte) time.Time {
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
		r.Fail(fmt.Errorf("a timestamp of %d bytes: %w", len(b), ErrType))
		return t
	}
	if t.IsZero() {
		return time.Time{}
	}
	return t
}

// code reads one byte: a value's type code.
func (r *Reader) code() (byte, bool) {
	if len(r.b) == 0 {
		r.Fail(ErrShort)
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

// take reads n bytes, which alias the data.
func (r *Reader) take(n uint64) ([]byte, bool) {
	if n > uint64(len(r.b)) {
		r.Fail(ErrShort)
		return nil, false
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b, true
}

// bigEndian reads a w-byte (1, 2, 4 or 8) unsigned big-endian integer.
func (r *Reader) bigEndian(w int) (uint64, bool) {
	b, ok := r.take(uint64(w))
	if !ok {
		return 0, false
	}
	return uint64BE(b, w), true
}

// uint64BE returns the w-byte (1, 2, 4 or 8) big-endian integer at the
// front of b.
func uint64BE(b []byte, w int) uint64 {
	switch w {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}
