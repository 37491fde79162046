package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// resumed is what a Subscribe sends after its reply.
type resumed struct {
	ok     bool
	frames []frame
}

// initialData builds the frames that bring a new subscriber to the view's
// state at start: the changes after ResumeFromSeq when they can be had, the
// whole queue otherwise; then InitialDataComplete.
func (c *conn) initialData(ctx context.Context, v *view, start initial, req *protocol.Request) resumed {
	var out resumed
	if req.ResumeFromSeq != nil {
		frames, err := c.resume(ctx, v, start, *req.ResumeFromSeq)
		if err == nil {
			out.ok, out.frames = true, frames
		} else {
			c.srv.log.Debug().Err(err).Str("group", v.group.ServiceGroupID).Msg("resume not possible; sending full initial data")
		}
	}
	if !out.ok {
		out.frames = c.fullData(v.group.ServiceGroupID, start)
	}
	done := protocol.AppendInitialDataComplete(c.format, nil, v.group.ServiceGroupID, start.seq)
	out.frames = append(out.frames, frame{data: done, op: c.opcode, forced: true})
	return out
}

// fullData encodes the queue as Adds, InitialChunk sessions a frame.
func (c *conn) fullData(group string, start initial) []frame {
	chunk := c.srv.cfg.InitialChunk
	frames := make([]frame, 0, len(start.sessions)/chunk+1)
	updates := make([]protocol.Update, 0, min(chunk, len(start.sessions)))
	for i := 0; i < len(start.sessions); i += chunk {
		updates = updates[:0]
		for _, s := range start.sessions[i:min(i+chunk, len(start.sessions))] {
			updates = append(updates, protocol.Update{Type: queue.UpdateAdd, Session: s})
		}
		data := protocol.AppendSessionsUpdated(c.format, nil, group, start.seq, updates)
		frames = append(frames, frame{data: data, op: c.opcode, forced: true})
	}
	return frames
}

var errNoResume = errors.New("changes after that sequence are no longer kept")

// resume rebuilds the group as it was at seq from from JetStream (its
// snapshot if not newer, else its whole stored history) and derives the
// updates from there to start.
func (c *conn) resume(ctx context.Context, v *view, start initial, seq uint64) ([]frame, error) {
	switch {
	case seq == start.seq:
		return nil, nil
	case seq > start.seq:
		return nil, fmt.Errorf("resume from %d: the group is only at %d", seq, start.seq)
	}
	g := v.group
	q, have, from, err := c.resumeBase(ctx, g, seq)
	if err != nil {
		return nil, err
	}
	positions := c.positions()
	r := &replayer{q: q, have: have, until: seq, last: start.seq}
	r.d.reset(positions)
	err = c.srv.hist.Replay(ctx, g.TenantID, g.ServiceGroupID, from, start.streamSeq, func(e *subjects.Event, _ uint64) error {
		return r.step(e)
	})
	if err == nil && r.have != start.seq {
		err = fmt.Errorf("%w: replay reached %d, want %d", errNoResume, r.have, start.seq)
	}
	if err != nil {
		return nil, err
	}
	return c.chunkUpdates(g.ServiceGroupID, start.seq, r.d.list(positions)), nil
}

// resumeBase picks where to rebuild from: the snapshot, or nothing at all.
func (c *conn) resumeBase(ctx context.Context, g subjects.Group, seq uint64) (*queue.Queue, uint64, uint64, error) {
	snap, found, err := c.srv.hist.Snapshot(ctx, g.TenantID, g.ServiceGroupID)
	if err != nil {
		return nil, 0, 0, err
	}
	q := queue.New(g.ServiceGroupID)
	if !found || snap.Seq > seq {
		return q, 0, 1, nil
	}
	for _, s := range snap.Sessions {
		if _, err := q.Apply(queue.Change{Op: queue.OpEnqueue, CallID: s.CallID, Session: s}); err != nil {
			return nil, 0, 0, err
		}
	}
	return q, snap.Seq, snap.StreamSeq + 1, nil
}

// replayer applies a group's history: silently up to until, deriving
// updates after it.
type replayer struct {
	q                 *queue.Queue
	have, until, last uint64
	d                 deriver
}

func (r *replayer) step(e *subjects.Event) error {
	if e.Seq <= r.have || e.Seq > r.last {
		return nil
	}
	if e.Seq != r.have+1 {
		return fmt.Errorf("%w: %w", errNoResume, errGap{have: r.have, got: e.Seq})
	}
	r.have = e.Seq
	if e.Seq <= r.until {
		_, err := r.q.Apply(e.Change)
		return err
	}
	return r.d.apply(r.q, e.Change)
}

func (c *conn) chunkUpdates(group string, seq uint64, updates []protocol.Update) []frame {
	var frames []frame
	for i := 0; i < len(updates); i += c.srv.cfg.InitialChunk {
		part := updates[i:min(i+c.srv.cfg.InitialChunk, len(updates))]
		frames = append(frames, frame{data: protocol.AppendSessionsUpdated(c.format, nil, group, seq, part), op: c.opcode, forced: true})
	}
	return frames
}

func (c *conn) positions() bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.sess != nil && c.sess.positions
}
