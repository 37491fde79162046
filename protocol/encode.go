package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sisbridge/sisbridge/internal/msgpackwire"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/vmihailenco/msgpack/v5"
)

// Update is one session update as the gateway sends it.
type Update struct {
	// Type is Add, Modify or Remove.
	Type queue.UpdateType
	// Session is the session with its QueuePosition.
	Session queue.Session
	// Cause is the remove cause; CauseNone unless Type is Remove.
	Cause queue.RemoveCause
}

// TimeFormat is how JSON carries times: UTC, RFC 3339, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// AppendSessionsUpdated appends a SessionsUpdated event of one group. The
// encoders append by hand: this is the gateway's hot path, encoded once per
// group change and shared by every client that receives it.
func AppendSessionsUpdated(f Format, dst []byte, group string, seq uint64, updates []Update) []byte {
	if f == Msgpack {
		return appendUpdatedMsgpack(dst, group, seq, updates)
	}
	dst = append(dst, `{"event":"SessionsUpdated","ServiceGroupID":`...)
	dst = appendJSONString(dst, group)
	dst = append(dst, `,"Seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"SessionUpdates":[`...)
	for i := range updates {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendUpdateJSON(dst, &updates[i])
	}
	return append(dst, "]}"...)
}

func appendUpdateJSON(dst []byte, u *Update) []byte {
	dst = append(dst, `{"UpdateType":"`...)
	dst = append(dst, u.Type.String()...)
	dst = append(dst, `","Session":`...)
	dst = appendSessionJSON(dst, &u.Session)
	dst = append(dst, `,"RemoveCause":"`...)
	dst = append(dst, u.Cause.String()...)
	return append(dst, `"}`...)
}

