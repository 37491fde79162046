// Package protocol is the Session Information protocol, v1, as the gateway
// serves it over WebSocket (docs/protocol.md): the names, the messages in
// both directions, their JSON and msgpack encodings, and the typed faults.
// The gateway encodes with it, clients (the Go client library, tests, the
// load tool) decode with it.
package protocol

import (
	"time"
)

// Transport constants.
const (
	// Path is where the WebSocket endpoint is served.
	Path = "/sis/v1"
	// SubprotocolJSON is the default subprotocol: JSON in text frames.
	SubprotocolJSON = "sis.v1.json"
	// SubprotocolMsgpack carries the same objects as msgpack in binary frames.
	SubprotocolMsgpack = "sis.v1.msgpack"
	// MaxClientFrame is the largest client message; a larger one closes the
	// connection with CloseTooLarge.
	MaxClientFrame = 64 << 10
)

// WebSocket close codes of the protocol.
const (
	CloseGoingAway        = 1001 // gateway shutting down: reconnect, possibly elsewhere
	CloseTooLarge         = 1009 // client frame too large
	CloseGroupUnavailable = 4010 // a subscribed service group cannot be followed now: reconnect and subscribe again
	CloseHeartbeat        = 4008 // no Heartbeat within the timeout after a KeepAlive
	CloseSlowConsumer     = 4009 // the client's outbound buffer passed the limit
	// CloseInitializeTimeout: no session within the gateway's initialize
	// timeout of opening the connection.
	CloseInitializeTimeout = 4011
	// CloseTooManyRequests: requests faster than the gateway's limit.
	CloseTooManyRequests = 4029
)

// Operations (requests).
const (
	OpInitialize  = "Initialize"
	OpSubscribe   = "Subscribe"
	OpUnsubscribe = "Unsubscribe"
	OpHeartbeat   = "Heartbeat"
)

// Events.
const (
	EventSessionsUpdated     = "SessionsUpdated"
	EventInitialDataComplete = "InitialDataComplete"
	EventKeepAlive           = "KeepAlive"
	EventRouterDisconnected  = "RouterDisconnected"
)

// Format is a subprotocol's encoding.
type Format uint8

// The two encodings.
const (
	JSON Format = iota
	Msgpack
)

// FormatOf returns the encoding of a negotiated subprotocol; "" is JSON.
func FormatOf(subprotocol string) (Format, bool) {
	switch subprotocol {
	case "", SubprotocolJSON:
		return JSON, true
	case SubprotocolMsgpack:
		return Msgpack, true
	}
	return JSON, false
}

// Request is a client request. Pointer fields distinguish "absent" from a
// zero value.
type Request struct {
	// Op names the operation.
	Op string `json:"op" msgpack:"op"`
	// ID is echoed in the reply; nil when the client sent none.
	ID *int64 `json:"id" msgpack:"id"`
	// Initialize.
	LogonID                  string `json:"LogonID,omitempty" msgpack:"LogonID,omitempty"`
	Password                 string `json:"Password,omitempty" msgpack:"Password,omitempty"`
	SendQueuePositionUpdates *bool  `json:"SendQueuePositionUpdates,omitempty" msgpack:"SendQueuePositionUpdates,omitempty"`
	// Subscribe, Unsubscribe.
	ServiceGroupID   string  `json:"ServiceGroupID,omitempty" msgpack:"ServiceGroupID,omitempty"`
	TenantID         string  `json:"TenantID,omitempty" msgpack:"TenantID,omitempty"`
	ServiceGroupName string  `json:"ServiceGroupName,omitempty" msgpack:"ServiceGroupName,omitempty"`
	ResumeFromSeq    *uint64 `json:"ResumeFromSeq,omitempty" msgpack:"ResumeFromSeq,omitempty"`
}

// Result is the result of a reply: empty for Initialize, Unsubscribe and
// Heartbeat; Subscribe fills it.
type Result struct {
	// Succeeded is false when the session was already subscribed.
	Succeeded *bool `json:"Succeeded,omitempty" msgpack:"Succeeded,omitempty"`
	// ServiceGroupID names the group subscribed to.
	ServiceGroupID string `json:"ServiceGroupID,omitempty" msgpack:"ServiceGroupID,omitempty"`
	// Resumed says a ResumeFromSeq was honoured (ext).
	Resumed *bool `json:"Resumed,omitempty" msgpack:"Resumed,omitempty"`
	// RouterTime is the router's time as the reply was made, on the
	// replies to Initialize and Heartbeat (ext). A session's wait is
	// RouterTime minus its TimeEnteredQueue, run on at RouterClockRate:
	// the simulator's clock, or a capture played back faster, is not the
	// wall clock.
	RouterTime *time.Time `json:"RouterTime,omitempty" msgpack:"RouterTime,omitempty"`
	// RouterClockRate is how many router seconds pass per real second, with
	// RouterTime (ext): 1 for a real router, 0 when the router's time does
	// not run at a steady rate.
	RouterClockRate *float64 `json:"RouterClockRate,omitempty" msgpack:"RouterClockRate,omitempty"`
}

// Message is any server message, as a client decodes it: a reply (ID with
// Result or Fault) or an event (Event and its fields).
type Message struct {
	ID             *int64          `json:"id,omitempty" msgpack:"id,omitempty"`
	Result         *Result         `json:"result,omitempty" msgpack:"result,omitempty"`
	Fault          *Fault          `json:"fault,omitempty" msgpack:"fault,omitempty"`
	Event          string          `json:"event,omitempty" msgpack:"event,omitempty"`
	ServiceGroupID string          `json:"ServiceGroupID,omitempty" msgpack:"ServiceGroupID,omitempty"`
	Seq            uint64          `json:"Seq,omitempty" msgpack:"Seq,omitempty"`
	SessionUpdates []SessionUpdate `json:"SessionUpdates,omitempty" msgpack:"SessionUpdates,omitempty"`
}

// SessionUpdate is one entry of SessionsUpdated; enumerations are their
// member names.
type SessionUpdate struct {
	UpdateType  string      `json:"UpdateType" msgpack:"UpdateType"`
	Session     SessionInfo `json:"Session" msgpack:"Session"`
	RemoveCause string      `json:"RemoveCause" msgpack:"RemoveCause"`
}

// SessionInfo is a session as the protocol carries it.
type SessionInfo struct {
	ServiceGroupID      string    `json:"ServiceGroupID" msgpack:"ServiceGroupID"`
	CallID              string    `json:"CallID" msgpack:"CallID"`
	QueuePosition       int       `json:"QueuePosition" msgpack:"QueuePosition"`
	PreferredAgentID    int       `json:"PreferredAgentID" msgpack:"PreferredAgentID"`
	MediaType           string    `json:"MediaType" msgpack:"MediaType"`
	TimeEnteredQueue    time.Time `json:"TimeEnteredQueue" msgpack:"TimeEnteredQueue"`
	CustomerInformation string    `json:"CustomerInformation" msgpack:"CustomerInformation"`
	DialedNumber        string    `json:"DialedNumber" msgpack:"DialedNumber"`
	IVRInformation      []IVRInfo `json:"IVRInformation" msgpack:"IVRInformation"`
}

// IVRInfo is one labelled item of IVR data.
type IVRInfo struct {
	Label string `json:"Label" msgpack:"Label"`
	Data  string `json:"Data" msgpack:"Data"`
}
