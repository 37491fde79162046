package protocol

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/sisbridge/sisbridge/internal/msgpackwire"
	"github.com/sisbridge/sisbridge/queue"
)

// decodeBoth decodes msgpack data with the event decoder and by reflection.
func decodeBoth(data []byte) (fast, slow Message, fastErr, slowErr error) {
	fastErr = decodeMessageMsgpack(data, &fast)
	slowErr = unmarshal(Msgpack, data, &slow)
	return fast, slow, fastErr, slowErr
}

// checkSame fails unless both decoders read data, alike, and DecodeMessage
// returns the same.
func checkSame(t *testing.T, data []byte) Message {
	t.Helper()
	fast, slow, fastErr, slowErr := decodeBoth(data)
	if fastErr != nil || slowErr != nil {
		t.Fatalf("event decoder: %v, reflection: %v", fastErr, slowErr)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("event decoder and reflection differ:\n got %+v\nwant %+v", fast, slow)
	}
	m, err := DecodeMessage(Msgpack, data)
	if err != nil || !reflect.DeepEqual(m, fast) {
		t.Fatalf("DecodeMessage: %v\n got %+v\nwant %+v", err, m, fast)
	}
	return fast
}

// inUTC returns m with its times in UTC, to compare with expected values.
func inUTC(m Message) Message {
	for i := range m.SessionUpdates {
		s := &m.SessionUpdates[i].Session
		s.TimeEnteredQueue = s.TimeEnteredQueue.UTC()
	}
	return m
}

func TestDecodeMsgpackMatchesReflection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		group := randString(rng)
		updates := make([]Update, rng.IntN(6))
		for j := range updates {
			updates[j] = randUpdate(rng, group)
		}
		seq := randUint(rng)
		data := AppendSessionsUpdated(Msgpack, nil, group, seq, updates)
		m := checkSame(t, data)
		if want := wantMessage(group, seq, updates); !reflect.DeepEqual(inUTC(m), want) {
			t.Fatalf("message %d:\n got %+v\nwant %+v", i, m, want)
		}
	}
}

// wantMessage is the Message that the encoder's SessionsUpdated of these
// updates decodes to, with times in UTC.
func wantMessage(group string, seq uint64, updates []Update) Message {
	valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	m := Message{Event: EventSessionsUpdated, ServiceGroupID: valid(group), Seq: seq, SessionUpdates: []SessionUpdate{}}
	for _, u := range updates {
		s := u.Session
		info := SessionInfo{ServiceGroupID: valid(s.ServiceGroupID), CallID: valid(s.CallID), QueuePosition: s.QueuePosition,
			PreferredAgentID: s.PreferredAgentID, MediaType: s.MediaType.String(), TimeEnteredQueue: s.TimeEnteredQueue.UTC(),
			CustomerInformation: valid(s.CustomerInformation), DialedNumber: valid(s.DialedNumber), IVRInformation: []IVRInfo{}}
		for _, iv := range s.IVRInformation {
			info.IVRInformation = append(info.IVRInformation, IVRInfo{Label: valid(iv.Label), Data: valid(iv.Data)})
		}
		m.SessionUpdates = append(m.SessionUpdates, SessionUpdate{UpdateType: u.Type.String(), Session: info, RemoveCause: u.Cause.String()})
	}
	return m
}

// randUpdate returns an update with every field random; the session is
// mostly in group, and now and then an enumeration is out of range.
func randUpdate(rng *rand.Rand, group string) Update {
	s := queue.Session{ServiceGroupID: group, CallID: randString(rng), QueuePosition: int(randInt(rng)),
		PreferredAgentID: int(randInt(rng)), MediaType: queue.MediaType(rng.IntN(len(queue.MediaTypes) + 1)),
		TimeEnteredQueue: randTime(rng), CustomerInformation: randString(rng), DialedNumber: randString(rng)}
	if rng.IntN(4) == 0 {
		s.ServiceGroupID = randString(rng)
	}
	for range rng.IntN(4) {
		s.IVRInformation = append(s.IVRInformation, queue.IVRInfo{Label: randString(rng), Data: randString(rng)})
	}
	return Update{Type: queue.UpdateType(rng.IntN(4)), Session: s, Cause: queue.RemoveCause(rng.IntN(len(queue.RemoveCauses) + 1))}
}

