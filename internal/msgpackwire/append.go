package msgpackwire

import (
	"encoding/binary"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Each function appends one value (or a header) to dst in the smallest
// form that holds it, unless its comment says otherwise, and returns the
// extended slice.

// AppendNil appends nil.
func AppendNil(dst []byte) []byte { return append(dst, codeNil) }

// AppendBool appends true or false.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, codeTrue)
	}
	return append(dst, codeFalse)
}

// AppendUint appends v as a positive fixint or a uint 8, 16, 32 or 64.
func AppendUint(dst []byte, v uint64) []byte {
	switch {
	case v < codeFixmap:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, codeUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, codeUint8+1), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, codeUint8+2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, codeUint8+3), v)
}

// AppendInt appends v: at least 0 as AppendUint does, below as a negative
// fixint or an int 8, 16, 32 or 64.
func AppendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(dst, uint64(v))
	case v >= -32:
		return append(dst, byte(v))
	case v >= math.MinInt8:
		return append(dst, codeInt8, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, codeInt8+1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, codeInt8+2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, codeInt8+3), uint64(v))
}

// AppendIntWide appends v as AppendInt does, except that a value below -32
// always takes the 9-byte int 64 form. The client protocol has always
// written integers so; it keeps doing it byte for byte.
func AppendIntWide(dst []byte, v int64) []byte {
	if v >= -32 {
		return AppendInt(dst, v)
	}
	return binary.BigEndian.AppendUint64(append(dst, codeInt8+3), uint64(v))
}

// AppendStr appends s as a fixstr or a str 8, 16 or 32 (s must be shorter
// than 4 GiB). Its bytes go as they are, valid UTF-8 or not.
func AppendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, codeFixstr|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, codeStr8, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, codeStr8+1), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, codeStr8+2), uint32(n))
	}
	return append(dst, s...)
}

// AppendValidStr appends s as AppendStr does, each run of bytes in it that
// is not valid UTF-8 replaced by U+FFFD (as strings.ToValidUTF8 does).
func AppendValidStr(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return AppendStr(dst, s)
}

// AppendArrayLen appends the header of an array of n items (n >= 0), as a
// fixarray or an array 16 or 32; the caller appends the items.
func AppendArrayLen(dst []byte, n int) []byte { return appendLen(dst, n, codeFixarray, codeArray16) }

// AppendMapLen appends the header of a map of n entries (n >= 0), as a
// fixmap or a map 16 or 32; the caller appends each key and its value.
func AppendMapLen(dst []byte, n int) []byte { return appendLen(dst, n, codeFixmap, codeMap16) }

// appendLen appends an array or map header: fix is its fix code, big its
// 16-bit one, which the 32-bit one follows.
func appendLen(dst []byte, n int, fix, big byte) []byte {
	switch {
	case n < 16:
		return append(dst, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, big), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, big+1), uint32(n))
}

// AppendTime appends t as a timestamp (extension -1) in the 32-bit form
// (whole seconds from 1970 to 2106), the 64-bit form (with nanoseconds,
// seconds from 1970 to 2514) or else the 96-bit one. The zero Time is
// written as the instant it is, in the 96-bit form.
func AppendTime(dst []byte, t time.Time) []byte {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	switch {
	case sec>>34 == 0 && nsec == 0 && sec <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, codeFixext4, extTimestamp), uint32(sec))
	case sec>>34 == 0:
		return binary.BigEndian.AppendUint64(append(dst, codeFixext8, extTimestamp), uint64(nsec)<<34|uint64(sec))
	}
	dst = binary.BigEndian.AppendUint32(append(dst, codeExt8, 12, extTimestamp), uint32(nsec))
	return binary.BigEndian.AppendUint64(dst, uint64(sec))
}
