package users

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func sampleRecord() record {
	t := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	return record{
		LogonID: "alice@example.com",
		Hash:    secret(fast.WithDefaults().newHash("correct horse")),
		Roles:   []string{"Auditor", RoleHostAdministrator},
		Created: t, Updated: t.Add(time.Hour),
	}
}

// encodeMap encodes key/value pairs in order, for hand-made records.
func encodeMap(t *testing.T, kv ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(len(kv) / 2); err != nil {
		t.Fatal(err)
	}
	for _, v := range kv {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func sameRecord(a, b record) bool {
	return a.LogonID == b.LogonID && a.Hash == b.Hash && slices.Equal(a.Roles, b.Roles) &&
		a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated)
}

func TestRecordRoundTrip(t *testing.T) {
	r := sampleRecord()
	data, err := encodeRecord(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRecord(got, r) || got.Created.Location() != time.UTC {
		t.Fatalf("round trip %+v, want %+v", got, r)
	}
	r.Roles = nil
	data, _ = encodeRecord(&r)
	if got, err := decodeRecord(data); err != nil || len(got.Roles) != 0 {
		t.Fatalf("no roles: %+v, %v", got, err)
	}
}

func TestDecodeRecord(t *testing.T) {
	r := sampleRecord()
	h := string(r.Hash)
	roles := []string{"Auditor", RoleHostAdministrator}
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"hand-made", encodeMap(t, "v", 1, "id", "alice", "h", h, "r", roles, "c", r.Created, "u", r.Updated), true},
		{"keys in another order", encodeMap(t, "r", roles, "h", h, "id", "alice", "v", 1), true},
		{"unknown keys ignored", encodeMap(t, "v", 1, "id", "alice", "h", h, "x", map[string]any{"deep": []int{1, 2}}, "future", "yes"), true},
		{"no roles key", encodeMap(t, "v", 1, "id", "alice", "h", h), true},
		{"version 2", encodeMap(t, "v", 2, "id", "alice", "h", h), false},
		{"no version", encodeMap(t, "id", "alice", "h", h), false},
		{"key twice", encodeMap(t, "v", 1, "id", "alice", "id", "bob", "h", h), false},
		{"no hash", encodeMap(t, "v", 1, "id", "alice"), false},
		{"bad hash", encodeMap(t, "v", 1, "id", "alice", "h", "$2a$10$bcrypt"), false},
		{"bad logon ID", encodeMap(t, "v", 1, "id", "a b", "h", h), false},
		{"roles not sorted", encodeMap(t, "v", 1, "id", "alice", "h", h, "r", []string{"b", "a"}), false},
		{"roles repeated", encodeMap(t, "v", 1, "id", "alice", "h", h, "r", []string{"a", "a"}), false},
		{"too many roles", encodeMap(t, "v", 1, "id", "alice", "h", h, "r", make([]string, MaxRoles+1)), false},
		{"id not a string", encodeMap(t, "v", 1, "id", 7, "h", h), false},
		{"trailing bytes", append(encodeMap(t, "v", 1, "id", "alice", "h", h), 0xc0), false},
		{"not a map", []byte{0x93, 1, 2, 3}, false},
		{"empty", nil, false},
		{"map claims more keys than bytes", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, false},
		{"roles claim 4G entries", append(encodeMap(t, "v", 1, "id", "alice", "h", h)[:0:0], 0x81, 0xa1, 'r', 0xdd, 0xff, 0xff, 0xff, 0xff), false},
		{"too big", encodeMap(t, "v", 1, "id", "alice", "h", h, "x", strings.Repeat("x", maxRecordSize)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRecord(tt.data)
			if tt.ok != (err == nil) {
				t.Fatalf("decodeRecord = %v, want ok %v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("error %v does not wrap ErrCorrupt", err)
				}
				if strings.Contains(err.Error(), h[30:]) {
					t.Errorf("error %q quotes the hash", err)
				}
				return
			}
			if got.LogonID != "alice" || string(got.Hash) != h {
				t.Errorf("decoded %+v", got)
			}
		})
	}
}

// FuzzDecodeRecord: the decoder never panics on bucket contents, refuses
// with ErrCorrupt, and what it accepts encodes back to the same record.
func FuzzDecodeRecord(f *testing.F) {
	r := sampleRecord()
	data, err := encodeRecord(&r)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte{0x80})
	f.Add([]byte("not msgpack"))
	r.Roles = nil
	data, _ = encodeRecord(&r)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeRecord(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := encodeRecord(&got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !sameRecord(back, got) {
			t.Fatalf("round trip %+v, want %+v", back, got)
		}
		if checkLogonID(got.LogonID) != nil {
			t.Fatal("accepted a malformed LogonID")
		}
		if _, err := parsePHC(string(got.Hash)); err != nil {
			t.Fatal("accepted a malformed hash")
		}
	})
}