// randString returns a string of a length that takes each string form,
// now and then with invalid UTF-8.
func randString(rng *rand.Rand) string {
	n := []int{0, rng.IntN(32), 31, 32, rng.IntN(300), 255, 256, 1000, 1<<16 - 1, 1 << 16}[rng.IntN(10)]
	if n >= 1<<16-1 && rng.IntN(64) != 0 {
		n = 5 // keep the test quick
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcXYZ09 +@é\xff\x00"[rng.IntN(15)]
	}
	return string(b)
}

// intEdges are the integers at the edges of the msgpack integer forms.
var intEdges = []int64{0, 1, 31, 32, 127, 128, 255, 256, 1<<15 - 1, 1 << 15, 1<<16 - 1, 1 << 16, 1<<31 - 1, 1 << 31,
	1<<32 - 1, 1 << 32, math.MaxInt64, -1, -31, -32, -33, -127, -128, -129, -1 << 15, -1<<15 - 1, -1 << 31,
	-1<<31 - 1, math.MinInt64}

// randInt returns an edge of an integer form or a random int64.
func randInt(rng *rand.Rand) int64 {
	if rng.IntN(3) == 0 {
		return int64(rng.Uint64())
	}
	return intEdges[rng.IntN(len(intEdges))]
}

// randUint returns an edge of an integer form or a random uint64.
func randUint(rng *rand.Rand) uint64 {
	if rng.IntN(3) == 0 {
		return rng.Uint64()
	}
	return []uint64{0, 127, 128, 255, 256, 1<<16 - 1, 1 << 16, 1<<32 - 1, 1 << 32, math.MaxUint64}[rng.IntN(10)]
}

// randTime returns a time that takes one of the timestamp forms.
func randTime(rng *rand.Rand) time.Time {
	switch rng.IntN(6) {
	case 0:
		return time.Unix(rng.Int64N(1<<32), 0) // 32 bits
	case 1:
		return time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)) // 64 bits
	case 2:
		return time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)) // 96 bits
	case 3:
		return time.Time{}
	case 4:
		return time.Unix(0, 0)
	}
	return time.Date(2026, 11, 25, 9, 30, 1, 123e6, time.FixedZone("CET", 3600))
}

func TestDecodeMsgpackAnyForms(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		w := &mpWriter{rng: rng, lossy: i%2 == 1}
		want := w.message(rng)
		m := checkSame(t, w.b)
		if !w.lossy && !reflect.DeepEqual(inUTC(m), want) {
			t.Fatalf("message %d % x:\n got %+v\nwant %+v", i, w.b, m, want)
		}
	}
}

func TestDecodeMsgpackNils(t *testing.T) {
	w := &mpWriter{rng: rand.New(rand.NewPCG(5, 6))}
	w.mapLen(3)
	w.str("event")
	w.str(EventSessionsUpdated)
	w.str("Seq")
	w.nil()
	w.str("SessionUpdates")
	w.arrayLen(2)
	w.nil() // an update
	w.mapLen(3)
	w.str("UpdateType")
	w.nil()
	w.str("Session")
	w.mapLen(4)
	for _, k := range []string{"CallID", "QueuePosition", "TimeEnteredQueue", "IVRInformation"} {
		w.str(k)
		w.nil()
	}
	w.str("RemoveCause")
	w.nil()
	var m Message
	if err := decodeMessageMsgpack(w.b, &m); err != nil {
		t.Fatal(err)
	}
	want := Message{Event: EventSessionsUpdated, SessionUpdates: []SessionUpdate{{}, {}}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}
	// Reflection panics on a nil time: DecodeMessage must not.
	if got, err := DecodeMessage(Msgpack, w.b); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeMessage: %+v, %v", got, err)
	}
	if err := unmarshal(Msgpack, w.b, &m); err == nil {
		t.Fatal("reflection read a nil time.Time: drop the recover?")
	}
}

