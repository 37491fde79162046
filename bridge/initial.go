package bridge

import (
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// version is the view's queue at one sequence number, as new subscribers
// read their initial data from it. While it is the view's current one,
// they read the live queue itself, a chunk at a time: no copy per
// subscriber. When the view is about to change with readers still
// reading, the part they have yet to read is copied once, for all of them
// (freeze), and the view moves on to a new version.
type version struct {
	seq     uint64
	readers []*fullProducer
	frozen  []queue.Session // sessions from position offset on, once frozen
	offset  int
}

// beforeChange freezes the current version for its readers before the
// queue changes; v.mu is held.
func (v *view) beforeChange() {
	cur := v.cur
	if len(cur.readers) == 0 {
		return
	}
	from := cur.readers[0].pos
	for _, p := range cur.readers[1:] {
		from = min(from, p.pos)
	}
	cur.offset = from
	cur.frozen = make([]queue.Session, 0, max(0, v.q.Len()-from+1))
	v.q.Range(from, v.q.Len(), func(s queue.Session) bool {
		cur.frozen = append(cur.frozen, s)
		return true
	})
	cur.readers = nil
	v.cur = &version{seq: v.seq}
	v.hub.srv.metrics.freezes.Inc()
}

// fullProducer makes a subscription's whole initial data from the version
// of the view it subscribed at: its sessions as Adds, InitialChunk a
// frame, then InitialDataComplete.
type fullProducer struct {
	v      *view
	sb     *sub
	format protocol.Format
	chunk  int

	updates []protocol.Update // reused for each frame

	// guarded by v.mu
	ver      *version        // nil once cancelled or done
	pos      int             // position of the next session to send
	sessions []queue.Session // reused for each chunk read from the live queue
}

func (p *fullProducer) next() ([]byte, bool) {
	group := p.v.group.ServiceGroupID
	for {
		sessions, seq, ok := p.v.read(p)
		if !ok { // cancelled: nothing more to send
			return nil, true
		}
		if len(sessions) == 0 {
			if st := p.takeStats(); st != nil {
				return st, false // the figures at seq, then InitialDataComplete
			}
			p.cancel()
			p.updates = nil
			return protocol.AppendInitialDataComplete(p.format, nil, group, seq), true
		}
		p.updates = p.updates[:0]
		for _, s := range sessions {
			if p.sb.media.has(s.MediaType) { // a chunk of other media only goes on to the next
				p.updates = append(p.updates, protocol.Update{Type: queue.UpdateAdd, Session: s})
			}
		}
		if len(p.updates) == 0 {
			continue
		}
		data := protocol.AppendSessionsUpdated(p.format, newInitialBuf(), group, seq, p.updates)
		clear(p.updates)
		return data, false
	}
}

func (p *fullProducer) finish() { p.v.unhold(p.sb) }

// takeStats returns the subscriber's initial QueueStatistics, once, in a
// buffer of its own: a produced frame's buffer is reused once written,
// and the view's encoding is shared by every subscriber.
func (p *fullProducer) takeStats() []byte {
	p.v.mu.Lock()
	defer p.v.mu.Unlock()
	st := p.sb.initialStats
	p.sb.initialStats = nil
	if st == nil {
		return nil
	}
	return append(newInitialBuf(), st...)
}

// cancel stops reading: the version no longer waits for p.
func (p *fullProducer) cancel() {
	p.v.mu.Lock()
	defer p.v.mu.Unlock()
	p.sessions = nil
	if p.ver == nil {
		return
	}
	rs := p.ver.readers
	for i, r := range rs {
		if r == p {
			p.ver.readers = append(rs[:i], rs[i+1:]...)
			break
		}
	}
	p.ver = nil
}

// read returns p's next chunk of sessions and the version's sequence
// number; false once p was cancelled.
func (v *view) read(p *fullProducer) ([]queue.Session, uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ver := p.ver
	if ver == nil {
		return nil, v.seq, false
	}
	if !p.sb.sessions { // statistics only
		return nil, ver.seq, true
	}
	var out []queue.Session
	if ver.frozen != nil {
		i := p.pos - ver.offset
		out = ver.frozen[i:min(i+p.chunk, len(ver.frozen))]
	} else {
		out = p.sessions[:0]
		v.q.Range(p.pos, p.pos+p.chunk-1, func(s queue.Session) bool {
			out = append(out, s)
			return true
		})
		p.sessions = out
	}
	p.pos += len(out)
	return out, ver.seq, true
}
