package protocol

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A client decodes every event it receives: the msgpack path reads the
// messages field by field instead of through reflection, several times
// faster. Unknown keys are skipped.

var decoders = sync.Pool{New: func() any { return msgpack.NewDecoder(nil) }}

func decodeMessageMsgpack(data []byte, m *Message) error {
	d := decoders.Get().(*msgpack.Decoder)
	defer decoders.Put(d)
	d.Reset(bytes.NewReader(data))
	return eachKey(d, func(key string) error { return messageField(d, key, m) })
}

func eachKey(d *msgpack.Decoder, fn func(string) error) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	for range max(n, 0) {
		key, err := d.DecodeString()
		if err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func messageField(d *msgpack.Decoder, key string, m *Message) (err error) {
	switch key {
	case "event":
		m.Event, err = d.DecodeString()
	case "ServiceGroupID":
		m.ServiceGroupID, err = d.DecodeString()
	case "Seq":
		m.Seq, err = d.DecodeUint64()
	case "SessionUpdates":
		m.SessionUpdates, err = decodeUpdates(d)
	case "id", "result", "fault":
		return d.Skip() // replies are rare: decodeMessage reads them generically
	default:
		return d.Skip()
	}
	return err
}

func decodeUpdates(d *msgpack.Decoder) ([]SessionUpdate, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	out := make([]SessionUpdate, 0, min(n, 4096))
	for range n {
		var u SessionUpdate
		err := eachKey(d, func(key string) (err error) {
			switch key {
			case "UpdateType":
				u.UpdateType, err = d.DecodeString()
			case "RemoveCause":
				u.RemoveCause, err = d.DecodeString()
			case "Session":
				err = eachKey(d, func(k string) error { return sessionField(d, k, &u.Session) })
			default:
				err = d.Skip()
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func sessionField(d *msgpack.Decoder, key string, s *SessionInfo) (err error) {
	switch key {
	case "ServiceGroupID":
		s.ServiceGroupID, err = d.DecodeString()
	case "CallID":
		s.CallID, err = d.DecodeString()
	case "QueuePosition":
		s.QueuePosition, err = d.DecodeInt()
	case "PreferredAgentID":
		s.PreferredAgentID, err = d.DecodeInt()
	case "MediaType":
		s.MediaType, err = d.DecodeString()
	case "TimeEnteredQueue":
		s.TimeEnteredQueue, err = d.DecodeTime()
	case "CustomerInformation":
		s.CustomerInformation, err = d.DecodeString()
	case "DialedNumber":
		s.DialedNumber, err = d.DecodeString()
	case "IVRInformation":
		s.IVRInformation, err = decodeIVR(d)
	default:
		err = d.Skip()
	}
	return err
}

func decodeIVR(d *msgpack.Decoder) ([]IVRInfo, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]IVRInfo, 0, min(n, 256))
	for range n {
		var iv IVRInfo
		err := eachKey(d, func(key string) (err error) {
			switch key {
			case "Label":
				iv.Label, err = d.DecodeString()
			case "Data":
				iv.Data, err = d.DecodeString()
			default:
				err = d.Skip()
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, iv)
	}
	return out, nil
}