func TestDecodeMsgpackInterns(t *testing.T) {
	// An update whose strings are all enumerations or the group (and no
	// IVRInformation, whose empty slice allocates with -race).
	data := appendStrField(msgpackwire.AppendMapLen(nil, 3), "event", EventSessionsUpdated)
	data = appendStrField(data, "ServiceGroupID", "sales")
	data = msgpackwire.AppendArrayLen(msgpackwire.AppendStr(data, "SessionUpdates"), 1)
	data = appendStrField(msgpackwire.AppendMapLen(data, 3), "UpdateType", "Remove")
	data = appendStrField(data, "RemoveCause", "Overflow")
	data = appendStrField(msgpackwire.AppendMapLen(msgpackwire.AppendStr(data, "Session"), 2), "ServiceGroupID", "sales")
	data = appendStrField(data, "MediaType", "SMS")
	var m Message
	allocs := testing.AllocsPerRun(100, func() {
		m = Message{}
		if err := decodeMessageMsgpack(data, &m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 { // the group and the updates
		t.Errorf("%v allocations", allocs)
	}
	s := m.SessionUpdates[0].Session
	if unsafe.StringData(s.ServiceGroupID) != unsafe.StringData(m.ServiceGroupID) {
		t.Error("the session's group is a copy of the message's")
	}
	if u := m.SessionUpdates[0]; u.UpdateType != "Remove" || u.RemoveCause != "Overflow" || s.MediaType != "SMS" {
		t.Errorf("update %+v", u)
	}
}

func TestDecodeMsgpackDeclines(t *testing.T) {
	event := AppendEvent(Msgpack, nil, EventKeepAlive)
	withKey := func(key string, value ...byte) []byte {
		b := append([]byte{0x82}, event[1:]...)
		return append(msgpackwire.AppendStr(b, key), value...)
	}
	nested := func(depth int) []byte {
		return withKey("x", append(bytes.Repeat([]byte{0x91}, depth), 0)...)
	}
	id := int64(1)
	tests := []struct {
		name    string
		data    []byte
		decline bool
	}{
		{"event", event, false},
		{"31 arrays deep", nested(31), false},
		{"32 arrays deep", nested(32), true},
		{"trailing byte", append(event[:len(event):len(event)], 0), true},
		{"truncated", event[:len(event)-1], true},
		{"unused code", withKey("x", 0x91, 0xc1), true},
		{"array past the end", withKey("x", 0xdd, 0, 0, 0, 9, 1), true},
		{"struct as array", withKey("SessionUpdates", 0x91, 0x90), true},
		{"time of another ext", withKey("SessionUpdates", 0x91, 0x81, 0xa7, 'S', 'e', 's', 's', 'i', 'o', 'n', 0x81,
			0xb0, 'T', 'i', 'm', 'e', 'E', 'n', 't', 'e', 'r', 'e', 'd', 'Q', 'u', 'e', 'u', 'e', 0xd6, 1, 0, 0, 0, 0), true},
		{"reply", AppendReply(Msgpack, nil, &id, nil), true},
		{"event with id", withKey("id", 1), true},
	}
	for _, tt := range tests {
		var m Message
		err := decodeMessageMsgpack(tt.data, &m)
		if (err != nil) != tt.decline {
			t.Errorf("%s: %v", tt.name, err)
		}
		if err == nil && msgpackwire.Bounds(tt.data) != nil {
			t.Errorf("%s: read what msgpackwire.Bounds refuses", tt.name)
		}
	}
	if m, err := DecodeMessage(Msgpack, withKey("id", 1)); err != nil || m.ID == nil || m.Event != EventKeepAlive {
		t.Errorf("event with id: %+v %v", m, err)
	}
}

// mpWriter writes msgpack in random forms, every one valid: the longer
// forms of lengths and integers, bin for str, ext for fixext, the keys
// in random order, unknown keys with random values, and known keys given
// twice, a decoy value first. With lossy set, it also leaves out keys and
// writes nil for structs: the message then decodes to something else than
// the one it writes (the decoys show through), which only the reflection
// decoder tells.
type mpWriter struct {
	b     []byte
	rng   *rand.Rand
	lossy bool
}

// entry is one key and value of a map.
type entry struct {
	key   string
	value func()
	decoy bool
}

// object writes a map of the entries, adding unknown keys and decoys.
func (w *mpWriter) object(entries []entry, decoy func(key string) func()) {
	n := len(entries)
	for i := range n {
		for w.rng.IntN(6) == 0 {
			entries = append(entries, entry{key: entries[i].key, value: decoy(entries[i].key), decoy: true})
		}
	}
	for w.rng.IntN(3) == 0 {
		key := []string{"", "x", "Event", "serviceGroupID", "Session ", "Ω", strings.Repeat("k", 40)}[w.rng.IntN(7)]
		entries = append(entries, entry{key: key, value: func() { w.junk(0) }})
	}
	w.rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	if w.lossy && w.rng.IntN(4) == 0 {
		entries = entries[1:]
	}
	putDecoysFirst(entries)
	w.mapLen(len(entries))
	for _, e := range entries {
		w.str(e.key)
		e.value()
	}
}

// putDecoysFirst swaps values so that a key's decoy comes before its value.
func putDecoysFirst(entries []entry) {
	for i := range entries {
		for j := i + 1; j < len(entries); j++ {
			if entries[i].key == entries[j].key && !entries[i].decoy && entries[j].decoy {
				entries[i], entries[j] = entries[j], entries[i]
			}
		}
	}
}

// message writes a random SessionsUpdated and returns it as it decodes.
func (w *mpWriter) message(rng *rand.Rand) Message {
	m := Message{Event: EventSessionsUpdated, ServiceGroupID: randString(rng), Seq: randUint(rng)}
	for range rng.IntN(5) {
		u := randUpdate(rng, m.ServiceGroupID)
		m.SessionUpdates = append(m.SessionUpdates, wantMessage("", 0, []Update{u}).SessionUpdates[0])
	}
	if m.SessionUpdates == nil && rng.IntN(2) == 0 {
		m.SessionUpdates = []SessionUpdate{}
	}
	w.object([]entry{
		{key: "event", value: func() { w.str(m.Event) }},
		{key: "ServiceGroupID", value: func() { w.str(m.ServiceGroupID) }},
		{key: "Seq", value: func() { w.uint(m.Seq) }},
		{key: "SessionUpdates", value: func() { w.updates(m.SessionUpdates) }},
	}, w.decoy)
	return m
}

// updates writes an array of updates; nil as nil.
func (w *mpWriter) updates(us []SessionUpdate) {
	if us == nil {
		w.nil()
		return
	}
	w.arrayLen(len(us))
	for _, u := range us {
		if w.lossy && w.rng.IntN(4) == 0 {
			w.nil()
			continue
		}
		w.object([]entry{
			{key: "UpdateType", value: func() { w.str(u.UpdateType) }},
			{key: "Session", value: func() { w.session(u.Session) }},
			{key: "RemoveCause", value: func() { w.str(u.RemoveCause) }},
		}, w.decoy)
	}
}

// session writes a SessionInfo.
func (w *mpWriter) session(s SessionInfo) {
	if w.lossy && w.rng.IntN(8) == 0 {
		w.nil()
		return
	}
	w.object([]entry{
		{key: "ServiceGroupID", value: func() { w.str(s.ServiceGroupID) }},
		{key: "CallID", value: func() { w.str(s.CallID) }},
		{key: "QueuePosition", value: func() { w.int(int64(s.QueuePosition)) }},
		{key: "PreferredAgentID", value: func() { w.int(int64(s.PreferredAgentID)) }},
		{key: "MediaType", value: func() { w.str(s.MediaType) }},
		{key: "TimeEnteredQueue", value: func() { w.time(s.TimeEnteredQueue) }},
		{key: "CustomerInformation", value: func() { w.str(s.CustomerInformation) }},
		{key: "DialedNumber", value: func() { w.str(s.DialedNumber) }},
		{key: "IVRInformation", value: func() { w.ivr(s.IVRInformation) }},
	}, w.decoy)
}

// ivr writes IVRInformation; nil as nil.
func (w *mpWriter) ivr(items []IVRInfo) {
	if items == nil {
		w.nil()
		return
	}
	w.arrayLen(len(items))
	for _, iv := range items {
		if w.lossy && w.rng.IntN(4) == 0 {
			w.nil()
			continue
		}
		w.object([]entry{
			{key: "Label", value: func() { w.str(iv.Label) }},
			{key: "Data", value: func() { w.str(iv.Data) }},
		}, w.decoy)
	}
}

// decoy returns a writer of another value for a known key, which the value
// written after it overrides: nil, or a random value of the key's type.
func (w *mpWriter) decoy(key string) func() {
	rng := w.rng
	other := randUpdate(rng, "g")
	info := wantMessage("", 0, []Update{other}).SessionUpdates[0]
	return func() {
		switch {
		case rng.IntN(4) == 0 && key != "TimeEnteredQueue": // reflection panics on nil
			w.nil()
		case key == "Seq" || key == "QueuePosition" || key == "PreferredAgentID":
			w.int(randInt(rng))
		case key == "TimeEnteredQueue":
			w.time(randTime(rng))
		case key == "SessionUpdates":
			w.updates([]SessionUpdate{info, info, info}[:rng.IntN(4)])
		case key == "Session":
			w.session(info.Session)
		case key == "IVRInformation":
			w.ivr([]IVRInfo{{"a", "b"}, {"c", "d"}, {"e", "f"}}[:rng.IntN(4)])
		default:
			w.str(randString(rng))
		}
	}
}

// junk writes a random value of any type, as an unknown key's.
func (w *mpWriter) junk(depth int) {
	switch k := w.rng.IntN(12); {
	case k == 0 && depth < 3:
		n := w.rng.IntN(4)
		w.arrayLen(n)
		for range n {
			w.junk(depth + 1)
		}
	case k == 1 && depth < 3:
		n := w.rng.IntN(3)
		w.mapLen(n)
		for range 2 * n {
			w.junk(depth + 1)
		}
	case k == 2:
		w.b = append(w.b, []byte{0xc0, 0xc2, 0xc3}[w.rng.IntN(3)])
	case k == 3:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xca), w.rng.Uint32())
	case k == 4:
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xcb), w.rng.Uint64())
	case k == 5:
		w.ext(int8(w.rng.IntN(256)-128), make([]byte, []int{1, 2, 4, 8, 16, 0, 3, 12}[w.rng.IntN(8)]))
	case k == 6:
		w.time(randTime(w.rng))
	case k < 9:
		w.int(randInt(w.rng))
	default:
		w.str(randString(w.rng))
	}
}

