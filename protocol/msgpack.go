package protocol

import (
	"github.com/sisbridge/sisbridge/internal/msgpackwire"
	"github.com/sisbridge/sisbridge/queue"
)

// Hand-written msgpack encoding of the hot events; the same objects and
// field names as JSON, times as msgpack timestamps (extension -1), strings
// made valid UTF-8 as JSON has them. Integers below -32 take the int 64
// form, as they always have.

func appendUpdatedMsgpack(dst []byte, group string, seq uint64, updates []Update) []byte {
	dst = msgpackwire.AppendMapLen(dst, 4)
	dst = appendStrField(dst, "event", EventSessionsUpdated)
	dst = appendStrField(dst, "ServiceGroupID", group)
	dst = msgpackwire.AppendUint(msgpackwire.AppendStr(dst, "Seq"), seq)
	dst = msgpackwire.AppendArrayLen(msgpackwire.AppendStr(dst, "SessionUpdates"), len(updates))
	for i := range updates {
		u := &updates[i]
		dst = msgpackwire.AppendMapLen(dst, 3)
		dst = appendStrField(dst, "UpdateType", u.Type.String())
		dst = appendSessionMsgpack(msgpackwire.AppendStr(dst, "Session"), &u.Session)
		dst = appendStrField(dst, "RemoveCause", u.Cause.String())
	}
	return dst
}

func appendSessionMsgpack(dst []byte, s *queue.Session) []byte {
	dst = msgpackwire.AppendMapLen(dst, 9)
	dst = appendStrField(dst, "ServiceGroupID", s.ServiceGroupID)
	dst = appendStrField(dst, "CallID", s.CallID)
	dst = msgpackwire.AppendIntWide(msgpackwire.AppendStr(dst, "QueuePosition"), int64(s.QueuePosition))
	dst = msgpackwire.AppendIntWide(msgpackwire.AppendStr(dst, "PreferredAgentID"), int64(s.PreferredAgentID))
	dst = appendStrField(dst, "MediaType", s.MediaType.String())
	dst = msgpackwire.AppendTime(msgpackwire.AppendStr(dst, "TimeEnteredQueue"), s.TimeEnteredQueue)
	dst = appendStrField(dst, "CustomerInformation", s.CustomerInformation)
	dst = appendStrField(dst, "DialedNumber", s.DialedNumber)
	dst = msgpackwire.AppendArrayLen(msgpackwire.AppendStr(dst, "IVRInformation"), len(s.IVRInformation))
	for _, iv := range s.IVRInformation {
		dst = msgpackwire.AppendMapLen(dst, 2)
		dst = appendStrField(dst, "Label", iv.Label)
		dst = appendStrField(dst, "Data", iv.Data)
	}
	return dst
}

// appendStrField appends a map entry: the key and its string value, made
// valid UTF-8.
func appendStrField(dst []byte, key, value string) []byte {
	return msgpackwire.AppendValidStr(msgpackwire.AppendStr(dst, key), value)
}
