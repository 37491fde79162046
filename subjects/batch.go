package subjects

import (
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// A message on a group's subject carries one change (an Event as
// EncodeEvent writes it) or, when the adapter has a backlog, several
// consecutive changes of the group: the same map with key "q" the sequence
// number of the first change and key "b" an array of changes, each a map of
// op, c, p, at and rt, and s or rc (with a removal's m and te). Read every message with DecodeEvents.

// EncodeEvents encodes consecutive changes of one group as one message;
// one event is encoded as EncodeEvent does.
func EncodeEvents(events []Event) ([]byte, error) {
	if err := checkBatch(events); err != nil {
		return nil, err
	}
	if len(events) == 1 {
		return EncodeEvent(&events[0])
	}
	return encode(func(enc *msgpack.Encoder) error { return encodeBatch(enc, events) })
}

func checkBatch(events []Event) error {
	if len(events) == 0 {
		return errors.New("encode events: none")
	}
	first := events[0]
	for i, e := range events {
		if e.Tenant != first.Tenant || e.Group != first.Group || e.Seq != first.Seq+uint64(i) {
			return fmt.Errorf("encode events: event %d (%s.%s %d) does not follow %s.%s %d", i, e.Tenant, e.Group, e.Seq, first.Tenant, first.Group, first.Seq)
		}
	}
	return nil
}

func encodeBatch(enc *msgpack.Encoder, events []Event) error {
	first := &events[0]
	_ = enc.EncodeMapLen(7)
	kv(enc, "v", SchemaVersion)
	kvs(enc, "t", first.Tenant)
	kvs(enc, "g", first.Group)
	kv(enc, "q", first.Seq)
	_ = enc.EncodeString("at")
	_ = enc.EncodeTime(first.Time)
	kv(enc, "ep", first.Epoch)
	_ = enc.EncodeString("b")
	if err := enc.EncodeArrayLen(len(events)); err != nil {
		return err
	}
	for i := range events {
		if err := encodeChange(enc, &events[i]); err != nil {
			return err
		}
	}
	return nil
}

// encodeChange writes one change of a batch: op, then the fields an
// event has too (encodeChangeFields).
func encodeChange(enc *msgpack.Encoder, e *Event) error {
	_ = enc.EncodeMapLen(1 + changeKeys(e))
	kv(enc, "op", uint64(e.Change.Op))
	return encodeChangeFields(enc, e)
}

// DecodeEvents decodes a message of a group's subject into its changes, in
// order, each with its own sequence number.
func DecodeEvents(data []byte) ([]Event, error) {
	var head Event
	var batch []Event
	err := decode(data, "event", func(d *msgpack.Decoder, key string) error {
		if key == "b" {
			return decodeBatch(d, &batch)
		}
		return decodeEventField(d, key, &head)
	})
	if err != nil {
		return nil, err
	}
	if batch == nil {
		return []Event{head}, nil
	}
	for i := range batch {
		e := &batch[i]
		e.Tenant, e.Group, e.Seq, e.Epoch = head.Tenant, head.Group, head.Seq+uint64(i), head.Epoch
	}
	return batch, nil
}

func decodeBatch(d *msgpack.Decoder, out *[]Event) error {
	n, err := d.DecodeArrayLen()
	if err != nil || n <= 0 {
		return fmt.Errorf("batch: %d changes (%v)", n, err)
	}
	*out = make([]Event, 0, min(n, 4096))
	for range n {
		var e Event
		if err := decodeMap(d, func(key string) error { return decodeEventField(d, key, &e) }); err != nil {
			return err
		}
		*out = append(*out, e)
	}
	return nil
}
