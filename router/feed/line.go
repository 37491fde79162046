package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// ErrLine is wrapped by every error of ParseLine and by the error of a line
// longer than MaxLine: the line is not a valid feed line and was not
// applied. Identifier errors also wrap subjects.ErrMalformedID, enumeration
// errors queue.ErrInvalid.
var ErrLine = errors.New("bad line")

// Op is the kind of a feed line: the value of its "op" field.
type Op string

// The feed ops.
const (
	// OpTenant adds or renames a tenant (Handler.PutTenant).
	OpTenant Op = "tenant"
	// OpGroup adds or renames a service group (Handler.PutGroup).
	OpGroup Op = "group"
	// OpRemoveGroup takes a service group out of the directory
	// (Handler.RemoveGroup).
	OpRemoveGroup Op = "removegroup"
	// OpEnqueue puts a session into a group's queue (Handler.Apply).
	OpEnqueue Op = "enqueue"
	// OpMove moves a queued session (Handler.Apply).
	OpMove Op = "move"
	// OpRemove takes a session out of its queue (Handler.Apply).
	OpRemove Op = "remove"
	// OpSync reports a group's whole queue (Handler.Sync).
	OpSync Op = "sync"
	// OpLink reports the router link up or down (Handler.LinkUp/LinkDown).
	OpLink Op = "link"
)

// Ops lists every op, in the order docs/feed.md describes them.
var Ops = []Op{OpTenant, OpGroup, OpRemoveGroup, OpEnqueue, OpMove, OpRemove, OpSync, OpLink}

// Line is one decoded feed line. Op says which other fields it uses.
type Line struct {
	// Op is the kind of line.
	Op Op
	// Tenant is the tenant of an OpTenant line.
	Tenant subjects.Tenant
	// Group is the service group of an OpGroup line.
	Group subjects.Group
	// GroupID is the ServiceGroupID of an enqueue, move, remove, sync or
	// removegroup line.
	GroupID string
	// Change is the change of an enqueue, move or remove line. For an
	// enqueue, Change.Session carries the session with its CallID and
	// ServiceGroupID set and QueuePosition 0.
	Change queue.Change
	// Sessions is the queue of an OpSync line in order, never nil, each with
	// ServiceGroupID and QueuePosition (1, 2, ...) set.
	Sessions []queue.Session
	// Up is the link state of an OpLink line.
	Up bool
	// Reason is why the link is down, for an OpLink line; may be empty.
	Reason string
}

// ParseLine decodes and validates one feed line (without its line end).
// Unknown fields are ignored, field names match exactly, and null is taken
// as an absent field. A missing TimeEnteredQueue is taken as now. The error
// wraps ErrLine and says what is wrong.
func ParseLine(b []byte) (Line, error) {
	l, err := parseLine(b, time.Now)
	if err != nil {
		return Line{}, fmt.Errorf("%w: %w", ErrLine, err)
	}
	return l, nil
}

// object is a JSON object whose fields are decoded one at a time, so that
// names match exactly and each error names its field.
type object map[string]json.RawMessage

func parseLine(b []byte, now func() time.Time) (Line, error) {
	o, err := decodeObject(b)
	if err != nil {
		return Line{}, fmt.Errorf("malformed JSON: %w", err)
	}
	var op string
	if ok, err := o.str("op", &op); err != nil {
		return Line{}, err
	} else if !ok {
		return Line{}, errors.New("missing op")
	}
	l := Line{Op: Op(op)}
	switch l.Op {
	case OpTenant:
		err = l.parseTenant(o)
	case OpGroup:
		err = l.parseGroup(o)
	case OpRemoveGroup:
		err = o.id("ServiceGroupID", &l.GroupID)
	case OpEnqueue, OpMove, OpRemove:
		err = l.parseChange(o, now)
	case OpSync:
		err = l.parseSync(o, now)
	case OpLink:
		err = l.parseLink(o)
	default:
		err = fmt.Errorf("unknown op %q (want one of %s)", op, opList())
	}
	return l, err
}

