package subjects

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/internal/msgpackwire"
	"github.com/vmihailenco/msgpack/v5"
)

// The bus encodes events and snapshots field by field: short keys keep each
// event small, enumerations travel as their numbers in the reference's order
// (see docs/bus.md), and a reader skips keys it does not know.

// EncodeEvent returns the msgpack encoding of e.
func EncodeEvent(e *Event) ([]byte, error) {
	return encode(func(enc *msgpack.Encoder) error { return encodeEvent(enc, e) })
}

// DecodeEvent decodes a message that carries one change, refusing other
// schema versions and malformed data with an error wrapping ErrVersion or
// ErrSchema. A message of several changes is refused too: read the bus with
// DecodeEvents.
func DecodeEvent(data []byte) (Event, error) {
	events, err := DecodeEvents(data)
	if err != nil {
		return Event{}, err
	}
	if len(events) != 1 {
		return events[0], fmt.Errorf("%w: the message carries %d changes: read it with DecodeEvents", ErrSchema, len(events))
	}
	return events[0], nil
}

// EncodeSnapshot returns the msgpack encoding of s.
func EncodeSnapshot(s *Snapshot) ([]byte, error) {
	return encode(func(enc *msgpack.Encoder) error { return encodeSnapshot(enc, s) })
}

// DecodeSnapshot decodes a snapshot; its sessions get their group and
// positions filled in.
func DecodeSnapshot(data []byte) (Snapshot, error) {
	var s Snapshot
	err := decode(data, "snapshot", func(d *msgpack.Decoder, key string) error { return decodeSnapshotField(d, key, &s) })
	for i := range s.Sessions {
		s.Sessions[i].ServiceGroupID, s.Sessions[i].QueuePosition = s.Group, i+1
	}
	return s, err
}

// EncodeTenant, EncodeGroup, EncodeStatus and EncodeLease encode directory
// entries, the router status and the adapter lease; the Decode functions
// reverse them.
func EncodeTenant(t Tenant) ([]byte, error)       { return encodeTagged(t) }
func EncodeGroup(g Group) ([]byte, error)         { return encodeTagged(g) }
func EncodeStatus(s RouterStatus) ([]byte, error) { return encodeTagged(s) }
func EncodeLease(l Lease) ([]byte, error)         { return encodeTagged(l) }

// DecodeTenant decodes a tenant directory entry.
func DecodeTenant(data []byte) (Tenant, error) { return decodeTagged[Tenant](data, "tenant") }

// DecodeGroup decodes a group directory entry.
func DecodeGroup(data []byte) (Group, error) { return decodeTagged[Group](data, "group") }

// DecodeLease decodes an adapter lease.
func DecodeLease(data []byte) (Lease, error) {
	l, err := decodeTagged[Lease](data, "adapter lease")
	l.Since = l.Since.UTC()
	return l, err
}

// DecodeStatus decodes a router status.
func DecodeStatus(data []byte) (RouterStatus, error) {
	s, err := decodeTagged[RouterStatus](data, "router status")
	s.Since, s.Updated = s.Since.UTC(), s.Updated.UTC()
	if s.Clock != nil {
		s.Clock.At = s.Clock.At.UTC()
	}
	return s, err
}

type tagged[T any] struct {
	V    int `msgpack:"v"`
	Body T   `msgpack:"b"`
}

func encodeTagged[T any](v T) ([]byte, error) {
	return msgpack.Marshal(tagged[T]{V: SchemaVersion, Body: v})
}

func decodeTagged[T any](data []byte, what string) (T, error) {
	var t tagged[T]
	if err := msgpackwire.Bounds(data); err != nil {
		return t.Body, fmt.Errorf("%w: %s: %v", ErrSchema, what, err)
	}
	if err := msgpack.Unmarshal(data, &t); err != nil {
		return t.Body, fmt.Errorf("%w: %s: %v", ErrSchema, what, err)
	}
	if t.V != SchemaVersion {
		return t.Body, fmt.Errorf("%w: %s version %d", ErrVersion, what, t.V)
	}
	return t.Body, nil
}

func encode(fn func(*msgpack.Encoder) error) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	if err := fn(enc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode reads one map, checking its "v" key, and hands every other key to field.
func decode(data []byte, what string, field func(*msgpack.Decoder, string) error) error {
	if err := msgpackwire.Bounds(data); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSchema, what, err)
	}
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	d.Reset(bytes.NewReader(data))
	version := -1
	err := decodeMap(d, func(key string) error {
		if key == "v" {
			v, err := d.DecodeInt()
			version = v
			return err
		}
		return field(d, key)
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s: %v", ErrSchema, what, err)
	case version != SchemaVersion:
		return fmt.Errorf("%w: %s version %d", ErrVersion, what, version)
	}
	return nil
}

func decodeMap(d *msgpack.Decoder, field func(string) error) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 {
		return errors.New("nil map")
	}
	for range n {
		key, err := d.DecodeString()
		if err != nil {
			return err
		}
		if err := field(key); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	return nil
}

func decodeTime(d *msgpack.Decoder) (time.Time, error) {
	t, err := d.DecodeTime()
	return t.UTC(), err
}

func decodeUint8(d *msgpack.Decoder) (uint8, error) {
	v, err := d.DecodeUint64()
	if err == nil && v > 255 {
		err = fmt.Errorf("value %d out of range", v)
	}
	return uint8(v), err
}
