package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sisbridge/sisbridge/internal/msgpackwire"
	"github.com/vmihailenco/msgpack/v5"
)

// DecodeRequest decodes a client request. A message that is not a request
// object returns an InvalidRequestFault; the Request then holds whatever ID
// could be read, for the fault reply.
func DecodeRequest(f Format, data []byte) (Request, *Fault) {
	var r Request
	if err := unmarshal(f, data, &r); err != nil {
		r.ID = readID(f, data)
		return r, Faultf(InvalidRequestFault, "malformed request: %v", err)
	}
	if r.Op == "" {
		return r, Faultf(InvalidRequestFault, `missing "op"`)
	}
	return r, nil
}

// readID makes a lenient second attempt at the id of a malformed request.
func readID(f Format, data []byte) *int64 {
	var probe struct {
		ID *int64 `json:"id" msgpack:"id"`
	}
	if unmarshal(f, data, &probe) != nil {
		return nil
	}
	return probe.ID
}

// DecodeMessage decodes a server message, as a client does.
func DecodeMessage(f Format, data []byte) (Message, error) {
	if f == Msgpack {
		// An event, read without reflection by a decoder that checks the
		// lengths itself as msgpackwire.Bounds does; the rest by reflection.
		if m, ok := decodeEventMsgpack(data); ok {
			return m, nil
		}
	}
	var m Message
	if err := unmarshal(f, data, &m); err != nil {
		return m, fmt.Errorf("decode server message: %w", err)
	}
	m.inUTC()
	return m, nil
}

// inUTC puts the times a message carries in UTC, as the JSON decoder
// leaves them (the msgpack decoder gives local times).
func (m *Message) inUTC() {
	if r := m.Result; r != nil && r.RouterTime != nil {
		*r.RouterTime = r.RouterTime.UTC()
	}
	if st := m.Statistics; st != nil {
		st.At = st.At.UTC()
		if st.OldestEnteredQueue != nil {
			*st.OldestEnteredQueue = st.OldestEnteredQueue.UTC()
		}
	}
}

func unmarshal(f Format, data []byte, v any) error {
	if f == JSON {
		if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
			return fmt.Errorf("not a JSON object")
		}
		return json.Unmarshal(data, v)
	}
	if err := msgpackwire.Bounds(data); err != nil {
		return err
	}
	if len(data) == 0 || !(data[0]&0xf0 == 0x80 || data[0] == 0xde || data[0] == 0xdf) {
		return fmt.Errorf("not a msgpack map")
	}
	return msgpackUnmarshal(data, v)
}

// msgpackUnmarshal decodes by reflection, returning as an error the panic
// that the library raises on some values (nil for a time.Time).
func msgpackUnmarshal(data []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack: %v", p)
		}
	}()
	return msgpack.Unmarshal(data, v)
}
