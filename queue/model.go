// Package queue is the queue model that the router adapter, the gateways,
// replay and downstream consumers share: the session record of the Session
// Information protocol, its enumerations, and an ordered queue that applies
// router changes and reports the queue-position shifts each one causes.
package queue

import (
	"fmt"
	"time"
)

// Session is one queued session: the SessionInfo record of the protocol.
// QueuePosition is derived from the queue it is in and is filled in whenever
// a Queue hands a Session out.
type Session struct {
	// ServiceGroupID is the group whose queue holds the session.
	ServiceGroupID string
	// CallID identifies the session; unique within its group's queue.
	CallID string
	// QueuePosition is the 1-based place in the queue.
	QueuePosition int
	// PreferredAgentID is the agent the session should go to; 0 when none.
	PreferredAgentID int
	// MediaType is the kind of session.
	MediaType MediaType
	// TimeEnteredQueue is when the session entered the queue, in UTC.
	TimeEnteredQueue time.Time
	// CustomerInformation is the caller's number, or the sender's address for
	// Email and SMS.
	CustomerInformation string
	// DialedNumber is the number a voice caller dialed; empty for other media.
	DialedNumber string
	// IVRInformation holds what the caller entered in the IVR; may be empty.
	IVRInformation []IVRInfo
}

// IVRInfo is one labelled item of IVR data.
type IVRInfo struct {
	// Label is the display label.
	Label string
	// Data is the value entered or looked up.
	Data string
}

// MediaType is the SessionMediaType enumeration; it travels as its member
// name in text encodings.
type MediaType uint8

// The SessionMediaType members, in the reference's order.
const (
	MediaNone MediaType = iota
	MediaChat
	MediaCallback
	MediaWebCallBack
	MediaVoice
	MediaEmail
	MediaCampaign
	MediaSMS
	MediaOpenMedia
)

var mediaNames = []string{"None", "Chat", "Callback", "WebCallBack", "Voice", "Email", "Campaign", "SMS", "OpenMedia"}

// MediaTypes lists every member, for iteration.
var MediaTypes = []MediaType{MediaNone, MediaChat, MediaCallback, MediaWebCallBack, MediaVoice, MediaEmail, MediaCampaign, MediaSMS, MediaOpenMedia}

// RemoveCause is the SessionRemoveCause enumeration.
type RemoveCause uint8

// The SessionRemoveCause members, in the reference's order.
const (
	CauseNone RemoveCause = iota
	CauseSessionAllocatedToAgent
	CauseDisconnect
	CauseOverflow
	CauseServiceGroupClosed
	CauseCallTransferred
	CauseSessionFailed
	CauseCampaignNotRunning
)

var causeNames = []string{"None", "SessionAllocatedToAgent", "Disconnect", "Overflow", "ServiceGroupClosed", "CallTransferred", "SessionFailed", "CampaignNotRunning"}

// RemoveCauses lists every member, for iteration.
var RemoveCauses = []RemoveCause{CauseNone, CauseSessionAllocatedToAgent, CauseDisconnect, CauseOverflow, CauseServiceGroupClosed, CauseCallTransferred, CauseSessionFailed, CauseCampaignNotRunning}

// UpdateType is the SessionUpdateType enumeration of the client protocol.
type UpdateType uint8

// The SessionUpdateType members, in the reference's order.
const (
	UpdateAdd UpdateType = iota
	UpdateModify
	UpdateRemove
)

var updateNames = []string{"Add", "Modify", "Remove"}

// String returns the member name, or "MediaType(n)" for an unknown value.
func (m MediaType) String() string { return enumString(mediaNames, int(m), "MediaType") }

// Valid reports whether m is a member of the enumeration.
func (m MediaType) Valid() bool { return int(m) < len(mediaNames) }

// MarshalText encodes m as its member name.
func (m MediaType) MarshalText() ([]byte, error) { return enumMarshal(mediaNames, int(m), "MediaType") }

// UnmarshalText accepts a member name, spelled exactly.
func (m *MediaType) UnmarshalText(b []byte) error {
	v, err := enumParse(mediaNames, string(b), "MediaType")
	*m = MediaType(v)
	return err
}

// String returns the member name, or "RemoveCause(n)" for an unknown value.
func (c RemoveCause) String() string { return enumString(causeNames, int(c), "RemoveCause") }

// Valid reports whether c is a member of the enumeration.
func (c RemoveCause) Valid() bool { return int(c) < len(causeNames) }

// MarshalText encodes c as its member name.
func (c RemoveCause) MarshalText() ([]byte, error) {
	return enumMarshal(causeNames, int(c), "RemoveCause")
}

// UnmarshalText accepts a member name, spelled exactly.
func (c *RemoveCause) UnmarshalText(b []byte) error {
	v, err := enumParse(causeNames, string(b), "RemoveCause")
	*c = RemoveCause(v)
	return err
}

// String returns the member name, or "UpdateType(n)" for an unknown value.
func (u UpdateType) String() string { return enumString(updateNames, int(u), "UpdateType") }

// MarshalText encodes u as its member name.
func (u UpdateType) MarshalText() ([]byte, error) {
	return enumMarshal(updateNames, int(u), "UpdateType")
}

// UnmarshalText accepts a member name, spelled exactly.
func (u *UpdateType) UnmarshalText(b []byte) error {
	v, err := enumParse(updateNames, string(b), "UpdateType")
	*u = UpdateType(v)
	return err
}

func enumString(names []string, v int, kind string) string {
	if v >= 0 && v < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", kind, v)
}

func enumMarshal(names []string, v int, kind string) ([]byte, error) {
	if v < 0 || v >= len(names) {
		return nil, fmt.Errorf("%w: %s(%d)", ErrInvalid, kind, v)
	}
	return []byte(names[v]), nil
}

func enumParse(names []string, s, kind string) (int, error) {
	for i, n := range names {
		if n == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown %s %q", ErrInvalid, kind, s)
}