// nil writes nil.
func (w *mpWriter) nil() { w.b = append(w.b, 0xc0) }

// length writes a length in a form chosen at random from those that hold
// it: the fix code (up to fixMax; -1: none) or codes, those of the 8, 16 and
// 32 bit forms (0: none).
func (w *mpWriter) length(n int, fix byte, fixMax int, codes ...byte) {
	forms := []int{}
	if n <= fixMax {
		forms = append(forms, 0)
	}
	for i, c := range codes {
		if c != 0 && n < 1<<(8<<i) {
			forms = append(forms, i+1)
		}
	}
	switch f := forms[w.rng.IntN(len(forms))]; f {
	case 0:
		w.b = append(w.b, fix|byte(n))
	default:
		w.b = append(w.b, codes[f-1])
		for i := (1 << (f - 1)) - 1; i >= 0; i-- {
			w.b = append(w.b, byte(n>>(8*i)))
		}
	}
}

// mapLen writes a map header.
func (w *mpWriter) mapLen(n int) { w.length(n, 0x80, 15, 0, 0xde, 0xdf) }

// arrayLen writes an array header.
func (w *mpWriter) arrayLen(n int) { w.length(n, 0x90, 15, 0, 0xdc, 0xdd) }

// str writes a string as str or bin; the empty string also as nil.
func (w *mpWriter) str(s string) {
	switch {
	case s == "" && w.rng.IntN(4) == 0:
		w.nil()
		return
	case w.rng.IntN(4) == 0:
		w.length(len(s), 0, -1, 0xc4, 0xc5, 0xc6)
	default:
		w.length(len(s), 0xa0, 31, 0xd9, 0xda, 0xdb)
	}
	w.b = append(w.b, s...)
}

