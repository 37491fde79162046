package replay

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// group returns the state of a group, adding one the directory lacks.
func (ex *export) group(e *subjects.Event) *past {
	p, ok := ex.groups[e.Group]
	if !ok {
		p = &past{tenant: e.Tenant, q: queue.New(e.Group)}
		ex.groups[e.Group] = p
		ex.dir = mergeDirectory(ex.dir, &Directory{Groups: []subjects.Group{{ServiceGroupID: e.Group, TenantID: e.Tenant, Name: e.Group}}})
		if !slices.ContainsFunc(ex.dir.Tenants, func(t subjects.Tenant) bool { return t.TenantID == e.Tenant }) {
			ex.dir.Tenants = append(ex.dir.Tenants, subjects.Tenant{TenantID: e.Tenant, Name: e.Tenant})
		}
	}
	return p
}

// before applies a change older than the range to its group's state, when
// that state is known: from the group's first change, or from its snapshot
// when the change follows it.
func (ex *export) before(e *subjects.Event) {
	p := ex.group(e)
	p.lastSeen = e.Seq
	if !p.known {
		switch {
		case e.Seq == 1:
			p.known, p.q, p.seq = true, queue.New(e.Group), 0
		case p.snap != nil && p.snap.Seq == e.Seq-1:
			p.fromSnapshot()
		default:
			return
		}
	}
	if e.Seq <= p.seq {
		return
	}
	if _, err := p.q.Apply(e.Change); e.Seq != p.seq+1 || err != nil {
		p.known = false // a gap: unknown until a state is found again
		return
	}
	p.seq = e.Seq
}

func (p *past) fromSnapshot() {
	p.known, p.q, p.seq = true, queue.New(p.snap.Group), p.snap.Seq
	_, _, _ = p.q.Reconcile(p.snap.Sessions)
}

// open writes the header, the directory and the base of every group whose
// state before the range is known.
func (ex *export) open(start time.Time) error {
	if start.IsZero() {
		start = time.Now().UTC()
	}
	var late []string
	for _, g := range ex.dir.Groups {
		p := ex.groups[g.ServiceGroupID]
		if !p.known && p.snap != nil && p.snap.StreamSeq < ex.start && p.lastSeen <= p.snap.Seq {
			p.fromSnapshot() // the snapshot is older than the range
		}
		if !p.known && p.lastSeen == 0 && p.snap == nil {
			p.known, p.seq = true, 0 // no history at all: empty
		}
		if !p.known {
			late = append(late, g.ServiceGroupID)
		}
	}
	h := Header{Start: start, Source: ex.source(), Filter: ex.r.cfg.Filter}
	if len(late) > 0 {
		h.Notes = append(h.Notes, fmt.Sprintf("history before stream sequence %d is incomplete for %d groups (%s): each starts at the first change of the range whose state is known; its earlier changes are left out",
			ex.start, len(late), strings.Join(late, ", ")))
	}
	w, err := NewWriter(ex.out, h)
	if err != nil {
		return err
	}
	ex.w = w
	if err := w.Directory(ex.dir); err != nil {
		return err
	}
	for _, g := range ex.dir.Groups {
		if p := ex.groups[g.ServiceGroupID]; p.known {
			b := &Base{Tenant: p.tenant, Group: g.ServiceGroupID, Seq: p.seq, Time: start, Sessions: p.q.Sessions()}
			if err := ex.r.writeBase(w, b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (ex *export) source() string {
	s := fmt.Sprintf("history %s stream seq %d", ex.r.cfg.Source, ex.start)
	if ex.from.String() != "" || ex.to.String() != "" {
		s += fmt.Sprintf(" (--from %q --to %q)", ex.from.String(), ex.to.String())
	}
	return s
}

// in writes a change of the range; a group without a state gets one first
// if the change allows it, else the change is left out.
func (ex *export) in(e *subjects.Event) error {
	seq, known := ex.w.Seq(e.Group)
	if !known || e.Seq > seq+1 {
		p := ex.group(e)
		var b *Base
		switch {
		case e.Seq == 1:
			b = emptyBase(e.Tenant, e.Group, e.Time)
		case p.snap != nil && p.snap.Seq == e.Seq-1:
			b = &Base{Tenant: e.Tenant, Group: e.Group, Seq: p.snap.Seq, Time: e.Time, Sessions: p.snap.Sessions}
		default:
			ex.dropped++
			return nil
		}
		if err := ex.r.writeBase(ex.w, b); err != nil {
			return err
		}
	} else if e.Seq <= seq {
		return nil
	}
	return ex.r.writeEvent(ex.w, e)
}
