package msgpackwire

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"
)

// unhex returns the bytes of a hex string with spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appendCase is an appended value and the bytes it must give.
type appendCase struct {
	name string
	got  []byte
	want string // hex
}

func checkAppends(t *testing.T, cases []appendCase) {
	t.Helper()
	for _, c := range cases {
		if want := unhex(t, c.want); !bytes.Equal(c.got, want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, want)
		}
	}
}

func TestAppendScalars(t *testing.T) {
	checkAppends(t, []appendCase{
		{"nil", AppendNil(nil), "c0"},
		{"false", AppendBool(nil, false), "c2"},
		{"true", AppendBool(nil, true), "c3"},
		{"appends", AppendBool(AppendNil([]byte{1}), true), "01 c0 c3"},
	})
}

func TestAppendUint(t *testing.T) {
	checkAppends(t, []appendCase{
		{"0", AppendUint(nil, 0), "00"},
		{"127", AppendUint(nil, 127), "7f"},
		{"128", AppendUint(nil, 128), "cc 80"},
		{"255", AppendUint(nil, 255), "cc ff"},
		{"256", AppendUint(nil, 256), "cd 01 00"},
		{"65535", AppendUint(nil, math.MaxUint16), "cd ff ff"},
		{"65536", AppendUint(nil, 1<<16), "ce 00 01 00 00"},
		{"MaxUint32", AppendUint(nil, math.MaxUint32), "ce ff ff ff ff"},
		{"1<<32", AppendUint(nil, 1<<32), "cf 00 00 00 01 00 00 00 00"},
		{"MaxUint64", AppendUint(nil, math.MaxUint64), "cf ff ff ff ff ff ff ff ff"},
	})
}

func TestAppendInt(t *testing.T) {
	checkAppends(t, []appendCase{
		{"0", AppendInt(nil, 0), "00"},
		{"127", AppendInt(nil, 127), "7f"},
		{"128", AppendInt(nil, 128), "cc 80"},
		{"MaxInt64", AppendInt(nil, math.MaxInt64), "cf 7f ff ff ff ff ff ff ff"},
		{"-1", AppendInt(nil, -1), "ff"},
		{"-32", AppendInt(nil, -32), "e0"},
		{"-33", AppendInt(nil, -33), "d0 df"},
		{"-128", AppendInt(nil, math.MinInt8), "d0 80"},
		{"-129", AppendInt(nil, -129), "d1 ff 7f"},
		{"-32768", AppendInt(nil, math.MinInt16), "d1 80 00"},
		{"-32769", AppendInt(nil, -32769), "d2 ff ff 7f ff"},
		{"MinInt32", AppendInt(nil, math.MinInt32), "d2 80 00 00 00"},
		{"MinInt32-1", AppendInt(nil, math.MinInt32-1), "d3 ff ff ff ff 7f ff ff ff"},
		{"MinInt64", AppendInt(nil, math.MinInt64), "d3 80 00 00 00 00 00 00 00"},
	})
}

func TestAppendIntWide(t *testing.T) {
	checkAppends(t, []appendCase{
		{"300", AppendIntWide(nil, 300), "cd 01 2c"},
		{"-32", AppendIntWide(nil, -32), "e0"},
		{"-33", AppendIntWide(nil, -33), "d3 ff ff ff ff ff ff ff df"},
		{"MinInt32", AppendIntWide(nil, math.MinInt32), "d3 ff ff ff ff 80 00 00 00"},
		{"MinInt64", AppendIntWide(nil, math.MinInt64), "d3 80 00 00 00 00 00 00 00"},
	})
}

func TestAppendStr(t *testing.T) {
	for _, tt := range []struct {
		n    int
		head string
	}{
		{0, "a0"}, {1, "a1"}, {31, "bf"}, {32, "d9 20"}, {255, "d9 ff"}, {256, "da 01 00"},
		{math.MaxUint16, "da ff ff"}, {1 << 16, "db 00 01 00 00"},
	} {
		s := strings.Repeat("x", tt.n)
		got := AppendStr(nil, s)
		if head := unhex(t, tt.head); !bytes.Equal(got, append(head, s...)) {
			t.Errorf("string of %d: header % x, want % x", tt.n, got[:min(len(got), 5)], head)
		}
	}
	checkAppends(t, []appendCase{
		{"invalid UTF-8 as is", AppendStr(nil, "a\xffb"), "a3 61 ff 62"},
		{"valid", AppendValidStr(nil, "é"), "a2 c3 a9"},
		{"invalid replaced", AppendValidStr(nil, "a\xff\xfeb"), "a5 61 ef bf bd 62"},
	})
}

func TestAppendLengths(t *testing.T) {
	checkAppends(t, []appendCase{
		{"array 0", AppendArrayLen(nil, 0), "90"},
		{"array 15", AppendArrayLen(nil, 15), "9f"},
		{"array 16", AppendArrayLen(nil, 16), "dc 00 10"},
		{"array 65535", AppendArrayLen(nil, math.MaxUint16), "dc ff ff"},
		{"array 65536", AppendArrayLen(nil, 1<<16), "dd 00 01 00 00"},
		{"map 0", AppendMapLen(nil, 0), "80"},
		{"map 15", AppendMapLen(nil, 15), "8f"},
		{"map 16", AppendMapLen(nil, 16), "de 00 10"},
		{"map 65535", AppendMapLen(nil, math.MaxUint16), "de ff ff"},
		{"map 65536", AppendMapLen(nil, 1<<16), "df 00 01 00 00"},
	})
}

func TestAppendTime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	checkAppends(t, []appendCase{
		{"epoch", AppendTime(nil, time.Unix(0, 0)), "d6 ff 00 00 00 00"},
		{"32-bit max", AppendTime(nil, time.Unix(math.MaxUint32, 0)), "d6 ff ff ff ff ff"},
		{"any zone", AppendTime(nil, time.Unix(1, 0).In(cet)), "d6 ff 00 00 00 01"},
		{"2^32 s", AppendTime(nil, time.Unix(1<<32, 0)), "d7 ff 00 00 00 01 00 00 00 00"},
		{"nanoseconds", AppendTime(nil, time.Unix(1, 1)), "d7 ff 00 00 00 04 00 00 00 01"},
		{"64-bit max", AppendTime(nil, time.Unix(1<<34-1, 999999999)), "d7 ff ee 6b 27 ff ff ff ff ff"},
		{"2^34 s", AppendTime(nil, time.Unix(1<<34, 0)), "c7 0c ff 00 00 00 00 00 00 00 04 00 00 00 00"},
		{"before 1970", AppendTime(nil, time.Unix(-1, 5)), "c7 0c ff 00 00 00 05 ff ff ff ff ff ff ff ff"},
		{"zero Time", AppendTime(nil, time.Time{}), "c7 0c ff 00 00 00 00 ff ff ff f1 88 6e 09 00"},
	})
}