// int writes an integer in any form that holds it; 0 also as nil.
func (w *mpWriter) int(v int64) {
	type form struct {
		code  byte
		width int
		fits  bool
	}
	forms := []form{
		{0, 0, v >= -32 && v <= 127}, {0xc0, 0, v == 0},
		{0xcc, 1, v >= 0 && v < 1<<8}, {0xcd, 2, v >= 0 && v < 1<<16}, {0xce, 4, v >= 0 && v < 1<<32}, {0xcf, 8, v >= 0},
		{0xd0, 1, v == int64(int8(v))}, {0xd1, 2, v == int64(int16(v))}, {0xd2, 4, v == int64(int32(v))}, {0xd3, 8, true},
	}
	for {
		f := forms[w.rng.IntN(len(forms))]
		if !f.fits {
			continue
		}
		if f.code == 0 {
			w.b = append(w.b, byte(v))
			return
		}
		w.b = append(w.b, f.code)
		for i := f.width - 1; i >= 0; i-- {
			w.b = append(w.b, byte(v>>(8*i)))
		}
		return
	}
}

// uint writes an unsigned integer: above the int64 range as uint64.
func (w *mpWriter) uint(v uint64) {
	if v > math.MaxInt64 || w.rng.IntN(4) == 0 {
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xcf), v)
		return
	}
	w.int(int64(v))
}

