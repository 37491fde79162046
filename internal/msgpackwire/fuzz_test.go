package msgpackwire

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A tree is a value read with the typed reads: nil, bool, int64, uint64
// (above math.MaxInt64), string, time.Time, raw (a value kept as its
// bytes: bin, float, extension), []any (an array) or entries (a map).
type (
	raw     string
	entries []any // key, value, key, value...
)

// readTree reads one value as a tree, at the given depth. Each array and
// map it allocates for holds no more items than bytes are left.
func readTree(r *Reader, data []byte, depth int) any {
	if depth > MaxDepth {
		r.Fail(ErrDepth)
		return nil
	}
	c, ok := r.Peek()
	switch {
	case !ok:
		r.Fail(ErrShort)
		return nil
	case r.IsNil():
		return nil
	case c == codeFalse || c == codeTrue:
		return r.Bool()
	case c == codeUint8+3: // a uint64 past the int64 range, or an int64
		v := r.Uint(math.MaxUint64)
		if v > math.MaxInt64 {
			return v
		}
		return int64(v)
	case c < codeFixmap || c >= codeNegFixint || c >= codeUint8 && c <= codeInt8+3:
		return r.Int()
	case isStr(c):
		return r.Str()
	case c&0xf0 == codeFixarray || c == codeArray16 || c == codeArray16+1:
		return readItems(r, data, r.ArrayLen(), 1, depth)
	case c&0xf0 == codeFixmap || c == codeMap16 || c == codeMap16+1:
		return entries(readItems(r, data, r.MapLen(), 2, depth))
	case isTimestamp(r):
		return r.Time()
	}
	start := len(data) - r.Len()
	r.Skip(depth)
	return raw(data[start : len(data)-r.Len()])
}

// isTimestamp reports whether a timestamp that Time reads comes next.
func isTimestamp(r *Reader) bool {
	probe := *r
	probe.Time()
	return probe.err == nil
}

// readItems reads n items of per values each.
func readItems(r *Reader, data []byte, n, per, depth int) []any {
	if n*per > r.Len() {
		panic(fmt.Sprintf("a length of %d items of %d values with %d bytes left", n, per, r.Len()))
	}
	items := make([]any, 0, n*per)
	for range n * per {
		if items = append(items, readTree(r, data, depth+1)); r.Err() != nil {
			return nil
		}
	}
	return items
}

// appendTree writes a tree back.
func appendTree(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return AppendNil(b)
	case bool:
		return AppendBool(b, v)
	case int64:
		return AppendInt(b, v)
	case uint64:
		return AppendUint(b, v)
	case string:
		return AppendStr(b, v)
	case time.Time:
		return AppendTime(b, v)
	case raw:
		return append(b, v...)
	case []any:
		b = AppendArrayLen(b, len(v))
		return appendItems(b, v)
	case entries:
		return appendItems(AppendMapLen(b, len(v)/2), v)
	}
	panic(fmt.Sprintf("a %T in a tree", v))
}

func appendItems(b []byte, items []any) []byte {
	for _, it := range items {
		b = appendTree(b, it)
	}
	return b
}

// FuzzReader reads arbitrary data with every read: none may panic or read
// a length the data cannot hold; whatever reads as a tree passes Bounds,
// and written back, reads as the same tree.
func FuzzReader(f *testing.F) {
	for _, in := range oneOfEach {
		f.Add(unhex(f, in))
	}
	for _, in := range []string{
		"dd ff ff ff ff 01", "df 00 00 00 02 01", "db 7f ff ff ff 41", "c9 ff ff ff ff ff 00", "91 c1", "01 02",
		"c7 0c ff 00 00 00 00 ff ff ff f1 88 6e 09 00", "c7 05 ff 00 00 00 00 01", "cf ff ff ff ff ff ff ff ff",
	} {
		f.Add(unhex(f, in))
	}
	f.Add(nest(MaxDepth, true))
	f.Add(nest(MaxDepth+1, false))
	f.Add(AppendTime(AppendStr(AppendArrayLen(nil, 2), strings.Repeat("x", 40)), time.Unix(1<<35, 9)))
	f.Fuzz(func(t *testing.T, data []byte) {
		readEach(t, data)
		r := NewReader(data)
		tree := readTree(r, data, 0)
		if err := r.End(); err != nil {
			return
		}
		if err := Bounds(data); err != nil {
			t.Fatalf("read as a tree, but Bounds: %v", err)
		}
		again := appendTree(nil, tree)
		r2 := NewReader(again)
		if tree2 := readTree(r2, again, 0); r2.End() != nil || !reflect.DeepEqual(tree, tree2) {
			t.Fatalf("written back, reads as another tree: %v\n%#v\n%#v", r2.End(), tree, tree2)
		}
	})
}

// readEach reads the front of data with each read in turn: a failed read
// returns the zero value and reads all; a good one reads some bytes.
func readEach(t *testing.T, data []byte) {
	reads := []func(r *Reader) any{readInt, readIntWrap, readUint, readUint10, readBool, readStr, readStrBytes,
		readStrOrBin, readTime, func(r *Reader) any { return r.ArrayLen() }, func(r *Reader) any { return r.MapLen() },
		func(r *Reader) any { r.Skip(0); return nil }}
	for i, read := range reads {
		r := NewReader(data)
		v := read(r)
		switch {
		case r.Err() != nil && (r.Len() != 0 || (v != nil && !reflect.ValueOf(v).IsZero())):
			t.Fatalf("read %d failed (%v) but returned %v, %d bytes left", i, r.Err(), v, r.Len())
		case r.Err() == nil && r.Len() >= len(data):
			t.Fatalf("read %d read nothing", i)
		case r.Err() != nil && !errors.Is(r.Err(), ErrShort) && !errors.Is(r.Err(), ErrType) &&
			!errors.Is(r.Err(), ErrRange) && !errors.Is(r.Err(), ErrDepth):
			t.Fatalf("read %d: error %v of no kind", i, r.Err())
		}
	}
}
