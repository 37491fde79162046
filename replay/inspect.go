package replay

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sisbridge/sisbridge/queue"
)

// Summary is what Inspect finds in a capture.
type Summary struct {
	// Index is the scan: header, trailer, frames, skipped spans.
	Index
	// Counts counts what the capture holds (also without a trailer).
	Counts Counts
	// First is the bus time of the first change (Index.Last the last).
	First time.Time
	// Groups summarises each group, by ServiceGroupID.
	Groups []GroupSummary
	// Media counts enqueues by media type; Causes removes by cause.
	Media, Causes map[string]uint64
	// Hash is StateHash of the final queues, computed from the frames.
	Hash string
	// Problems lists changes that do not apply to the capture's state.
	Problems []string
}

// GroupSummary is one group's part of a capture.
type GroupSummary struct {
	// Tenant and Group name the group.
	Tenant, Group string
	// Events, Enqueues, Moves and Removes count its changes.
	Events, Enqueues, Moves, Removes uint64
	// Start and Final are its queue lengths at its base and at the end;
	// Longest the longest it got, at LongestAt.
	Start, Final, Longest int
	LongestAt             time.Time
	// FirstSeq and LastSeq are its base's and its last change's sequence
	// numbers.
	FirstSeq, LastSeq uint64
}

// Inspect reads a whole capture and summarises it.
func Inspect(ra io.ReaderAt, size int64, opts ReadOptions) (*Summary, error) {
	s := &Summary{Media: map[string]uint64{}, Causes: map[string]uint64{}}
	st := newTracker()
	groups := map[string]*GroupSummary{}
	x, err := walk(ra, size, opts, func(rec *Record) { s.record(st, groups, rec) })
	if err != nil {
		return nil, err
	}
	s.Index = *x
	s.Counts, s.First, s.Last = st.counts, st.first, st.last
	s.Events = st.counts.Events
	s.Hash = StateHash(st.sessions())
	for id, g := range groups {
		if t, ok := st.groups[id]; ok {
			g.Final = t.q.Len()
		}
		s.Groups = append(s.Groups, *g)
	}
	slices.SortFunc(s.Groups, func(a, b GroupSummary) int { return cmp.Compare(a.Group, b.Group) })
	return s, nil
}

func (s *Summary) record(st *tracker, groups map[string]*GroupSummary, rec *Record) {
	switch rec.Kind {
	case KindDirectory:
		st.counts.Directories++
	case KindStatus:
		st.counts.Statuses++
	case KindBase:
		b := rec.Base
		if err := st.base(b); err != nil {
			s.problem(rec, err)
		}
		g := groupOf(groups, b.Tenant, b.Group)
		g.Start, g.FirstSeq = len(b.Sessions), b.Seq
		g.note(len(b.Sessions), b.Time)
	case KindEvent:
		e := rec.Event
		if _, err := st.event(e); err != nil {
			s.problem(rec, err)
			return
		}
		g := groupOf(groups, e.Tenant, e.Group)
		g.LastSeq = e.Seq
		g.count(e.Change.Op)
		g.note(st.groups[e.Group].q.Len(), e.Time)
		switch e.Change.Op {
		case queue.OpEnqueue:
			s.Media[e.Change.Session.MediaType.String()]++
		case queue.OpRemove:
			s.Causes[e.Change.Cause.String()]++
		}
	}
}

func (s *Summary) problem(rec *Record, err error) {
	if len(s.Problems) < 100 {
		s.Problems = append(s.Problems, fmt.Sprintf("offset %d (frame %d): %v", rec.Offset, rec.Num, err))
	}
}

func groupOf(groups map[string]*GroupSummary, tenant, id string) *GroupSummary {
	g, ok := groups[id]
	if !ok {
		g = &GroupSummary{Tenant: tenant, Group: id}
		groups[id] = g
	}
	return g
}

func (g *GroupSummary) count(op queue.Op) {
	g.Events++
	switch op {
	case queue.OpEnqueue:
		g.Enqueues++
	case queue.OpMove:
		g.Moves++
	default:
		g.Removes++
	}
}

func (g *GroupSummary) note(depth int, at time.Time) {
	if depth > g.Longest || g.LongestAt.IsZero() {
		g.Longest, g.LongestAt = max(depth, g.Longest), at
	}
}

