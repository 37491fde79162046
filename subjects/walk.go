package subjects

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Reading history: every reader of the events stream (a gateway loading or
// repairing a group, a resume, the adapter's restore, a capture's export)
// walks it here, with batched direct gets (JetStream's DIRECT.GET API with
// a batch): no consumer is created, so no per-stream consumer limit bounds
// how many groups can be read at once, and nothing is left on the server
// when a reader dies.

const (
	// numPendingHeader says, on each message of a batch, how many messages
	// of the subject follow it in the stream.
	numPendingHeader = "Nats-Num-Pending"
	// walkBatch is how many messages one direct get asks for.
	walkBatch = 1024
	// walkBatchTimeout bounds one batch: a server that stops answering
	// fails the walk instead of hanging it.
	walkBatchTimeout = 10 * time.Second
)

// Walk calls fn for every change stored on subject (one group's subject,
// or a wildcard such as AllEvents) in the messages with a stream sequence
// from..to (inclusive; to 0 means up to the newest), in stream order; the
// changes of one message share its stream sequence. A message that is no
// event is skipped and counted (Undecodable). It stops at the first
// error fn returns; cancelling ctx stops it with ctx's error.
func (h *History) Walk(ctx context.Context, subject string, from, to uint64, fn func(e *Event, streamSeq uint64) error) error {
	for from = max(from, 1); to == 0 || from <= to; {
		next, more, err := h.walkBatch(ctx, subject, from, to, fn)
		if err != nil || !more {
			return err
		}
		from = next
	}
	return nil
}

// walkBatch reads one batch from from on; it returns where the next batch
// starts and whether there is more to read.
func (h *History) walkBatch(ctx context.Context, subject string, from, to uint64, fn func(*Event, uint64) error) (uint64, bool, error) {
	bctx, cancel := context.WithTimeout(ctx, walkBatchTimeout)
	defer cancel()
	msgs, err := jetstreamext.GetBatch(bctx, h.js, StreamEvents, walkBatch,
		jetstreamext.GetBatchSeq(from), jetstreamext.GetBatchSubject(subject))
	if err != nil {
		return 0, false, fmt.Errorf("read %s from stream seq %d: %w", subject, from, err)
	}
	var next, pending uint64
	n := 0
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("read %s from stream seq %d: %w", subject, from, err)
		}
		if to > 0 && m.Sequence > to {
			return 0, false, nil
		}
		if err := h.walkMsg(m, fn); err != nil {
			return 0, false, err
		}
		n, next = n+1, m.Sequence+1
		pending, _ = strconv.ParseUint(m.Header.Get(numPendingHeader), 10, 64)
	}
	if n == 0 { // the batch ended without a message or an answer
		return 0, false, errors.Join(ctx.Err(), fmt.Errorf("read %s from stream seq %d: %w", subject, from, ErrNoAnswer))
	}
	return next, pending > 0, nil
}

// Undecodable counts the messages walks skipped because they were no
// event.
func (h *History) Undecodable() uint64 { return h.undecodable.Load() }

// walkMsg decodes one stored message and hands its changes to fn; a
// message that does not decode is skipped.
func (h *History) walkMsg(m *jetstream.RawStreamMsg, fn func(*Event, uint64) error) error {
	events, err := DecodeEvents(m.Data)
	if err != nil {
		// Not an event the adapter wrote (a forged or damaged message): it
		// carries no change, and skipping it loses none, since every event
		// is numbered; it is counted.
		h.undecodable.Add(1)
		return nil
	}
	for i := range events {
		if err := fn(&events[i], m.Sequence); err != nil {
			return err
		}
	}
	return nil
}

// SeqAt returns the stream sequence of the first event stored at or after
// t on subject; found is false when there is none.
func (h *History) SeqAt(ctx context.Context, subject string, t time.Time) (seq uint64, found bool, err error) {
	bctx, cancel := context.WithTimeout(ctx, walkBatchTimeout)
	defer cancel()
	msgs, err := jetstreamext.GetBatch(bctx, h.js, StreamEvents, 1,
		jetstreamext.GetBatchStartTime(t), jetstreamext.GetBatchSubject(subject))
	if err != nil {
		return 0, false, fmt.Errorf("find the stream sequence at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("find the stream sequence at %s: %w", t.Format(time.RFC3339Nano), err)
		}
		return m.Sequence, true, nil
	}
	return 0, false, errors.Join(ctx.Err(), fmt.Errorf("find the stream sequence at %s: %w", t.Format(time.RFC3339Nano), ErrNoAnswer))
}
