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
	// EventQueueStatistics carries a group's statistics (§9, ext).
	EventQueueStatistics = "QueueStatistics"
	// EventServiceGroupRemoved ends a subscription to a group that left
	// the directory (§10, ext).
	EventServiceGroupRemoved = "ServiceGroupRemoved"
)

// Bounds of the rate cap (§12).
const (
	// MinEventsPerSecond and MaxEventsPerSecond bound Initialize's
	// MaxEventsPerSecond.
	MinEventsPerSecond = 1
	MaxEventsPerSecond = 100
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
	// MaxEventsPerSecond caps the SessionsUpdated of each group to the
	// session, 1 to 100 a second; changes in between are merged by their
	// net effect (§12, ext). Default: no cap.
	MaxEventsPerSecond *int `json:"MaxEventsPerSecond,omitempty" msgpack:"MaxEventsPerSecond,omitempty"`
	// Subscribe, Unsubscribe.
	ServiceGroupID   string  `json:"ServiceGroupID,omitempty" msgpack:"ServiceGroupID,omitempty"`
	TenantID         string  `json:"TenantID,omitempty" msgpack:"TenantID,omitempty"`
	ServiceGroupName string  `json:"ServiceGroupName,omitempty" msgpack:"ServiceGroupName,omitempty"`
	ResumeFromSeq    *uint64 `json:"ResumeFromSeq,omitempty" msgpack:"ResumeFromSeq,omitempty"`
	// Statistics asks for QueueStatistics events of the group (ext);
	// default false.
	Statistics *bool `json:"Statistics,omitempty" msgpack:"Statistics,omitempty"`
	// Sessions false asks for no SessionsUpdated of the group, statistics
	// only (ext); default true. False without Statistics is refused.
	Sessions *bool `json:"Sessions,omitempty" msgpack:"Sessions,omitempty"`
	// AllGroups with TenantID subscribes to (or unsubscribes from) every
	// group of the tenant, now and later (§10, ext); default false.
	AllGroups *bool `json:"AllGroups,omitempty" msgpack:"AllGroups,omitempty"`
	// MediaTypes, when given, limits the sessions sent to those of these
	// SessionMediaType names (§10, ext); statistics stay the whole group's.
	MediaTypes []string `json:"MediaTypes,omitempty" msgpack:"MediaTypes,omitempty"`
}

// Result is the result of a reply: empty for Initialize, Unsubscribe and
// Heartbeat; Subscribe fills it.
type Result struct {
	// Succeeded is false when the session was already subscribed.
	Succeeded *bool `json:"Succeeded,omitempty" msgpack:"Succeeded,omitempty"`
	// ServiceGroupID names the group subscribed to.
	ServiceGroupID string `json:"ServiceGroupID,omitempty" msgpack:"ServiceGroupID,omitempty"`
	// ServiceGroupIDs names every group of the tenant, on the reply to a
	// tenant-wide Subscribe (§10, ext).
	ServiceGroupIDs []string `json:"ServiceGroupIDs,omitempty" msgpack:"ServiceGroupIDs,omitempty"`
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
	// Seqs is a KeepAlive's last Seq sent of every group whose
	// InitialDataComplete the session received (§11, ext).
	Seqs map[string]uint64 `json:"Seqs,omitempty" msgpack:"Seqs,omitempty"`
	// *Statistics holds a QueueStatistics event's figures, at the top
	// level of the event as the wire has them; nil for other messages.
	*Statistics
}

// Statistics are the figures of a QueueStatistics event (§9): a group's
// queue at Seq, and what entered and left it in the window up to At.
// Durations are seconds; a figure without a value (no allocation in the
// window, an empty queue, too little history to estimate) is null.
type Statistics struct {
	// At is the router time of change Seq.
	At time.Time `json:"At" msgpack:"At"`
	// Waiting is how many sessions are queued; WaitingByMedia counts them
	// by SessionMediaType (types with none left out).
	Waiting        int            `json:"Waiting" msgpack:"Waiting"`
	WaitingByMedia map[string]int `json:"WaitingByMedia" msgpack:"WaitingByMedia"`
	// OldestEnteredQueue is the earliest TimeEnteredQueue among them.
	OldestEnteredQueue *time.Time `json:"OldestEnteredQueue" msgpack:"OldestEnteredQueue"`
	// Window is the seconds up to At that the next figures cover.
	Window float64 `json:"Window" msgpack:"Window"`
	// Entered is how many sessions entered the queue in the window;
	// Removed how many left it, by SessionRemoveCause (causes with none
	// left out).
	Entered int            `json:"Entered" msgpack:"Entered"`
	Removed map[string]int `json:"Removed" msgpack:"Removed"`
	// AverageWaitAllocated and LongestWaitAllocated are the waits of the
	// sessions allocated to an agent in the window.
	AverageWaitAllocated *float64 `json:"AverageWaitAllocated" msgpack:"AverageWaitAllocated"`
	LongestWaitAllocated *float64 `json:"LongestWaitAllocated" msgpack:"LongestWaitAllocated"`
	// ServiceLevelThreshold is the wait that counts as served in time;
	// ServiceLevel the fraction of the sessions that left the window
	// allocated or by Disconnect that were allocated within it.
	ServiceLevelThreshold float64  `json:"ServiceLevelThreshold" msgpack:"ServiceLevelThreshold"`
	ServiceLevel          *float64 `json:"ServiceLevel" msgpack:"ServiceLevel"`
	// EstimatedWait is the wait expected for a session entering now.
	EstimatedWait *float64 `json:"EstimatedWait" msgpack:"EstimatedWait"`
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
