package bridge

import (
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// mediaSet is the media types a subscription asked for (Subscribe's
// MediaTypes, §10): a bit per queue.MediaType; 0 means every one.
type mediaSet uint16

// mediaSetOf reads MediaTypes: nil is every type; an empty list or a name
// that is no SessionMediaType is refused.
func mediaSetOf(names []string) (mediaSet, *protocol.Fault) {
	if names == nil {
		return 0, nil
	}
	if len(names) == 0 {
		return 0, protocol.Faultf(protocol.InvalidRequestFault, "MediaTypes lists no media type: leave it out for every one")
	}
	var m mediaSet
	for _, n := range names {
		var t queue.MediaType
		if err := t.UnmarshalText([]byte(n)); err != nil {
			return 0, protocol.Faultf(protocol.InvalidRequestFault, "MediaTypes: %q is no SessionMediaType", n)
		}
		m |= 1 << t
	}
	return m, nil
}

// has says whether a session of media type t passes the set.
func (m mediaSet) has(t queue.MediaType) bool { return m == 0 || m&(1<<t) != 0 }

// filter appends to dst the updates of sessions whose media type passes.
func (m mediaSet) filter(dst, updates []protocol.Update) []protocol.Update {
	for _, u := range updates {
		if m.has(u.Session.MediaType) {
			dst = append(dst, u)
		}
	}
	return dst
}

// encodings keeps a change's SessionsUpdated encoded once per kind of
// subscriber: format, position updates and media set.
type encodings struct {
	plain    [2][2][]byte
	filtered []filteredEncoding
	scratch  []protocol.Update
}

type filteredEncoding struct {
	format    protocol.Format
	positions bool
	media     mediaSet
	data      []byte // nil: no update passes the set
}

// of returns the encoding of list for s; nil when nothing is for s.
func (e *encodings) of(s *sub, group string, seq uint64, list []protocol.Update) []byte {
	if s.media == 0 {
		pi := b2i(s.positions)
		if e.plain[s.t.format][pi] == nil {
			e.plain[s.t.format][pi] = protocol.AppendSessionsUpdated(s.t.format, nil, group, seq, list)
		}
		return e.plain[s.t.format][pi]
	}
	for _, f := range e.filtered {
		if f.format == s.t.format && f.positions == s.positions && f.media == s.media {
			return f.data
		}
	}
	e.scratch = s.media.filter(e.scratch[:0], list)
	var data []byte
	if len(e.scratch) > 0 {
		data = protocol.AppendSessionsUpdated(s.t.format, nil, group, seq, e.scratch)
	}
	clear(e.scratch)
	e.filtered = append(e.filtered, filteredEncoding{format: s.t.format, positions: s.positions, media: s.media, data: data})
	return data
}
