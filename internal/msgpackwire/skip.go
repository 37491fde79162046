package msgpackwire

// MaxDepth is the deepest nesting Skip and Bounds accept: a top-level
// value is at depth 0, the items of an array or map in it at depth 1, and
// so on.
const MaxDepth = 32

// Bounds checks that data holds exactly one msgpack value: it walks the
// value, without allocating, and fails if any length it declares runs past
// the data (ErrShort), it has a type code no type has (ErrType), it nests
// deeper than MaxDepth (ErrDepth), or bytes follow it (ErrTrailing).
// Decoders that allocate what a length says (reflection decoders) call it
// first, so that a hostile message of a few bytes cannot make them
// allocate gigabytes.
func Bounds(data []byte) error {
	r := Reader{b: data}
	r.Skip(0)
	return r.End()
}

// Skip reads over one value of any type, found at the given nesting depth
// (0 for a top-level value; see MaxDepth). Anything in it nested deeper
// than MaxDepth fails with ErrDepth.
func (r *Reader) Skip(depth int) {
	rest, err := skip(r.b, depth)
	if err != nil {
		r.Fail(err)
		return
	}
	r.b = rest
}

// skip returns b after the value at its front, found at depth. It works
// on the slice rather than a Reader: a walk over every byte, kept in
// registers.
func skip(b []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, ErrDepth
	}
	if len(b) == 0 {
		return nil, ErrShort
	}
	c, b := b[0], b[1:]
	switch { // the fix forms first: they are the most common
	case c < codeFixmap || c >= codeNegFixint: // fixint: the code is the value
		return b, nil
	case c < codeFixarray:
		return skipItems(b, uint64(c&0x0f)*2, depth+1)
	case c < codeFixstr:
		return skipItems(b, uint64(c&0x0f), depth+1)
	case c < codeNil:
		return skipBytes(b, uint64(c&0x1f), 0)
	}
	return skipSized(b, c, depth)
}

// skipItems returns b after n values at the given depth.
func skipItems(b []byte, n uint64, depth int) ([]byte, error) {
	if n > uint64(len(b)) {
		return nil, ErrShort // every value takes a byte at least
	}
	var err error
	for range n {
		if b, err = skip(b, depth); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// skipSized returns b after the rest of a value of code c, from 0xc0 to
// 0xdf.
func skipSized(b []byte, c byte, depth int) ([]byte, error) {
	switch {
	case c == codeNil || c == codeFalse || c == codeTrue:
		return b, nil // the code is the value
	case c == codeArray16 || c == codeArray16+1:
		n, b, err := skipLen(b, 2<<(c-codeArray16))
		if err != nil {
			return nil, err
		}
		return skipItems(b, n, depth+1)
	case c == codeMap16 || c == codeMap16+1:
		n, b, err := skipLen(b, 2<<(c-codeMap16))
		if err != nil {
			return nil, err
		}
		return skipItems(b, 2*n, depth+1)
	case c == codeFloat32 || c == codeFloat32+1:
		return skipBytes(b, 4<<(c-codeFloat32), 0)
	case c >= codeUint8 && c <= codeUint8+3:
		return skipBytes(b, 1<<(c-codeUint8), 0)
	case c >= codeInt8 && c <= codeInt8+3:
		return skipBytes(b, 1<<(c-codeInt8), 0)
	case c >= codeFixext1 && c <= codeFixext1+4:
		return skipBytes(b, 1<<(c-codeFixext1), 1) // the type, then the data
	case c >= codeExt8 && c <= codeExt8+2:
		return skipPrefixed(b, 1<<(c-codeExt8), 1)
	case c >= codeStr8 && c <= codeStr8+2:
		return skipPrefixed(b, 1<<(c-codeStr8), 0)
	case isBin(c):
		return skipPrefixed(b, 1<<(c-codeBin8), 0)
	}
	return nil, &typeError{code: c} // codeUnused
}

// skipPrefixed returns b after a length of w bytes and the extra bytes
// and the bytes it counts.
func skipPrefixed(b []byte, w, extra int) ([]byte, error) {
	n, b, err := skipLen(b, w)
	if err != nil {
		return nil, err
	}
	return skipBytes(b, n, extra)
}

// skipLen reads a w-byte (1, 2 or 4) big-endian length from the front of b.
func skipLen(b []byte, w int) (uint64, []byte, error) {
	if len(b) < w {
		return 0, nil, ErrShort
	}
	return uint64BE(b, w), b[w:], nil
}

// skipBytes returns b after n bytes and extra more.
func skipBytes(b []byte, n uint64, extra int) ([]byte, error) {
	if n += uint64(extra); n > uint64(len(b)) {
		return nil, ErrShort
	}
	return b[n:], nil
}