// time writes a timestamp in a form that holds it, as fixext or ext.
func (w *mpWriter) time(t time.Time) {
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	var payloads [][]byte
	if nsec == 0 && sec >= 0 && sec < 1<<32 {
		payloads = append(payloads, binary.BigEndian.AppendUint32(nil, uint32(sec)))
	}
	if sec >= 0 && sec < 1<<34 {
		payloads = append(payloads, binary.BigEndian.AppendUint64(nil, nsec<<34|uint64(sec)))
	}
	payloads = append(payloads, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, uint32(nsec)), uint64(sec)))
	w.ext(-1, payloads[w.rng.IntN(len(payloads))])
}

// ext writes an extension value as fixext (if its length has one) or ext.
func (w *mpWriter) ext(typ int8, payload []byte) {
	fix := map[int]byte{1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}[len(payload)]
	if fix != 0 && w.rng.IntN(2) == 0 {
		w.b = append(w.b, fix)
	} else {
		w.length(len(payload), 0, -1, 0xc7, 0xc8, 0xc9)
	}
	w.b = append(append(w.b, byte(typ)), payload...)
}

func TestDecodeMsgpackLongArray(t *testing.T) {
	n := maxPrealloc + 1000
	b := appendStrField(msgpackwire.AppendMapLen(nil, 3), "event", EventSessionsUpdated)
	b = msgpackwire.AppendArrayLen(msgpackwire.AppendStr(b, "SessionUpdates"), 3) // a shorter value first, overridden
	for range 3 {
		b = appendStrField(msgpackwire.AppendMapLen(b, 1), "RemoveCause", "Overflow")
	}
	b = msgpackwire.AppendArrayLen(msgpackwire.AppendStr(b, "SessionUpdates"), n)
	for i := range n {
		if i%1000 == 1 {
			b = appendStrField(msgpackwire.AppendMapLen(b, 1), "UpdateType", "Add")
		} else {
			b = append(b, 0xc0)
		}
	}
	m := checkSame(t, b)
	if len(m.SessionUpdates) != n || m.SessionUpdates[1].UpdateType != "Add" || m.SessionUpdates[1].RemoveCause != "Overflow" {
		t.Fatalf("%d updates, [1] = %+v", len(m.SessionUpdates), m.SessionUpdates[1])
	}
}

func FuzzDecodeMsgpackEvent(f *testing.F) {
	id := int64(3)
	f.Add(AppendSessionsUpdated(Msgpack, nil, "g", 1, sampleUpdates()))
	f.Add(AppendInitialDataComplete(Msgpack, nil, "g", 9))
	f.Add(AppendEvent(Msgpack, nil, EventKeepAlive))
	f.Add(AppendFault(Msgpack, nil, &id, Faultf(NoLicenseFault, "none")))
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 20 {
		w := &mpWriter{rng: rng, lossy: i%2 == 1}
		w.message(rng)
		if len(w.b) < 4096 {
			f.Add(w.b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, slow, fastErr, slowErr := decodeBoth(data)
		if fastErr == nil && msgpackwire.Bounds(data) != nil {
			t.Fatalf("read what msgpackwire.Bounds refuses: %+v", fast)
		}
		if fastErr == nil && slowErr == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("event decoder and reflection differ:\n got %+v\nwant %+v", fast, slow)
		}
		m, err := DecodeMessage(Msgpack, data)
		if fastErr == nil && fast.Event != "" && (err != nil || !reflect.DeepEqual(m, fast)) {
			t.Fatalf("DecodeMessage: %v\n got %+v\nwant %+v", err, m, fast)
		}
	})
}
