package msgpackwire

import (
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkBounds checks a message shaped like a bus event: a map of
// strings, integers, a time and an array of maps.
func BenchmarkBounds(b *testing.B) {
	ivr := []map[string]string{{"Label": "Language", "Data": "English"}, {"Label": "Account", "Data": "123456"}}
	data, err := msgpack.Marshal(map[string]any{"v": 1, "b": map[string]any{"Tenant": "acme", "Group": "acme-sales",
		"Seq": 12345, "Time": time.Unix(1e9, 5), "Op": 1, "CallID": "c-123456", "Position": 7,
		"CustomerInformation": "+442079460123", "DialedNumber": "+442079460000", "IVRInformation": ivr}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Bounds(data); err != nil {
			b.Fatal(err)
		}
	}
}
