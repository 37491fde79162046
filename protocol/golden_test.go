package protocol

import (
	"bytes"
	"flag"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// goldenEvents is the msgpack encoding of goldenMessages, as the gateway
// has always written it: clients depend on these bytes. Regenerate it (only
// for a deliberate change of the wire format) with:
//
//	go test ./protocol -run TestMsgpackGolden -update
const goldenEvents = "testdata/events.msgpack"

var update = flag.Bool("update", false, "rewrite "+goldenEvents)

// goldenMessages encodes events that take every form the encoder writes:
// every integer and string width, the three timestamp widths, arrays of 16
// items and more, and invalid UTF-8.
func goldenMessages() []byte {
	var out []byte
	out = AppendSessionsUpdated(Msgpack, out, "acme-sales", 12345, benchUpdates())
	out = AppendSessionsUpdated(Msgpack, out, "g", 42, sampleUpdates())
	out = AppendSessionsUpdated(Msgpack, out, strings.Repeat("s", 300), math.MaxUint64, edgeUpdates())
	for _, seq := range []uint64{0, 127, 128, 255, 256, 1<<16 - 1, 1 << 16, 1<<32 - 1, 1 << 32} {
		out = AppendInitialDataComplete(Msgpack, out, "g", seq)
	}
	out = AppendEvent(Msgpack, out, EventKeepAlive)
	return AppendEvent(Msgpack, out, EventRouterDisconnected)
}

// edgeUpdates returns 20 updates whose integers, strings and times sit at
// the edges of their msgpack forms.
func edgeUpdates() []Update {
	ints := []int64{0, 31, 127, 128, 255, 256, 1<<16 - 1, 1 << 16, 1<<32 - 1, 1 << 32, math.MaxInt64, -1, -32, -33,
		-128, -129, -1 << 15, -1<<15 - 1, -1 << 31, math.MinInt64}
	lens := []int{0, 1, 31, 32, 255, 256, 1000}
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(1<<32-1, 0), time.Unix(1<<32, 0), time.Unix(5, 1),
		time.Unix(1<<34-1, 999999999), time.Unix(1<<34, 0), time.Unix(-1, 0), time.Unix(-1<<40, 7)}
	updates := make([]Update, 20)
	for i := range updates {
		s := queue.Session{ServiceGroupID: "g", CallID: strings.Repeat("c", lens[i%len(lens)]), QueuePosition: int(ints[i]),
			PreferredAgentID: int(ints[len(ints)-1-i]), MediaType: queue.MediaType(i % 6), TimeEnteredQueue: times[i%len(times)],
			CustomerInformation: "bad \xff utf8" + strings.Repeat("x", lens[(i+3)%len(lens)]), DialedNumber: "+442079460000"}
		for j := range i % 4 {
			s.IVRInformation = append(s.IVRInformation, queue.IVRInfo{Label: strings.Repeat("l", j), Data: "d"})
		}
		updates[i] = Update{Type: queue.UpdateType(i % 4), Session: s, Cause: queue.RemoveCause(i % 5)}
	}
	return updates
}

func TestMsgpackGolden(t *testing.T) {
	got := goldenMessages()
	if *update {
		if err := os.WriteFile(goldenEvents, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenEvents)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the msgpack encoding changed: %d bytes, want %d; first difference at byte %d", len(got), len(want), i)
	}
}