func (l *Line) parseTenant(o object) error {
	if err := o.id("TenantID", &l.Tenant.TenantID); err != nil {
		return err
	}
	_, err := o.str("Name", &l.Tenant.Name)
	return err
}

func (l *Line) parseGroup(o object) error {
	if err := o.id("ServiceGroupID", &l.Group.ServiceGroupID); err != nil {
		return err
	}
	if err := o.id("TenantID", &l.Group.TenantID); err != nil {
		return err
	}
	_, err := o.str("ServiceGroupName", &l.Group.Name)
	return err
}

func (l *Line) parseChange(o object, now func() time.Time) error {
	c := &l.Change
	if err := o.id("ServiceGroupID", &l.GroupID); err != nil {
		return err
	}
	if err := o.id("CallID", &c.CallID); err != nil {
		return err
	}
	switch l.Op {
	case OpEnqueue:
		c.Op = queue.OpEnqueue
		if err := o.count("QueuePosition", &c.Position); err != nil {
			return err
		}
		s, err := o.session(now)
		s.CallID, s.ServiceGroupID = c.CallID, l.GroupID
		c.Session = s
		return err
	case OpMove:
		c.Op = queue.OpMove
		return o.count("QueuePosition", &c.Position)
	default:
		c.Op = queue.OpRemove
		return enum(o, "RemoveCause", &c.Cause, queue.RemoveCauses)
	}
}

func (l *Line) parseSync(o object, now func() time.Time) error {
	if err := o.id("ServiceGroupID", &l.GroupID); err != nil {
		return err
	}
	var raws []json.RawMessage
	if ok, err := o.value("Sessions", "an array of sessions", &raws); err != nil {
		return err
	} else if !ok {
		return errors.New("missing Sessions (an empty queue is [])")
	}
	l.Sessions = make([]queue.Session, 0, len(raws))
	seen := make(map[string]int, len(raws))
	for i, raw := range raws {
		s, err := syncSession(raw, l.GroupID, i+1, now)
		if err != nil {
			//lint:ignore ST1005 the message starts with the JSON field it names
			return fmt.Errorf("Sessions[%d]: %w", i, err)
		}
		if j, dup := seen[s.CallID]; dup {
			//lint:ignore ST1005 the message starts with the JSON field it names
			return fmt.Errorf("Sessions[%d]: CallID %q repeats Sessions[%d]", i, s.CallID, j)
		}
		seen[s.CallID] = i
		l.Sessions = append(l.Sessions, s)
	}
	return nil
}

// syncSession decodes the session at 1-based position pos of a sync line.
func syncSession(raw json.RawMessage, group string, pos int, now func() time.Time) (queue.Session, error) {
	o, err := decodeObject(raw)
	if err != nil {
		return queue.Session{}, fmt.Errorf("want a session object: %w", err)
	}
	s, err := o.session(now)
	if err != nil {
		return s, err
	}
	if err := o.id("CallID", &s.CallID); err != nil {
		return s, err
	}
	var g string
	if _, err := o.str("ServiceGroupID", &g); err != nil {
		return s, err
	} else if g != "" && g != group {
		return s, fmt.Errorf("ServiceGroupID %q differs from the line's %q", g, group)
	}
	var p int
	if err := o.count("QueuePosition", &p); err != nil {
		return s, err
	} else if p != 0 && p != pos {
		return s, fmt.Errorf("QueuePosition %d, but the session is number %d in Sessions", p, pos)
	}
	s.ServiceGroupID, s.QueuePosition = group, pos
	return s, nil
}

func (l *Line) parseLink(o object) error {
	if ok, err := o.value("Up", "true or false", &l.Up); err != nil {
		return err
	} else if !ok {
		return errors.New("missing Up")
	}
	_, err := o.str("Reason", &l.Reason)
	return err
}

