package replay

import (
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// eventLine is an event as WriteJSONL spells it: enumerations by name.
type eventLine struct {
	Tenant   string         `json:"tenant"`
	Group    string         `json:"group"`
	Seq      uint64         `json:"seq"`
	Time     time.Time      `json:"time"`
	Epoch    uint64         `json:"epoch"`
	Op       string         `json:"op"`
	CallID   string         `json:"call"`
	Position int            `json:"position,omitempty"`
	Cause    string         `json:"cause,omitempty"`
	Session  *queue.Session `json:"session,omitempty"`
}

func eventJSON(e *subjects.Event) eventLine {
	c := &e.Change
	l := eventLine{Tenant: e.Tenant, Group: e.Group, Seq: e.Seq, Time: e.Time, Epoch: e.Epoch, Op: c.Op.String(), CallID: c.CallID, Position: c.Position}
	switch c.Op {
	case queue.OpEnqueue:
		s := c.Session
		s.CallID, s.ServiceGroupID, s.QueuePosition = c.CallID, e.Group, c.Position
		l.Session = &s
	case queue.OpRemove:
		l.Cause = c.Cause.String()
	}
	return l
}
