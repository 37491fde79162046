// Package mpcheck checks a msgpack value's declared lengths before it is
// decoded.
package mpcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Bounds walks one msgpack value and fails if any length it declares runs
// past the data, it nests deeper than 32 levels, or bytes follow it.
// Decoders call it first, so that a damaged or hostile message of a few
// bytes cannot make them allocate gigabytes.
func Bounds(data []byte) error {
	rest, err := skipValue(data, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the value", len(rest))
	}
	return nil
}

var errShort = errors.New("value runs past the end of the data")

func skipValue(b []byte, depth int) ([]byte, error) {
	if depth > 32 {
		return nil, errors.New("nested too deep")
	}
	if len(b) == 0 {
		return nil, errShort
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return b, nil // fixint, nil, bool
	case c >= 0x80 && c <= 0x8f:
		return skipItems(b, int(c&0x0f)*2, depth)
	case c >= 0x90 && c <= 0x9f:
		return skipItems(b, int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		return skipBytes(b, int(c&0x1f))
	}
	return skipSized(c, b, depth)
}

// fixed holds the payload size of the fixed-width types; sized the width of
// the length prefix of str, bin and ext types.
var (
	fixed = map[byte]int{0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
		0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17}
	sized = map[byte]int{0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}
	ext   = map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}
)

func skipSized(c byte, b []byte, depth int) ([]byte, error) {
	if n, ok := fixed[c]; ok {
		return skipBytes(b, n)
	}
	if w, ok := sized[c]; ok {
		n, rest, err := readLen(b, w)
		if err != nil {
			return nil, err
		}
		return skipBytes(rest, n)
	}
	if w, ok := ext[c]; ok {
		n, rest, err := readLen(b, w)
		if err != nil {
			return nil, err
		}
		return skipBytes(rest, n+1)
	}
	switch c {
	case 0xdc, 0xdd, 0xde, 0xdf:
		w, per := 2, 1
		if c == 0xdd || c == 0xdf {
			w = 4
		}
		if c >= 0xde {
			per = 2
		}
		n, rest, err := readLen(b, w)
		if err != nil {
			return nil, err
		}
		return skipItems(rest, n*per, depth)
	}
	return nil, fmt.Errorf("unknown msgpack type 0x%02x", c)
}

func readLen(b []byte, width int) (int, []byte, error) {
	if len(b) < width {
		return 0, nil, errShort
	}
	switch width {
	case 1:
		return int(b[0]), b[1:], nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), b[2:], nil
	}
	return int(binary.BigEndian.Uint32(b)), b[4:], nil
}

func skipBytes(b []byte, n int) ([]byte, error) {
	if n > len(b) {
		return nil, errShort
	}
	return b[n:], nil
}

func skipItems(b []byte, n, depth int) ([]byte, error) {
	if n > len(b) {
		return nil, errShort // every item takes at least one byte
	}
	var err error
	for range n {
		if b, err = skipValue(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}