// session decodes the session fields of an enqueue line or of a sync entry.
func (o object) session(now func() time.Time) (queue.Session, error) {
	var s queue.Session
	if err := enum(o, "MediaType", &s.MediaType, queue.MediaTypes); err != nil {
		return s, err
	}
	if err := o.time("TimeEnteredQueue", &s.TimeEnteredQueue, now); err != nil {
		return s, err
	}
	if _, err := o.str("CustomerInformation", &s.CustomerInformation); err != nil {
		return s, err
	}
	if _, err := o.str("DialedNumber", &s.DialedNumber); err != nil {
		return s, err
	}
	if err := o.count("PreferredAgentID", &s.PreferredAgentID); err != nil {
		return s, err
	}
	return s, o.ivr(&s.IVRInformation)
}

func (o object) ivr(dst *[]queue.IVRInfo) error {
	var raws []json.RawMessage
	if _, err := o.value("IVRInformation", "an array of {Label, Data}", &raws); err != nil {
		return err
	}
	for i, raw := range raws {
		item, err := decodeObject(raw)
		var info queue.IVRInfo
		if err == nil {
			_, err = item.str("Label", &info.Label)
		}
		if err == nil {
			_, err = item.str("Data", &info.Data)
		}
		if err != nil {
			return fmt.Errorf("IVRInformation[%d]: want {\"Label\":string,\"Data\":string}: %w", i, err)
		}
		*dst = append(*dst, info)
	}
	return nil
}

func decodeObject(b []byte) (object, error) {
	var o object
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errors.New("want an object, got null")
	}
	return o, nil
}

// value decodes field name into dst, reporting whether it is present and
// not null; want describes the expected type for the error.
func (o object) value(name, want string, dst any) (bool, error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, fmt.Errorf("%s: want %s, got %s", name, want, clip(raw))
	}
	return true, nil
}

func (o object) str(name string, dst *string) (bool, error) {
	return o.value(name, "a string", dst)
}

// id decodes a required identifier.
func (o object) id(name string, dst *string) error {
	if ok, err := o.str(name, dst); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("missing %s", name)
	}
	return subjects.CheckID(name, *dst)
}

// count decodes an optional integer that must not be negative.
func (o object) count(name string, dst *int) error {
	if _, err := o.value(name, "an integer", dst); err != nil {
		return err
	}
	if *dst < 0 {
		return fmt.Errorf("%s: want an integer >= 0, got %d", name, *dst)
	}
	return nil
}

// enum decodes an optional enumeration member name, spelled exactly; absent
// is the zero member (None).
func enum[E fmt.Stringer](o object, name string, dst *E, members []E) error {
	var s string
	if ok, err := o.str(name, &s); err != nil || !ok {
		return err
	}
	names := make([]string, len(members))
	for i, m := range members {
		if names[i] = m.String(); names[i] == s {
			*dst = m
			return nil
		}
	}
	msg := fmt.Sprintf("%s: unknown member %q (want one of %s)", name, s, strings.Join(names, ", "))
	return wrapped{msg: msg, is: queue.ErrInvalid}
}

// time decodes an optional RFC 3339 time into UTC truncated to the
// millisecond; absent means now.
func (o object) time(name string, dst *time.Time, now func() time.Time) error {
	var s string
	ok, err := o.str(name, &s)
	if err != nil {
		return err
	}
	t := now()
	if ok {
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("%s: want an RFC 3339 time like 2026-11-25T09:00:00.000Z, got %q", name, s)
		}
	}
	t = t.UTC().Truncate(time.Millisecond)
	if y := t.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%s: %q is out of range (years 0001 to 9999 in UTC)", name, s)
	}
	*dst = t
	return nil
}

// wrapped is an error with its own message that matches is.
type wrapped struct {
	msg string
	is  error
}

func (w wrapped) Error() string { return w.msg }
func (w wrapped) Unwrap() error { return w.is }

// clip quotes at most 40 bytes of a raw JSON value for an error message.
func clip(raw []byte) string {
	const n = 40
	if len(raw) > n {
		return string(raw[:n]) + "..."
	}
	return string(raw)
}

func opList() string {
	s := make([]string, len(Ops))
	for i, op := range Ops {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}
