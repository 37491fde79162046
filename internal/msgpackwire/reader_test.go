package msgpackwire

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// readCase reads one value from in: read returns what it read, which must
// be want, and the reader's error must match err (nil: no error, and every
// byte read).
type readCase struct {
	name string
	in   string // hex
	read func(r *Reader) any
	want any
	err  error
	msg  string // in the error, if set
}

// The reads the cases use.
var (
	readInt      = func(r *Reader) any { return r.Int() }
	readIntWrap  = func(r *Reader) any { return r.IntWrap() }
	readUint     = func(r *Reader) any { return r.Uint(math.MaxUint64) }
	readUint10   = func(r *Reader) any { return r.Uint(10) }
	readBool     = func(r *Reader) any { return r.Bool() }
	readNil      = func(r *Reader) any { return r.IsNil() }
	readStr      = func(r *Reader) any { return r.Str() }
	readStrBytes = func(r *Reader) any { return string(r.StrBytes()) }
	readStrOrBin = func(r *Reader) any { return string(r.StrOrBin()) }
	readTime     = func(r *Reader) any { return r.Time() }
	// readArray and readMap read a header and skip the items.
	readArray = func(r *Reader) any { return skipAll(r, r.ArrayLen(), 1) }
	readMap   = func(r *Reader) any { return skipAll(r, r.MapLen(), 2) }
)

func skipAll(r *Reader, n, per int) int {
	for range n * per {
		r.Skip(1)
	}
	return n
}

func checkReads(t *testing.T, cases []readCase) {
	t.Helper()
	for _, c := range cases {
		r := NewReader(unhex(t, c.in))
		got := c.read(r)
		err := r.End()
		switch {
		case c.err == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
		case err != nil && !strings.Contains(err.Error(), c.msg):
			t.Errorf("%s: error %q, want %q in it", c.name, err, c.msg)
		case !reflect.DeepEqual(got, c.want):
			t.Errorf("%s: read %#v, want %#v", c.name, got, c.want)
		}
	}
}

func TestReadIntegers(t *testing.T) {
	checkReads(t, []readCase{
		{name: "fixint 0", in: "00", read: readInt, want: int64(0)},
		{name: "fixint 127", in: "7f", read: readInt, want: int64(127)},
		{name: "fixint -1", in: "ff", read: readInt, want: int64(-1)},
		{name: "fixint -32", in: "e0", read: readInt, want: int64(-32)},
		{name: "uint 8", in: "cc ff", read: readInt, want: int64(255)},
		{name: "uint 16", in: "cd ff fe", read: readInt, want: int64(65534)},
		{name: "uint 32", in: "ce ff ff ff ff", read: readInt, want: int64(math.MaxUint32)},
		{name: "uint 64", in: "cf 7f ff ff ff ff ff ff ff", read: readInt, want: int64(math.MaxInt64)},
		{name: "int 8", in: "d0 80", read: readInt, want: int64(-128)},
		{name: "int 8 positive", in: "d0 7f", read: readInt, want: int64(127)},
		{name: "int 16", in: "d1 80 00", read: readInt, want: int64(math.MinInt16)},
		{name: "int 32", in: "d2 80 00 00 00", read: readInt, want: int64(math.MinInt32)},
		{name: "int 64", in: "d3 80 00 00 00 00 00 00 00", read: readInt, want: int64(math.MinInt64)},
		{name: "int 64 -1", in: "d3 ff ff ff ff ff ff ff ff", read: readInt, want: int64(-1)},
		{name: "uint 64 past int64", in: "cf 80 00 00 00 00 00 00 00", read: readInt, want: int64(0), err: ErrRange,
			msg: "integer 9223372036854775808 out of range"},
		{name: "wraps", in: "cf ff ff ff ff ff ff ff ff", read: readIntWrap, want: int64(-1)},
		{name: "wrap of int 16", in: "d1 ff 00", read: readIntWrap, want: int64(-256)},
		{name: "uint max", in: "cf ff ff ff ff ff ff ff ff", read: readUint, want: uint64(math.MaxUint64)},
		{name: "uint of int 8", in: "d0 05", read: readUint, want: uint64(5)},
		{name: "uint at max", in: "0a", read: readUint10, want: uint64(10)},
		{name: "uint past max", in: "0b", read: readUint10, want: uint64(0), err: ErrRange, msg: "integer 11 out of range"},
		{name: "uint 64 past max", in: "cf ff ff ff ff ff ff ff ff", read: readUint10, want: uint64(0), err: ErrRange},
		{name: "uint of -1", in: "ff", read: readUint, want: uint64(0), err: ErrRange, msg: "integer -1 out of range"},
		{name: "uint of int 64", in: "d3 80 00 00 00 00 00 00 00", read: readUint, want: uint64(0), err: ErrRange},
		{name: "nil", in: "c0", read: readInt, want: int64(0), err: ErrType, msg: "want an integer, found type 0xc0"},
		{name: "float", in: "ca 00 00 00 00", read: readInt, want: int64(0), err: ErrType},
		{name: "string", in: "a1 31", read: readUint, want: uint64(0), err: ErrType},
	})
}

