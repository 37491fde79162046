package replay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Event and base frames are msgpack arrays written and read by hand: no
// keys, no reflection, so that a frame is small and playing one costs
// little. Only the types below occur: arrays, unsigned and signed integers,
// strings and nil.

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

const msgpackNil = 0xc0

var errShort = errors.New("value runs past the end of the frame")

// wire reads the subset; the first error sticks and every later read
// returns a zero value.
type wire struct {
	b   []byte
	err error
}

func (w *wire) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	w.b = nil
}

func (w *wire) take(n int) []byte {
	if w.err != nil || n < 0 || n > len(w.b) {
		w.fail(errShort)
		return nil
	}
	out := w.b[:n]
	w.b = w.b[n:]
	return out
}

func (w *wire) byte1() byte {
	if b := w.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (w *wire) be(n int) uint64 {
	var v uint64
	for _, c := range w.take(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

// arrayLen reads an array header; every item takes at least a byte, so a
// length past the data is refused before anyone allocates for it.
func (w *wire) arrayLen() int {
	var n int
	switch c := w.byte1(); {
	case c >= 0x90 && c <= 0x9f:
		n = int(c & 0x0f)
	case c == 0xdc:
		n = int(w.be(2))
	case c == 0xdd:
		n = int(w.be(4))
	default:
		w.fail(fmt.Errorf("want an array, found type 0x%02x", c))
	}
	if n > len(w.b) {
		w.fail(errShort)
		return 0
	}
	return n
}

// expect reads an array header and checks its length.
func (w *wire) expect(n int, what string) {
	if got := w.arrayLen(); got != n && w.err == nil {
		w.fail(fmt.Errorf("%s: want %d items, found %d", what, n, got))
	}
}

func (w *wire) int() int64 {
	switch c := w.byte1(); {
	case c < 0x80:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	case c == 0xcc:
		return int64(w.be(1))
	case c == 0xcd:
		return int64(w.be(2))
	case c == 0xce:
		return int64(w.be(4))
	case c == 0xcf:
		v := w.be(8)
		if v > math.MaxInt64 {
			w.fail(fmt.Errorf("integer %d out of range", v))
		}
		return int64(v)
	case c == 0xd0:
		return int64(int8(w.be(1)))
	case c == 0xd1:
		return int64(int16(w.be(2)))
	case c == 0xd2:
		return int64(int32(w.be(4)))
	case c == 0xd3:
		return int64(w.be(8))
	default:
		w.fail(fmt.Errorf("want an integer, found type 0x%02x", c))
	}
	return 0
}

// uint reads a non-negative integer no larger than max.
func (w *wire) uint(max uint64) uint64 {
	if len(w.b) > 0 && w.b[0] == 0xcf {
		w.take(1)
		v := w.be(8)
		if v > max {
			w.fail(fmt.Errorf("integer %d out of range", v))
		}
		return v
	}
	v := w.int()
	if v < 0 || uint64(v) > max {
		w.fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	return uint64(v)
}

func (w *wire) strBytes() []byte {
	var n int
	switch c := w.byte1(); {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xd9:
		n = int(w.be(1))
	case c == 0xda:
		n = int(w.be(2))
	case c == 0xdb:
		n = int(w.be(4))
	default:
		w.fail(fmt.Errorf("want a string, found type 0x%02x", c))
	}
	return w.take(n)
}

func (w *wire) str() string { return string(w.strBytes()) }

// isNil consumes a nil and reports whether there was one.
func (w *wire) isNil() bool {
	if w.err == nil && len(w.b) > 0 && w.b[0] == msgpackNil {
		w.b = w.b[1:]
		return true
	}
	return false
}
