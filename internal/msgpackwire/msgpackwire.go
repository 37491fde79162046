// Package msgpackwire writes and reads the msgpack wire format by hand,
// without reflection: append functions for the types SIS Bridge's encoders
// write, and a Reader that checks every length against the data it holds,
// so that a few bytes of input can never make a caller allocate a lot.
//
// The client protocol's hot events, the replay capture format's event and
// base frames and the bounds check run before reflection decoding
// (Bounds) all use it; see https://github.com/msgpack/msgpack/blob/master/spec.md
// for the format.
package msgpackwire

import (
	"errors"
	"fmt"
)

// The type codes this package names. A code of a family of widths names
// the narrowest; the wider ones follow it in order (str 8, 16, 32 are
// codeStr8, codeStr8+1, codeStr8+2).
const (
	codeFixmap    = 0x80 // to 0x8f: the length in the low nibble
	codeFixarray  = 0x90 // to 0x9f
	codeFixstr    = 0xa0 // to 0xbf: the length in the low 5 bits
	codeNil       = 0xc0
	codeUnused    = 0xc1 // no type has it
	codeFalse     = 0xc2
	codeTrue      = 0xc3
	codeBin8      = 0xc4 // bin 8, 16, 32
	codeExt8      = 0xc7 // ext 8, 16, 32
	codeFloat32   = 0xca // float 32, 64
	codeUint8     = 0xcc // uint 8, 16, 32, 64
	codeInt8      = 0xd0 // int 8, 16, 32, 64
	codeFixext1   = 0xd4 // fixext 1, 2, 4, 8, 16
	codeFixext4   = 0xd6
	codeFixext8   = 0xd7
	codeStr8      = 0xd9 // str 8, 16, 32
	codeArray16   = 0xdc // array 16, 32
	codeMap16     = 0xde // map 16, 32
	codeNegFixint = 0xe0 // to 0xff: -32 to -1
)

// extTimestamp is the extension type of a timestamp, -1, as a byte.
const extTimestamp = 0xff

// Errors of reading; test with errors.Is, each comes wrapped with detail.
var (
	// ErrShort: a value, or a length it declares, runs past the end of the
	// data.
	ErrShort = errors.New("value runs past the end of the data")
	// ErrType: a value is not of the type read, or has a type code no type
	// has (0xc1), or is a timestamp of a width the format does not define.
	ErrType = errors.New("unexpected msgpack type")
	// ErrRange: an integer is outside the range asked for.
	ErrRange = errors.New("out of range")
	// ErrDepth: a value nests deeper than MaxDepth.
	ErrDepth = errors.New("nested too deep")
	// ErrTrailing: bytes follow the value that should end the data.
	ErrTrailing = errors.New("bytes after the value")
)

// typeError is a value of another type than the one read: it wraps ErrType.
type typeError struct {
	want string // "an integer"; empty for a code no type has
	code byte   // the type code found, or the extension type if ext
	ext  bool
}

func (e *typeError) Error() string {
	switch {
	case e.want == "":
		return fmt.Sprintf("unknown msgpack type 0x%02x", e.code)
	case e.ext:
		return fmt.Sprintf("want %s, found extension type %d", e.want, int8(e.code))
	}
	return fmt.Sprintf("want %s, found type 0x%02x", e.want, e.code)
}

func (e *typeError) Unwrap() error { return ErrType }
