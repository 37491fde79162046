package client

import (
	"fmt"
	"slices"

	"github.com/sisbridge/sisbridge/protocol"
)

// Mirror keeps the queues that a session's events describe: apply every
// event in order. With Positions (the session asked for queue-position
// updates) each group's list is ordered by QueuePosition after every event,
// and Apply checks that the positions run 1..n; without, the list holds the
// right sessions, each added where its Add said.
type Mirror struct {
	// Positions: the session gets Modify updates.
	Positions bool
	// Groups holds each group's sessions.
	Groups map[string][]protocol.SessionInfo
	// Seq holds each group's last Seq seen.
	Seq map[string]uint64
	// Complete says which groups got InitialDataComplete.
	Complete map[string]bool
	// Filtered names the groups subscribed with MediaTypes: their
	// positions are the whole queue's, so they rise but may skip (§10).
	Filtered map[string]bool
}

// NewMirror returns an empty mirror for a session with or without
// queue-position updates.
func NewMirror(positions bool) *Mirror {
	return &Mirror{Positions: positions, Groups: map[string][]protocol.SessionInfo{}, Seq: map[string]uint64{}, Complete: map[string]bool{}}
}

// Apply applies one event; it fails on an update that does not fit.
func (m *Mirror) Apply(e protocol.Message) error {
	switch e.Event {
	case protocol.EventSessionsUpdated:
		for _, u := range e.SessionUpdates {
			if err := m.update(e.ServiceGroupID, u); err != nil {
				return fmt.Errorf("group %s seq %d: %w", e.ServiceGroupID, e.Seq, err)
			}
		}
		m.Seq[e.ServiceGroupID] = e.Seq
		if m.Positions {
			return m.order(e.ServiceGroupID)
		}
	case protocol.EventInitialDataComplete:
		m.Seq[e.ServiceGroupID], m.Complete[e.ServiceGroupID] = e.Seq, true
	case protocol.EventRouterDisconnected:
		m.Groups, m.Seq, m.Complete = map[string][]protocol.SessionInfo{}, map[string]uint64{}, map[string]bool{}
	}
	return nil
}

// filter records whether a group is subscribed with MediaTypes.
func (m *Mirror) filter(group string, filtered bool) {
	if !filtered {
		delete(m.Filtered, group)
		return
	}
	if m.Filtered == nil {
		m.Filtered = map[string]bool{}
	}
	m.Filtered[group] = true
}

// Drop forgets a group (after Unsubscribe, or before a full resend).
func (m *Mirror) Drop(group string) {
	delete(m.Groups, group)
	delete(m.Seq, group)
	delete(m.Complete, group)
}

func (m *Mirror) update(group string, u protocol.SessionUpdate) error {
	list := m.Groups[group]
	i := slices.IndexFunc(list, func(s protocol.SessionInfo) bool { return s.CallID == u.Session.CallID })
	switch u.UpdateType {
	case "Add":
		if i >= 0 {
			return fmt.Errorf("add of %s, already there", u.Session.CallID)
		}
		at := min(max(u.Session.QueuePosition-1, 0), len(list))
		list = slices.Insert(list, at, u.Session)
	case "Remove":
		if i < 0 {
			return fmt.Errorf("remove of %s, not there", u.Session.CallID)
		}
		list = slices.Delete(list, i, i+1)
	case "Modify":
		if i < 0 {
			return fmt.Errorf("modify of %s, not there", u.Session.CallID)
		}
		list[i] = u.Session
	default:
		return fmt.Errorf("unknown UpdateType %q", u.UpdateType)
	}
	m.Groups[group] = list
	return nil
}

// order sorts a group by QueuePosition and checks the positions run 1..n
// (for a filtered group: that they rise, from 1 up).
func (m *Mirror) order(group string) error {
	list := m.Groups[group]
	slices.SortStableFunc(list, func(a, b protocol.SessionInfo) int { return a.QueuePosition - b.QueuePosition })
	for i, s := range list {
		switch {
		case m.Filtered[group] && s.QueuePosition > i && (i == 0 || s.QueuePosition > list[i-1].QueuePosition):
		case s.QueuePosition != i+1:
			return fmt.Errorf("group %s: %s holds position %d at place %d", group, s.CallID, s.QueuePosition, i+1)
		}
	}
	return nil
}
