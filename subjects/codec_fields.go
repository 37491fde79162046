package subjects

import (
	"fmt"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/vmihailenco/msgpack/v5"
)

// Event keys: v t g q ep op, then the change's (encodeChangeFields).
func encodeEvent(enc *msgpack.Encoder, e *Event) error {
	c := &e.Change
	if err := enc.EncodeMapLen(6 + changeKeys(e)); err != nil {
		return err
	}
	kv(enc, "v", SchemaVersion)
	kvs(enc, "t", e.Tenant)
	kvs(enc, "g", e.Group)
	kv(enc, "q", e.Seq)
	kv(enc, "ep", e.Epoch)
	kv(enc, "op", uint64(c.Op))
	return encodeChangeFields(enc, e)
}

// changeKeys is how many keys encodeChangeFields writes for e.
func changeKeys(e *Event) int {
	n := 4 // c p at, s or rc
	if !e.RouterTime.IsZero() {
		n++
	}
	if removedWith(&e.Change) {
		n += 2
	}
	return n
}

// removedWith says a removal carries its session's m and te.
func removedWith(c *queue.Change) bool {
	return c.Op == queue.OpRemove && !c.Session.TimeEnteredQueue.IsZero()
}

// encodeChangeFields writes the keys of a change that an event and a
// batch's change share: c p at [rt], then s (enqueue) or rc [m te].
func encodeChangeFields(enc *msgpack.Encoder, e *Event) error {
	c := &e.Change
	kvs(enc, "c", c.CallID)
	kv(enc, "p", uint64(c.Position))
	_ = enc.EncodeString("at")
	_ = enc.EncodeTime(e.Time)
	if !e.RouterTime.IsZero() {
		_ = enc.EncodeString("rt")
		_ = enc.EncodeTime(e.RouterTime)
	}
	if c.Op == queue.OpEnqueue {
		_ = enc.EncodeString("s")
		return encodeSession(enc, &c.Session, false)
	}
	kv(enc, "rc", uint64(c.Cause))
	if removedWith(c) {
		kv(enc, "m", uint64(c.Session.MediaType))
		_ = enc.EncodeString("te")
		return enc.EncodeTime(c.Session.TimeEnteredQueue)
	}
	return nil
}

func decodeEventField(d *msgpack.Decoder, key string, e *Event) (err error) {
	c := &e.Change
	switch key {
	case "t":
		e.Tenant, err = d.DecodeString()
	case "g":
		e.Group, err = d.DecodeString()
	case "q":
		e.Seq, err = d.DecodeUint64()
	case "at":
		e.Time, err = decodeTime(d)
	case "rt":
		e.RouterTime, err = decodeTime(d)
	case "ep":
		e.Epoch, err = d.DecodeUint64()
	case "op":
		var v uint8
		v, err = decodeUint8(d)
		c.Op = queue.Op(v)
	case "c":
		c.CallID, err = d.DecodeString()
	case "p":
		c.Position, err = d.DecodeInt()
	case "rc":
		var v uint8
		v, err = decodeUint8(d)
		c.Cause = queue.RemoveCause(v)
	case "s":
		err = decodeSession(d, &c.Session)
	case "m": // a removal's session
		var v uint8
		v, err = decodeUint8(d)
		c.Session.MediaType = queue.MediaType(v)
	case "te":
		c.Session.TimeEnteredQueue, err = decodeTime(d)
	default:
		err = d.Skip()
	}
	return err
}

// Snapshot keys: v t g q ss at s (sessions, each with its CallID).
func encodeSnapshot(enc *msgpack.Encoder, s *Snapshot) error {
	_ = enc.EncodeMapLen(7)
	kv(enc, "v", SchemaVersion)
	kvs(enc, "t", s.Tenant)
	kvs(enc, "g", s.Group)
	kv(enc, "q", s.Seq)
	kv(enc, "ss", s.StreamSeq)
	_ = enc.EncodeString("at")
	_ = enc.EncodeTime(s.Time)
	_ = enc.EncodeString("s")
	if err := enc.EncodeArrayLen(len(s.Sessions)); err != nil {
		return err
	}
	for i := range s.Sessions {
		if err := encodeSession(enc, &s.Sessions[i], true); err != nil {
			return err
		}
	}
	return nil
}

