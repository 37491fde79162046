package protocol

import (
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sisbridge/sisbridge/queue"
)

// Hand-written msgpack encoding of the hot events; the same objects and
// field names as JSON, times as msgpack timestamps (extension -1).

func appendUpdatedMsgpack(dst []byte, group string, seq uint64, updates []Update) []byte {
	dst = appendMapLen(dst, 4)
	dst = appendStr(appendStr(dst, "event"), EventSessionsUpdated)
	dst = appendStr(appendStr(dst, "ServiceGroupID"), group)
	dst = appendUint(appendStr(dst, "Seq"), seq)
	dst = appendArrayLen(appendStr(dst, "SessionUpdates"), len(updates))
	for i := range updates {
		u := &updates[i]
		dst = appendMapLen(dst, 3)
		dst = appendStr(appendStr(dst, "UpdateType"), u.Type.String())
		dst = appendSessionMsgpack(appendStr(dst, "Session"), &u.Session)
		dst = appendStr(appendStr(dst, "RemoveCause"), u.Cause.String())
	}
	return dst
}

func appendSessionMsgpack(dst []byte, s *queue.Session) []byte {
	dst = appendMapLen(dst, 9)
	dst = appendStr(appendStr(dst, "ServiceGroupID"), s.ServiceGroupID)
	dst = appendStr(appendStr(dst, "CallID"), s.CallID)
	dst = appendInt(appendStr(dst, "QueuePosition"), int64(s.QueuePosition))
	dst = appendInt(appendStr(dst, "PreferredAgentID"), int64(s.PreferredAgentID))
	dst = appendStr(appendStr(dst, "MediaType"), s.MediaType.String())
	dst = appendTime(appendStr(dst, "TimeEnteredQueue"), s.TimeEnteredQueue)
	dst = appendStr(appendStr(dst, "CustomerInformation"), s.CustomerInformation)
	dst = appendStr(appendStr(dst, "DialedNumber"), s.DialedNumber)
	dst = appendArrayLen(appendStr(dst, "IVRInformation"), len(s.IVRInformation))
	for _, iv := range s.IVRInformation {
		dst = appendMapLen(dst, 2)
		dst = appendStr(appendStr(dst, "Label"), iv.Label)
		dst = appendStr(appendStr(dst, "Data"), iv.Data)
	}
	return dst
}

func appendMapLen(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x80|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
}

func appendArrayLen(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x90|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
}

func appendStr(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n < 1<<8:
		dst = append(dst, 0xd9, byte(n))
	case n < 1<<16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(dst, byte(v))
	case v < 1<<8:
		return append(dst, 0xcc, byte(v))
	case v < 1<<16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v < 1<<32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(dst, uint64(v))
	}
	if v >= -32 {
		return append(dst, byte(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

// appendTime writes the timestamp extension in its 32, 64 or 96 bit form.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	switch {
	case sec>>34 == 0 && nsec == 0 && sec < 1<<32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd6, 0xff), uint32(sec))
	case sec>>34 == 0:
		return binary.BigEndian.AppendUint64(append(dst, 0xd7, 0xff), uint64(nsec)<<34|uint64(sec))
	}
	dst = binary.BigEndian.AppendUint32(append(dst, 0xc7, 12, 0xff), uint32(nsec))
	return binary.BigEndian.AppendUint64(dst, uint64(sec))
}
