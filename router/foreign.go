package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// isWrongLast says a publish was refused because the group's subject does
// not end where the adapter's last write left it.
func isWrongLast(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) &&
		(api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// checkLast explains a refused publish by the message its subject ends
// with: the adapter's own earlier attempt (stored, its acknowledgement
// lost) counts as stored; nothing at all means retention removed the
// group's older events, and the publish is made again expecting none; any
// other is a write of another's, which ends the adapter.
func (p *publisher) checkLast(it *item) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	last, err := p.stream.GetLastMsgForSubject(ctx, it.msg.Subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound) && it.expect != 0:
		it.expect = 0
		it.msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		return p.publish(ctx, it.msg)
	case err != nil:
		return nil, fmt.Errorf("read the last event of %s: %w", it.msg.Subject, err)
	case p.own(it, last.Header, last.Data):
		return &jetstream.PubAck{Stream: last.Subject, Sequence: last.Sequence}, nil
	}
	return nil, p.foreign(it, last.Sequence, last.Header)
}

// checkDuplicate makes sure the message a publish was found a duplicate of
// is the adapter's own. One deleted since (a lost tail) stores nothing: the
// publish is made again under a new message ID.
func (p *publisher) checkDuplicate(it *item, ack *jetstream.PubAck) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	stored, err := p.stream.GetMsg(ctx, ack.Sequence)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		it.msg.Header.Set(jetstream.MsgIDHeader, it.msg.Header.Get(jetstream.MsgIDHeader)+"+")
		return p.publish(ctx, it.msg)
	case err != nil:
		return nil, fmt.Errorf("read the event %s stored as %d: %w", it.msg.Subject, ack.Sequence, err)
	case stored.Subject == it.msg.Subject && p.own(it, stored.Header, stored.Data):
		return ack, nil
	}
	return nil, p.foreign(it, ack.Sequence, stored.Header)
}

// own says a stored message is it's: same message ID, same bytes.
func (p *publisher) own(it *item, h map[string][]string, data []byte) bool {
	id := it.msg.Header.Get(jetstream.MsgIDHeader)
	ids := h[jetstream.MsgIDHeader]
	return len(ids) == 1 && ids[0] == id && bytes.Equal(data, it.msg.Data)
}

// foreign reports a write of another's on it's subject and ends the
// adapter: going on would store a history that no longer replays.
func (p *publisher) foreign(it *item, streamSeq uint64, h map[string][]string) error {
	err := fmt.Errorf("%w: %s holds stream message %d (message ID %q), written after the adapter's last (%d) by someone else, where its event %d belongs",
		ErrForeignWrite, it.msg.Subject, streamSeq, first(h[jetstream.MsgIDHeader]), it.expect, it.seq)
	p.log.Error().Err(err).Msg("stopping: the stored history is no longer the adapter's")
	p.onForeign(err)
	return err
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

// startSend marks a message of g in flight and returns the stream
// sequence of g's last stored message, which the message must follow.
func (g *group) startSend() uint64 {
	g.ackMu.Lock()
	defer g.ackMu.Unlock()
	g.busy = make(chan struct{})
	return g.ackStream
}

// endSend marks g's message settled (stored or abandoned).
func (g *group) endSend() {
	g.ackMu.Lock()
	defer g.ackMu.Unlock()
	close(g.busy)
	g.busy = nil
}

// inFlight returns a channel closed once g's message in flight is settled;
// nil when none is.
func (g *group) inFlight() <-chan struct{} {
	g.ackMu.Lock()
	defer g.ackMu.Unlock()
	return g.busy
}