func appendSessionJSON(dst []byte, s *queue.Session) []byte {
	dst = append(dst, `{"ServiceGroupID":`...)
	dst = appendJSONString(dst, s.ServiceGroupID)
	dst = append(dst, `,"CallID":`...)
	dst = appendJSONString(dst, s.CallID)
	dst = append(dst, `,"QueuePosition":`...)
	dst = strconv.AppendInt(dst, int64(s.QueuePosition), 10)
	dst = append(dst, `,"PreferredAgentID":`...)
	dst = strconv.AppendInt(dst, int64(s.PreferredAgentID), 10)
	dst = append(dst, `,"MediaType":"`...)
	dst = append(dst, s.MediaType.String()...)
	dst = append(dst, `","TimeEnteredQueue":"`...)
	dst = s.TimeEnteredQueue.UTC().AppendFormat(dst, TimeFormat)
	dst = append(dst, `","CustomerInformation":`...)
	dst = appendJSONString(dst, s.CustomerInformation)
	dst = append(dst, `,"DialedNumber":`...)
	dst = appendJSONString(dst, s.DialedNumber)
	dst = append(dst, `,"IVRInformation":[`...)
	for i, iv := range s.IVRInformation {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"Label":`...)
		dst = appendJSONString(dst, iv.Label)
		dst = append(dst, `,"Data":`...)
		dst = appendJSONString(dst, iv.Data)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and the characters that are unsafe in HTML and JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < 0x80 {
			continue
		}
		if c >= 0x80 {
			continue // valid UTF-8 passes through
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendInitialDataComplete appends an InitialDataComplete event.
func AppendInitialDataComplete(f Format, dst []byte, group string, seq uint64) []byte {
	if f == Msgpack {
		dst = appendStrField(msgpackwire.AppendMapLen(dst, 3), "event", EventInitialDataComplete)
		dst = appendStrField(dst, "ServiceGroupID", group)
		return msgpackwire.AppendUint(msgpackwire.AppendStr(dst, "Seq"), seq)
	}
	dst = append(dst, `{"event":"InitialDataComplete","ServiceGroupID":`...)
	dst = appendJSONString(dst, group)
	dst = append(dst, `,"Seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// AppendQueueStatistics appends a QueueStatistics event (§9): st's
// figures at the top level, beside the event's name, group and Seq.
func AppendQueueStatistics(f Format, dst []byte, group string, seq uint64, st *Statistics) []byte {
	m := statisticsEvent{Event: EventQueueStatistics, ServiceGroupID: group, Seq: seq, Statistics: st}
	var b []byte
	if f == Msgpack {
		b, _ = msgpack.Marshal(&m) // plain fields always encode
	} else {
		b, _ = json.Marshal(&m)
	}
	return append(dst, b...)
}

// statisticsEvent is a QueueStatistics as it is encoded: Seq is there
// when 0 too (a group with no change yet), as docs/asyncapi.yaml says.
type statisticsEvent struct {
	Event          string `json:"event" msgpack:"event"`
	ServiceGroupID string `json:"ServiceGroupID" msgpack:"ServiceGroupID"`
	Seq            uint64 `json:"Seq" msgpack:"Seq"`
	*Statistics
}

// AppendKeepAlive appends a KeepAlive with the last Seq sent of each
// group (§11): an empty Seqs when there is none.
func AppendKeepAlive(f Format, dst []byte, seqs map[string]uint64) []byte {
	groups := make([]string, 0, len(seqs))
	for g := range seqs {
		groups = append(groups, g)
	}
	slices.Sort(groups) // the same Seqs, the same bytes
	if f == Msgpack {
		dst = appendStrField(msgpackwire.AppendMapLen(dst, 2), "event", EventKeepAlive)
		dst = msgpackwire.AppendMapLen(msgpackwire.AppendStr(dst, "Seqs"), len(groups))
		for _, g := range groups {
			dst = msgpackwire.AppendUint(msgpackwire.AppendStr(dst, g), seqs[g])
		}
		return dst
	}
	dst = append(dst, `{"event":"KeepAlive","Seqs":{`...)
	for i, g := range groups {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendJSONString(dst, g), ':')
		dst = strconv.AppendUint(dst, seqs[g], 10)
	}
	return append(dst, "}}"...)
}

// AppendServiceGroupRemoved appends the event that ends a subscription to a
// group that left the directory (§10).
func AppendServiceGroupRemoved(f Format, dst []byte, group string) []byte {
	if f == Msgpack {
		dst = appendStrField(msgpackwire.AppendMapLen(dst, 2), "event", EventServiceGroupRemoved)
		return appendStrField(dst, "ServiceGroupID", group)
	}
	dst = append(dst, `{"event":"ServiceGroupRemoved","ServiceGroupID":`...)
	return append(appendJSONString(dst, group), '}')
}

// AppendEvent appends an event without fields: RouterDisconnected (or a
// KeepAlive without Seqs, as before §11).
func AppendEvent(f Format, dst []byte, name string) []byte {
	if f == Msgpack {
		return appendStrField(msgpackwire.AppendMapLen(dst, 1), "event", name)
	}
	dst = append(dst, `{"event":`...)
	return append(appendJSONString(dst, name), '}')
}

type reply struct {
	ID     *int64  `json:"id" msgpack:"id"`
	Result *Result `json:"result,omitempty" msgpack:"result,omitempty"`
	Fault  *Fault  `json:"fault,omitempty" msgpack:"fault,omitempty"`
}

var emptyResult = &Result{}

// AppendReply appends a reply with a result (nil: the empty result).
func AppendReply(f Format, dst []byte, id *int64, r *Result) []byte {
	if r == nil {
		r = emptyResult
	}
	return appendReply(f, dst, reply{ID: id, Result: r})
}

// AppendFault appends a fault reply.
func AppendFault(f Format, dst []byte, id *int64, fault *Fault) []byte {
	return appendReply(f, dst, reply{ID: id, Fault: fault})
}

func appendReply(f Format, dst []byte, r reply) []byte {
	var b []byte
	if f == Msgpack {
		b, _ = msgpack.Marshal(&r) // a reply of plain fields always encodes
	} else {
		b, _ = json.Marshal(&r)
	}
	return append(dst, b...)
}
