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
	if depth > MaxDepth {
		r.Fail(ErrDepth)
		return
	}
	c, ok := r.code()
	switch { // the fix forms first: they are the most common
	case !ok:
	case c < codeFixmap || c >= codeNegFixint: // fixint: the code is the value
	case c < codeFixarray:
		r.skipItems(uint64(c&0x0f)*2, depth+1)
	case c < codeFixstr:
		r.skipItems(uint64(c&0x0f), depth+1)
	case c < codeNil:
		r.take(uint64(c & 0x1f))
	default:
		r.skipSized(c, depth)
	}
}

// skipItems reads over n values at the given depth.
func (r *Reader) skipItems(n uint64, depth int) {
	if n > uint64(len(r.b)) {
		r.Fail(ErrShort) // every value takes a byte at least
		return
	}
	for range n {
		if r.Skip(depth); r.err != nil {
			return
		}
	}
}

// skipSized reads over the rest of a value of code c, from 0xc0 to 0xdf.
func (r *Reader) skipSized(c byte, depth int) {
	var n uint64
	ok := true
	switch {
	case c == codeNil || c == codeFalse || c == codeTrue:
		return // the code is the value
	case c == codeArray16 || c == codeArray16+1:
		if n, ok = r.bigEndian(2 << (c - codeArray16)); ok {
			r.skipItems(n, depth+1)
		}
		return
	case c == codeMap16 || c == codeMap16+1:
		if n, ok = r.bigEndian(2 << (c - codeMap16)); ok {
			r.skipItems(2*n, depth+1)
		}
		return
	case c == codeFloat32 || c == codeFloat32+1:
		n = 4 << (c - codeFloat32)
	case c >= codeUint8 && c <= codeUint8+3:
		n = 1 << (c - codeUint8)
	case c >= codeInt8 && c <= codeInt8+3:
		n = 1 << (c - codeInt8)
	case c >= codeFixext1 && c <= codeFixext1+4:
		n = 1<<(c-codeFixext1) + 1 // the type, then the data
	case c >= codeExt8 && c <= codeExt8+2:
		n, ok = r.bigEndian(1 << (c - codeExt8))
		n++
	case isStr(c) || isBin(c):
		n, ok = r.bytesLen(c)
	default:
		r.Fail(&typeError{code: c}) // codeUnused
		return
	}
	if ok {
		r.take(n)
	}
}
