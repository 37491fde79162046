package feed

import (
	"encoding/json"
	"fmt"

	"github.com/sisbridge/sisbridge/queue"
)

// timeLayout is RFC 3339 with milliseconds, as the protocol spells times.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Wire forms of the lines, in the field order docs/feed.md shows.
type (
	tenantLine struct {
		Op       Op     `json:"op"`
		TenantID string `json:"TenantID"`
		Name     string `json:"Name"`
	}
	groupLine struct {
		Op               Op     `json:"op"`
		ServiceGroupID   string `json:"ServiceGroupID"`
		TenantID         string `json:"TenantID"`
		ServiceGroupName string `json:"ServiceGroupName"`
	}
	moveLine struct {
		Op             Op     `json:"op"`
		ServiceGroupID string `json:"ServiceGroupID"`
		CallID         string `json:"CallID"`
		QueuePosition  int    `json:"QueuePosition"`
	}
	removeLine struct {
		Op             Op                `json:"op"`
		ServiceGroupID string            `json:"ServiceGroupID"`
		CallID         string            `json:"CallID"`
		RemoveCause    queue.RemoveCause `json:"RemoveCause"`
	}
	enqueueLine struct {
		Op             Op     `json:"op"`
		ServiceGroupID string `json:"ServiceGroupID"`
		CallID         string `json:"CallID"`
		QueuePosition  int    `json:"QueuePosition"`
		wireSession
	}
	syncLine struct {
		Op             Op          `json:"op"`
		ServiceGroupID string      `json:"ServiceGroupID"`
		Sessions       []syncEntry `json:"Sessions"`
	}
	syncEntry struct {
		CallID string `json:"CallID"`
		wireSession
	}
	wireSession struct {
		MediaType           queue.MediaType `json:"MediaType"`
		TimeEnteredQueue    string          `json:"TimeEnteredQueue"`
		CustomerInformation string          `json:"CustomerInformation"`
		DialedNumber        string          `json:"DialedNumber"`
		PreferredAgentID    int             `json:"PreferredAgentID"`
		IVRInformation      []wireIVR       `json:"IVRInformation"`
	}
	wireIVR struct {
		Label string `json:"Label"`
		Data  string `json:"Data"`
	}
	removeGroupLine struct {
		Op             Op     `json:"op"`
		ServiceGroupID string `json:"ServiceGroupID"`
	}
	linkLine struct {
		Op     Op     `json:"op"`
		Up     bool   `json:"Up"`
		Reason string `json:"Reason,omitempty"`
	}
)

// MarshalJSON encodes l as one feed line (no line end): ParseLine of the
// result gives l back. It fails for an unknown Op or enumeration value.
func (l Line) MarshalJSON() ([]byte, error) {
	var v any
	c := l.Change
	switch l.Op {
	case OpTenant:
		v = tenantLine{l.Op, l.Tenant.TenantID, l.Tenant.Name}
	case OpGroup:
		v = groupLine{l.Op, l.Group.ServiceGroupID, l.Group.TenantID, l.Group.Name}
	case OpRemoveGroup:
		v = removeGroupLine{l.Op, l.GroupID}
	case OpEnqueue:
		v = enqueueLine{l.Op, l.GroupID, c.CallID, c.Position, toWire(c.Session)}
	case OpMove:
		v = moveLine{l.Op, l.GroupID, c.CallID, c.Position}
	case OpRemove:
		v = removeLine{l.Op, l.GroupID, c.CallID, c.Cause}
	case OpSync:
		s := syncLine{Op: l.Op, ServiceGroupID: l.GroupID, Sessions: make([]syncEntry, len(l.Sessions))}
		for i, x := range l.Sessions {
			s.Sessions[i] = syncEntry{x.CallID, toWire(x)}
		}
		v = s
	case OpLink:
		v = linkLine{l.Op, l.Up, l.Reason}
	default:
		return nil, fmt.Errorf("feed: cannot encode op %q", l.Op)
	}
	return json.Marshal(v)
}

func toWire(s queue.Session) wireSession {
	w := wireSession{
		MediaType:           s.MediaType,
		TimeEnteredQueue:    s.TimeEnteredQueue.UTC().Format(timeLayout),
		CustomerInformation: s.CustomerInformation,
		DialedNumber:        s.DialedNumber,
		PreferredAgentID:    s.PreferredAgentID,
		IVRInformation:      make([]wireIVR, len(s.IVRInformation)),
	}
	for i, x := range s.IVRInformation {
		w.IVRInformation[i] = wireIVR(x)
	}
	return w
}