// WriteText writes the summary for people.
func (s *Summary) WriteText(w io.Writer) error {
	h := s.Header
	var b strings.Builder
	fmt.Fprintf(&b, "capture:   %s, %d bytes, %d frames\n", h.Source, s.Size, s.Frames)
	fmt.Fprintf(&b, "created:   %s\n", h.Created.Format(time.RFC3339))
	fmt.Fprintf(&b, "span:      %s .. %s (%s)\n", h.Start.Format(time.RFC3339), h.Start.Add(s.Span()).Format(time.RFC3339), s.Span().Round(time.Second))
	if !h.Filter.Empty() {
		fmt.Fprintf(&b, "filter:    tenants %s, groups %s\n", list(h.Filter.Tenants), list(h.Filter.Groups))
	}
	for _, n := range h.Notes {
		fmt.Fprintf(&b, "note:      %s\n", n)
	}
	c := s.Counts
	fmt.Fprintf(&b, "changes:   %d (%d enqueue, %d move, %d remove); %d bases, %d router status changes\n", c.Events, c.Enqueues, c.Moves, c.Removes, c.Bases, c.Statuses)
	fmt.Fprintf(&b, "media:     %s\n", counted(s.Media))
	fmt.Fprintf(&b, "removes:   %s\n", counted(s.Causes))
	b.WriteString(s.verdict())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "GROUP\tTENANT\tCHANGES\tENQUEUE\tMOVE\tREMOVE\tSTART\tFINAL\tLONGEST\tLONGEST AT\t")
	for _, g := range s.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", g.Group, g.Tenant, g.Events, g.Enqueues, g.Moves, g.Removes, g.Start, g.Final, g.Longest, g.LongestAt.Format(time.TimeOnly))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "problem:   %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// verdict says whether the capture is whole and its final state matches
// its trailer.
func (s *Summary) verdict() string {
	var b strings.Builder
	for _, sp := range s.Skipped {
		fmt.Fprintf(&b, "skipped:   bytes %d..%d: %s\n", sp.From, sp.To, sp.Reason)
	}
	switch {
	case s.Trailer == nil:
		fmt.Fprintf(&b, "trailer:   none: the file ends at offset %d (the recording was cut short); final state %s\n", s.End, short(s.Hash))
	case s.Trailer.Hash == s.Hash:
		fmt.Fprintf(&b, "trailer:   ended %q; final state %s matches\n", s.Trailer.Ended, short(s.Hash))
	default:
		fmt.Fprintf(&b, "trailer:   ended %q; final state %s does NOT match the trailer's %s\n", s.Trailer.Ended, short(s.Hash), short(s.Trailer.Hash))
	}
	return b.String()
}

func short(hash string) string { return "sha256:" + hash[:min(16, len(hash))] }

func list(xs []string) string {
	if len(xs) == 0 {
		return "all"
	}
	return strings.Join(xs, ",")
}

func counted(m map[string]uint64) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// jsonFrame is one line of WriteJSONL.
type jsonFrame struct {
	Offset    int64      `json:"offset"`
	Frame     int        `json:"frame"`
	Kind      string     `json:"kind"`
	Header    *Header    `json:"header,omitempty"`
	Directory *Directory `json:"directory,omitempty"`
	Base      *Base      `json:"base,omitempty"`
	Event     any        `json:"event,omitempty"`
	Status    any        `json:"status,omitempty"`
	Trailer   *Trailer   `json:"trailer,omitempty"`
	Skipped   *Span      `json:"skipped,omitempty"`
}

// WriteJSONL writes one JSON object per frame of the capture, the header
// first; with SkipCorrupt, a "skipped" object for each span stepped over.
func WriteJSONL(w io.Writer, ra io.ReaderAt, size int64, opts ReadOptions) error {
	r, err := NewReader(ra, size, opts)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	h := r.Header()
	if err := enc.Encode(jsonFrame{Offset: int64(len(Signature)) + 1, Frame: 1, Kind: KindHeader.String(), Header: &h}); err != nil {
		return err
	}
	skipped := 0
	for {
		rec, err := r.Read()
		for ; skipped < len(r.Skipped()); skipped++ {
			sp := r.Skipped()[skipped]
			if err := enc.Encode(jsonFrame{Offset: sp.From, Kind: "skipped", Skipped: &sp}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := enc.Encode(toJSON(&rec)); err != nil {
			return err
		}
	}
}

func toJSON(rec *Record) jsonFrame {
	f := jsonFrame{Offset: rec.Offset, Frame: rec.Num, Kind: rec.Kind.String(), Directory: rec.Directory, Base: rec.Base, Trailer: rec.Trailer}
	if rec.Status != nil {
		f.Status = rec.Status
	}
	if e := rec.Event; e != nil {
		f.Event = eventJSON(e)
	}
	return f
}