func decodeSnapshotField(d *msgpack.Decoder, key string, s *Snapshot) (err error) {
	switch key {
	case "t":
		s.Tenant, err = d.DecodeString()
	case "g":
		s.Group, err = d.DecodeString()
	case "q":
		s.Seq, err = d.DecodeUint64()
	case "ss":
		s.StreamSeq, err = d.DecodeUint64()
	case "at":
		s.Time, err = decodeTime(d)
	case "s":
		var n int
		if n, err = d.DecodeArrayLen(); err != nil || n < 0 {
			return err
		}
		s.Sessions = make([]queue.Session, min(n, 1<<16))[:0]
		for range n {
			var ss queue.Session
			if err := decodeSession(d, &ss); err != nil {
				return err
			}
			s.Sessions = append(s.Sessions, ss)
		}
	default:
		err = d.Skip()
	}
	return err
}

// Session keys: c (snapshots only) pa m te ci dn ivr. Group and position are
// implied by where the session is.
func encodeSession(enc *msgpack.Encoder, s *queue.Session, withID bool) error {
	n := 6
	if withID {
		n++
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if withID {
		kvs(enc, "c", s.CallID)
	}
	kv(enc, "pa", uint64(s.PreferredAgentID))
	kv(enc, "m", uint64(s.MediaType))
	_ = enc.EncodeString("te")
	_ = enc.EncodeTime(s.TimeEnteredQueue)
	kvs(enc, "ci", s.CustomerInformation)
	kvs(enc, "dn", s.DialedNumber)
	_ = enc.EncodeString("ivr")
	if err := enc.EncodeArrayLen(len(s.IVRInformation)); err != nil {
		return err
	}
	for _, iv := range s.IVRInformation {
		_ = enc.EncodeArrayLen(2)
		_ = enc.EncodeString(iv.Label)
		if err := enc.EncodeString(iv.Data); err != nil {
			return err
		}
	}
	return nil
}

func decodeSession(d *msgpack.Decoder, s *queue.Session) error {
	return decodeMap(d, func(key string) (err error) {
		switch key {
		case "c":
			s.CallID, err = d.DecodeString()
		case "pa":
			s.PreferredAgentID, err = d.DecodeInt()
		case "m":
			var v uint8
			v, err = decodeUint8(d)
			s.MediaType = queue.MediaType(v)
		case "te":
			s.TimeEnteredQueue, err = decodeTime(d)
		case "ci":
			s.CustomerInformation, err = d.DecodeString()
		case "dn":
			s.DialedNumber, err = d.DecodeString()
		case "ivr":
			s.IVRInformation, err = decodeIVR(d)
		default:
			err = d.Skip()
		}
		return err
	})
}

func decodeIVR(d *msgpack.Decoder) ([]queue.IVRInfo, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	out := make([]queue.IVRInfo, 0, min(n, 64))
	for range n {
		if m, err := d.DecodeArrayLen(); err != nil || m != 2 {
			return nil, fmt.Errorf("IVR item: want [label, data], got %d items (%v)", m, err)
		}
		var iv queue.IVRInfo
		if iv.Label, err = d.DecodeString(); err != nil {
			return nil, err
		}
		if iv.Data, err = d.DecodeString(); err != nil {
			return nil, err
		}
		out = append(out, iv)
	}
	return out, nil
}

// kv writes a key and an unsigned integer; encoding into a bytes.Buffer
// cannot fail, so the error is dropped.
func kv(enc *msgpack.Encoder, key string, v uint64) {
	_ = enc.EncodeString(key)
	_ = enc.EncodeUint(v)
}

func kvs(enc *msgpack.Encoder, key, v string) {
	_ = enc.EncodeString(key)
	_ = enc.EncodeString(v)
}