func TestReadScalars(t *testing.T) {
	checkReads(t, []readCase{
		{name: "true", in: "c3", read: readBool, want: true},
		{name: "false", in: "c2", read: readBool, want: false},
		{name: "bool of 1", in: "01", read: readBool, want: false, err: ErrType, msg: "want a bool, found type 0x01"},
		{name: "nil", in: "c0", read: readNil, want: true},
		{name: "not nil", in: "c2", read: readNil, want: false, err: ErrTrailing, msg: "1 bytes after the value"},
		{name: "nil at the end", in: "", read: readNil, want: false},
	})
}

func TestReadStrings(t *testing.T) {
	long := func(head string, n int) string { return head + strings.Repeat("78", n) }
	x := func(n int) string { return strings.Repeat("x", n) }
	checkReads(t, []readCase{
		{name: "fixstr 0", in: "a0", read: readStr, want: ""},
		{name: "fixstr 31", in: long("bf", 31), read: readStr, want: x(31)},
		{name: "str 8", in: long("d9 20", 32), read: readStr, want: x(32)},
		{name: "str 16", in: long("da 01 00", 256), read: readStr, want: x(256)},
		{name: "str 32", in: long("db 00 01 00 00", 1<<16), read: readStr, want: x(1 << 16)},
		{name: "bytes", in: "a2 c3 a9", read: readStrBytes, want: "é"},
		{name: "invalid UTF-8 as is", in: "a1 ff", read: readStr, want: "\xff"},
		{name: "bin", in: "c4 01 41", read: readStr, want: "", err: ErrType, msg: "want a string, found type 0xc4"},
		{name: "nil", in: "c0", read: readStrBytes, want: "", err: ErrType},
		{name: "str or bin: str", in: "a1 41", read: readStrOrBin, want: "A"},
		{name: "str or bin: bin 8", in: "c4 01 41", read: readStrOrBin, want: "A"},
		{name: "str or bin: bin 16", in: "c5 00 01 41", read: readStrOrBin, want: "A"},
		{name: "str or bin: bin 32", in: "c6 00 00 00 01 41", read: readStrOrBin, want: "A"},
		{name: "str or bin: nil", in: "c0", read: readStrOrBin, want: "", err: ErrType, msg: "want a string or binary"},
		{name: "str 32 of 2 GB", in: "db 7f ff ff ff 41 42", read: readStr, want: "", err: ErrShort},
		{name: "bin 32 of 4 GB", in: "c6 ff ff ff ff 41", read: readStrOrBin, want: "", err: ErrShort},
	})
}

func TestReadLengths(t *testing.T) {
	items := func(head string, n int) string { return head + strings.Repeat("00", n) }
	checkReads(t, []readCase{
		{name: "fixarray 0", in: "90", read: readArray, want: 0},
		{name: "fixarray 15", in: items("9f", 15), read: readArray, want: 15},
		{name: "array 16", in: items("dc 00 10", 16), read: readArray, want: 16},
		{name: "array 32", in: items("dd 00 01 00 00", 1<<16), read: readArray, want: 1 << 16},
		{name: "fixmap 0", in: "80", read: readMap, want: 0},
		{name: "fixmap 15", in: items("8f", 30), read: readMap, want: 15},
		{name: "map 16", in: items("de 00 10", 32), read: readMap, want: 16},
		{name: "map 32", in: items("df 00 01 00 00", 2<<16), read: readMap, want: 1 << 16},
		{name: "array as map", in: "90", read: readMap, want: 0, err: ErrType, msg: "want a map, found type 0x90"},
		{name: "map as array", in: "80", read: readArray, want: 0, err: ErrType, msg: "want an array, found type 0x80"},
		{name: "nil array", in: "c0", read: readArray, want: 0, err: ErrType},
		{name: "array past the data", in: "92 00", read: readArray, want: 0, err: ErrShort, msg: "an array of 2"},
		{name: "array 32 of 4 G", in: "dd ff ff ff ff 00", read: readArray, want: 0, err: ErrShort},
		{name: "map needs two values an entry", in: "82 00 00 00", read: readMap, want: 0, err: ErrShort, msg: "a map of 2"},
		{name: "map 32 of 4 G", in: "df ff ff ff ff 00 00", read: readMap, want: 0, err: ErrShort},
	})
}

