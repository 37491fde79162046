package msgpackwire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// oneOfEach holds a value of every type code family in each of its widths.
var oneOfEach = []string{
	"00", "7f", "e0", "ff", // fixint
	"c0", "c2", "c3", // nil, bool
	"cc 01", "cd 00 01", "ce 00 00 00 01", "cf 00 00 00 00 00 00 00 01", // uint
	"d0 ff", "d1 ff ff", "d2 ff ff ff ff", "d3 ff ff ff ff ff ff ff ff", // int
	"ca 3f 80 00 00", "cb 3f f0 00 00 00 00 00 00", // float
	"a0", "a3 61 62 63", "d9 01 61", "da 00 01 61", "db 00 00 00 01 61", // str
	"c4 00", "c4 01 00", "c5 00 01 00", "c6 00 00 00 01 00", // bin
	"d4 01 00", "d5 01 00 00", "d6 ff 00 00 00 00", "d7 ff 00 00 00 00 00 00 00 00", // fixext
	"d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
	"c7 00 01", "c7 01 01 00", "c8 00 01 01 00", "c9 00 00 00 01 01 00", // ext
	"90", "92 01 a1 61", "dc 00 01 c0", "dd 00 00 00 02 c2 c3", // array
	"80", "81 a1 6b 01", "de 00 01 01 02", "df 00 00 00 01 90 80", // map
	"82 91 01 81 01 01 93 c0 c0 c0 a0", // nested, with keys of any type
}

func TestSkipEveryType(t *testing.T) {
	for _, in := range oneOfEach {
		data := unhex(t, in)
		r := NewReader(append(data, 0x2a))
		r.Skip(0)
		if r.Err() != nil || r.Len() != 1 {
			t.Errorf("%s: %v, %d bytes left, want 1", in, r.Err(), r.Len())
		}
		if err := Bounds(data); err != nil {
			t.Errorf("%s: %v", in, err)
		}
		for n := range len(data) {
			if err := Bounds(data[:n]); !errors.Is(err, ErrShort) {
				t.Errorf("%s cut to %d bytes: %v", in, n, err)
			}
		}
	}
}

func TestBoundsFails(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		err      error
		msg      string
	}{
		{"empty", "", ErrShort, "value runs past the end of the data"},
		{"trailing", "01 02 03", ErrTrailing, "2 bytes after the value"},
		{"unused code", "91 c1", ErrType, "unknown msgpack type 0xc1"},
		{"array 32 of 4 G", "dd ff ff ff ff 01", ErrShort, ""},
		{"map 32 of 4 G", "df ff ff ff ff 01 01", ErrShort, ""},
		{"map of an odd count", "81 01", ErrShort, ""},
		{"str 32 of 2 GB", "db 7f ff ff ff 41", ErrShort, ""},
		{"bin 32 of 4 GB", "c6 ff ff ff ff 41", ErrShort, ""},
		{"ext 32 of 4 GB", "c9 ff ff ff ff 01 41", ErrShort, ""},
		{"ext 32 of 4 GB - 1", "c9 ff ff ff fe 01 41", ErrShort, ""},
	} {
		err := Bounds(unhex(t, tt.in))
		if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want %v with %q", tt.name, err, tt.err, tt.msg)
		}
	}
}

// nest returns n arrays of one item, each in the one before, around 0;
// with maps, n maps of one entry whose value is the next.
func nest(n int, maps bool) []byte {
	var b []byte
	for range n {
		if maps {
			b = append(b, 0x81, 0xc0)
		} else {
			b = append(b, 0x91)
		}
	}
	return append(b, 0)
}

func TestDepthLimit(t *testing.T) {
	for _, maps := range []bool{false, true} {
		if err := Bounds(nest(MaxDepth, maps)); err != nil {
			t.Errorf("maps %v: %d deep: %v", maps, MaxDepth, err)
		}
		if err := Bounds(nest(MaxDepth+1, maps)); !errors.Is(err, ErrDepth) || err.Error() != "nested too deep" {
			t.Errorf("maps %v: %d deep: %v", maps, MaxDepth+1, err)
		}
	}
	r := NewReader(nest(2, false))
	if r.Skip(MaxDepth - 2); r.End() != nil {
		t.Errorf("skip at depth %d: %v", MaxDepth-2, r.End())
	}
	r.Reset(nest(2, false))
	if r.Skip(MaxDepth - 1); !errors.Is(r.Err(), ErrDepth) {
		t.Errorf("skip at depth %d: %v", MaxDepth-1, r.Err())
	}
	r.Reset([]byte{0})
	if r.Skip(MaxDepth + 1); !errors.Is(r.Err(), ErrDepth) || r.Len() != 0 {
		t.Errorf("skip past the limit: %v", r.Err())
	}
}

// TestBoundsAcceptsLibraryValues checks values that the reflection
// library encodes, as the callers of Bounds receive them.
func TestBoundsAcceptsLibraryValues(t *testing.T) {
	values := []any{
		nil, true, 1.5, float32(2.5), -1 << 40, uint64(1) << 63, "s", strings.Repeat("x", 70000), []byte{1, 2},
		time.Unix(1, 0), time.Unix(1<<40, 5), time.Time{}, []int{1, 2, 3}, make([]bool, 70000),
		map[string]any{"a": []any{map[string]int{"b": 1}, nil}, "t": time.Now()},
		struct {
			A int
			B []string
		}{1, []string{"x"}},
	}
	for _, v := range values {
		data, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Bounds(data); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
}

func TestBoundsDoesNotAllocate(t *testing.T) {
	good := unhex(t, strings.Join(oneOfEach, ""))
	good = append(AppendArrayLen(nil, len(oneOfEach)), good...)
	for _, data := range [][]byte{good, unhex(t, "dd ff ff ff ff 01"), nest(40, true), bytes.Repeat([]byte{0x91}, 20)} {
		if allocs := testing.AllocsPerRun(100, func() { _ = Bounds(data) }); allocs != 0 {
			t.Errorf("% x: %v allocations", data[:6], allocs)
		}
	}
	if err := Bounds(good); err != nil {
		t.Fatal(err)
	}
}