func TestReadTime(t *testing.T) {
	checkReads(t, []readCase{
		{name: "32-bit", in: "d6 ff 00 00 00 01", read: readTime, want: time.Unix(1, 0)},
		{name: "64-bit", in: "d7 ff 00 00 00 04 00 00 00 01", read: readTime, want: time.Unix(1, 1)},
		{name: "96-bit", in: "c7 0c ff 00 00 00 05 ff ff ff ff ff ff ff ff", read: readTime, want: time.Unix(-1, 5)},
		{name: "zero instant", in: "c7 0c ff 00 00 00 00 ff ff ff f1 88 6e 09 00", read: readTime, want: time.Time{}},
		{name: "32-bit as ext 8", in: "c7 04 ff 00 00 00 01", read: readTime, want: time.Unix(1, 0)},
		{name: "64-bit as ext 16", in: "c8 00 08 ff 00 00 00 04 00 00 00 01", read: readTime, want: time.Unix(1, 1)},
		{name: "96-bit as ext 32", in: "c9 00 00 00 0c ff 00 00 00 00 00 00 00 00 00 00 00 02", read: readTime, want: time.Unix(2, 0)},
		{name: "other extension", in: "d6 01 00 00 00 01", read: readTime, want: time.Time{}, err: ErrType,
			msg: "want a timestamp, found extension type 1"},
		{name: "5 bytes", in: "c7 05 ff 00 00 00 00 01", read: readTime, want: time.Time{}, err: ErrType, msg: "a timestamp of 5 bytes"},
		{name: "fixext 2", in: "d5 ff 00 01", read: readTime, want: time.Time{}, err: ErrType, msg: "found type 0xd5"},
		{name: "nil", in: "c0", read: readTime, want: time.Time{}, err: ErrType},
		{name: "ext 32 of 4 GB", in: "c9 ff ff ff ff ff 00", read: readTime, want: time.Time{}, err: ErrShort},
	})
}

// TestReadTruncated reads every proper prefix of each good input of the
// cases: each fails with ErrShort and reads the zero value.
func TestReadTruncated(t *testing.T) {
	var cases []readCase
	for _, c := range []readCase{
		{name: "int 64", in: "d3 80 00 00 00 00 00 00 00", read: readInt},
		{name: "uint 16", in: "cd 01 00", read: readUint},
		{name: "wrap", in: "cf ff ff ff ff ff ff ff ff", read: readIntWrap},
		{name: "bool", in: "c3", read: readBool},
		{name: "fixstr", in: "a3 61 62 63", read: readStrOrBin},
		{name: "str 8", in: "d9 03 61 62 63", read: readStr},
		{name: "str 32", in: "db 00 00 00 01 61", read: readStrBytes},
		{name: "bin 16", in: "c5 00 02 61 62", read: readStrOrBin},
		{name: "array 16", in: "dc 00 02 01 02", read: readArray},
		{name: "map 32", in: "df 00 00 00 01 01 02", read: readMap},
		{name: "time 96", in: "c7 0c ff 00 00 00 05 ff ff ff ff ff ff ff ff", read: readTime},
		{name: "time 64", in: "d7 ff 00 00 00 04 00 00 00 01", read: readTime},
	} {
		in := unhex(t, c.in)
		zero := reflect.Zero(reflect.TypeOf(c.read(NewReader(in)))).Interface()
		for n := range len(in) {
			cut := strings.ReplaceAll(c.in, " ", "")[:2*n]
			cases = append(cases, readCase{name: c.name + " cut to " + cut, in: cut, read: c.read, want: zero, err: ErrShort})
		}
	}
	checkReads(t, cases)
}

func TestReaderStopsAtTheFirstError(t *testing.T) {
	r := NewReader(unhex(t, "a1 41 01 02 03"))
	if r.Int() != 0 || !errors.Is(r.Err(), ErrType) {
		t.Fatalf("int of a string: %v", r.Err())
	}
	first := r.Err()
	if v := r.Int(); v != 0 || r.Err() != first || r.Len() != 0 {
		t.Fatalf("read after an error: %d, %v, %d bytes left", v, r.Err(), r.Len())
	}
	if _, ok := r.Peek(); ok || r.IsNil() || r.ArrayLen() != 0 || r.Str() != "" || !r.Time().IsZero() {
		t.Fatal("a read after an error returned something")
	}
	r.Fail(errors.New("second"))
	r.Fail(nil)
	if r.Err() != first || r.End() != first {
		t.Fatalf("error %v, want the first", r.Err())
	}
	r.Reset(unhex(t, "01"))
	if r.Err() != nil || r.Int() != 1 || r.End() != nil {
		t.Fatalf("after Reset: %v", r.Err())
	}
}

func TestReaderFail(t *testing.T) {
	mine := errors.New("count mismatch")
	r := NewReader(unhex(t, "92 01 02"))
	if n := r.ArrayLen(); n != 2 {
		t.Fatal(n)
	}
	r.Fail(mine)
	if r.Int() != 0 || !errors.Is(r.End(), mine) || r.Len() != 0 {
		t.Fatalf("after Fail: %v", r.End())
	}
}

func TestPeek(t *testing.T) {
	r := NewReader(unhex(t, "c0 05"))
	if c, ok := r.Peek(); !ok || c != codeNil || r.Len() != 2 {
		t.Fatalf("peek %x %v", c, ok)
	}
	if !r.IsNil() || r.IsNil() {
		t.Fatal("IsNil")
	}
	if c, ok := r.Peek(); !ok || c != 5 {
		t.Fatalf("peek %x %v", c, ok)
	}
	r.Int()
	if _, ok := r.Peek(); ok || r.Err() != nil {
		t.Fatalf("peek at the end: %v", r.Err())
	}
}

// TestRoundTrip reads back random values appended in every form.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		i, u := int64(rng.Uint64())>>rng.IntN(64), rng.Uint64()>>rng.IntN(64)
		s := strings.Repeat("é", []int{0, 1, 15, 16, 127, 128, 40000}[rng.IntN(7)])
		tm := time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)*int64(rng.IntN(2)))
		n := rng.IntN(20)
		b := AppendInt(nil, i)
		b = AppendIntWide(AppendUint(b, u), i)
		b = AppendBool(AppendNil(AppendTime(AppendStr(b, s), tm)), i < 0)
		b = AppendMapLen(AppendArrayLen(b, n), 0)
		b = append(b, make([]byte, n)...)
		r := NewReader(b)
		gi, gu, gw, gs, gt := r.Int(), r.Uint(math.MaxUint64), r.Int(), r.Str(), r.Time()
		gn, gb, ga, gm := r.IsNil(), r.Bool(), r.ArrayLen(), r.MapLen()
		if gi != i || gu != u || gw != i || gs != s || !gt.Equal(tm) || !gn || gb != (i < 0) || ga != n || gm != 0 || r.Len() != n {
			t.Fatalf("wrote %d %d %d %q %v %d, read %d %d %d %q %v %d: %v", i, u, i, s, tm, n, gi, gu, gw, gs, gt, ga, r.Err())
		}
	}
}

// TestReadsDoNotAllocate reads a value of each type, str aside.
func TestReadsDoNotAllocate(t *testing.T) {
	b := AppendMapLen(nil, 2)
	b = AppendInt(AppendStr(b, "int"), -1000)
	b = AppendArrayLen(AppendStr(b, "list"), 3)
	b = AppendBool(AppendTime(AppendUint(b, 1<<40), time.Unix(1<<35, 1)), true)
	allocs := testing.AllocsPerRun(100, func() {
		r := Reader{b: b}
		for range r.MapLen() {
			switch string(r.StrBytes()) {
			case "int":
				r.Int()
			default:
				r.ArrayLen()
				r.Uint(math.MaxUint64)
				r.Time()
				r.Bool()
			}
		}
		if r.End() != nil {
			t.Fatal(r.End())
		}
		r.Reset(b)
		r.Skip(0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}
