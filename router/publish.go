package router

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// publisher sends events with asynchronous JetStream publishes and settles
// their acknowledgements strictly in order, so that whatever waits on a
// marker (a snapshot, a flush) runs only once everything before it is stored.
//
// A group has at most one message in flight, which names the stream
// sequence of the group's last stored message
// (Nats-Expected-Last-Subject-Sequence): the stream then stores a group's
// messages in order even when one is retried, and refuses a write that
// follows a message the adapter did not write. A publish that fails is
// retried until it is stored or the adapter is aborted; one that keeps
// failing is reported through onFault, and its recovery too. A write of
// another's on a group's subject ends the adapter (onForeign).
type publisher struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	log      zerolog.Logger
	slots    chan struct{} // one per publish awaiting acknowledgement
	inflight chan item
	done     chan struct{}
	ctx      context.Context
	timeout  time.Duration
	stats    *counters
	// onFault is called from the publisher's goroutine with the error of a
	// publish that failed twice, and with nil once one is stored again. It
	// must not wait for the adapter's lock.
	onFault func(error)
	faulty  bool // run's own: onFault was last called with an error
	// onForeign is called from the publisher's goroutine when a group's
	// subject holds a message the adapter did not write; it must abort the
	// adapter and not wait for its lock.
	onForeign func(error)
	// fence returns nil while the adapter holds its lease; an error means
	// nothing may be written (it has aborted the adapter).
	fence func() error
	// wantDrain says changes wait (for the backlog to shrink, or for their
	// group's message in flight); drained tells the adapter that one of
	// those may now go.
	wantDrain atomic.Bool
	drained   chan struct{}
}

// item is one publish in flight, or a marker when msg is nil.
type item struct {
	g      *group
	seq    uint64 // the last change's sequence number
	n      int    // how many changes the message carries
	msg    *nats.Msg
	expect uint64 // stream sequence of the group's last stored message
	// deadline is when the acknowledgement is due: AckTimeout after the
	// publish, not after the publishes before it were settled.
	deadline time.Time
	fut      jetstream.PubAckFuture
	err      error
	onAck    func(seq, streamSeq uint64)
}

// publisherHooks are the adapter's answers to what the publisher finds.
type publisherHooks struct {
	onFault, onForeign func(error)
	fence              func() error
}

func newPublisher(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, log zerolog.Logger, cfg Config, st *counters, h publisherHooks) *publisher {
	p := &publisher{js: js, stream: stream, log: log, slots: make(chan struct{}, cfg.Window), inflight: make(chan item, 2*cfg.Window),
		done: make(chan struct{}), ctx: ctx, timeout: cfg.AckTimeout, stats: st, onFault: h.onFault, onForeign: h.onForeign,
		fence: h.fence, drained: make(chan struct{}, 1)}
	if p.fence == nil {
		p.fence = func() error { return nil }
	}
	go p.run()
	return p
}

// send publishes a message of n changes of g ending at seq; g must have no
// message in flight. It waits while the window of unacknowledged publishes
// is full, until ctx ends or the adapter is aborted: the message is then
// not sent, and send says why. Callers serialize send and mark.
func (p *publisher) send(ctx context.Context, g *group, seq uint64, n int, subject, msgID string, data []byte) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return ErrAborted
	}
	if err := p.fence(); err != nil {
		<-p.slots
		return fmt.Errorf("%w: %w", ErrAborted, err)
	}
	expect := g.startSend()
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{msgID}}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, uitoa(expect))
	fut, err := p.js.PublishMsgAsync(msg)
	p.inflight <- item{g: g, seq: seq, n: n, msg: msg, expect: expect, deadline: time.Now().Add(p.timeout), fut: fut, err: err}
	return nil
}

// backlogged says half the window awaits acknowledgement.
func (p *publisher) backlogged() bool { return len(p.slots) >= cap(p.slots)/2 }

// mark queues fn to run once every publish sent before it is settled; it
// gets g's last stored sequence number and its stream sequence (zeros when
// g is nil).
func (p *publisher) mark(g *group, fn func(seq, streamSeq uint64)) {
	p.inflight <- item{g: g, onAck: fn}
}

// close lets the publisher finish what is in flight and stop.
func (p *publisher) close() { close(p.inflight) }

func (p *publisher) run() {
	defer close(p.done)
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	for it := range p.inflight {
		if it.msg != nil {
			stored := p.settle(&it, timer)
			it.g.endSend()
			<-p.slots
			p.wake()
			if !stored {
				continue
			}
		}
		if it.onAck != nil {
			var seq, streamSeq uint64
			if it.g != nil {
				seq, streamSeq = it.g.acked()
			}
			it.onAck(seq, streamSeq)
		}
	}
}

// wake tells the adapter that held changes may go: their group has no
// message in flight any more, or the backlog has shrunk.
func (p *publisher) wake() {
	if p.wantDrain.Load() {
		select {
		case p.drained <- struct{}{}:
		default:
		}
	}
}

// fault reports a publish failing (err) or stored again (nil) on a change.
func (p *publisher) fault(err error) {
	if (err != nil) == p.faulty {
		return
	}
	p.faulty = err != nil
	if err != nil {
		p.log.Error().Err(err).Msg("the event store refuses writes; changes are kept and retried")
	} else {
		p.log.Info().Msg("the event store takes writes again")
	}
	p.onFault(err)
}

// settle waits for it's acknowledgement, retrying on failure. It reports
// false only when the adapter was aborted first: the event is then lost to
// the stream, and the next adapter's reconciliation heals the state.
func (p *publisher) settle(it *item, timer *time.Timer) bool {
	ack, err := p.await(it, timer)
	for attempt := 1; ; attempt++ {
		if err == nil && ack.Duplicate {
			ack, err = p.checkDuplicate(it, ack)
		}
		if isWrongLast(err) {
			ack, err = p.checkLast(it)
		}
		if err == nil || p.ctx.Err() != nil {
			break
		}
		p.stats.retries.Add(1)
		if attempt == 2 {
			p.fault(err)
		}
		p.log.Warn().Err(err).Str("subject", it.msg.Subject).Uint64("seq", it.seq).Int("attempt", attempt).Msg("publish failed, retrying")
		ack, err = p.retry(attempt, it.msg)
	}
	if err != nil {
		p.stats.lost.Add(uint64(it.n))
		p.log.Error().Str("subject", it.msg.Subject).Uint64("seq", it.seq).Msg("adapter aborted before the event was stored")
		return false
	}
	p.fault(nil)
	it.g.setAcked(it.seq, ack.Sequence)
	p.stats.published.Add(uint64(it.n))
	p.stats.messages.Add(1)
	return true
}

// await waits for it's acknowledgement until its deadline. The deadline
// counts from the publish: when the publishes in flight are lost (the
// stream's leader died under them), they all time out together, not one
// AckTimeout after another as they are settled in turn.
func (p *publisher) await(it *item, timer *time.Timer) (*jetstream.PubAck, error) {
	if it.err != nil {
		return nil, it.err
	}
	select {
	case ack := <-it.fut.Ok():
		return ack, nil
	case err := <-it.fut.Err():
		return nil, err
	default:
	}
	timer.Reset(max(time.Until(it.deadline), 0))
	select {
	case ack := <-it.fut.Ok():
		return ack, nil
	case err := <-it.fut.Err():
		return nil, err
	case <-timer.C:
		return nil, context.DeadlineExceeded
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
}

// retry republishes msg synchronously after a backoff.
func (p *publisher) retry(attempt int, msg *nats.Msg) (*jetstream.PubAck, error) {
	backoff := min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second)
	select {
	case <-time.After(backoff):
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	return p.publish(ctx, &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: msg.Header})
}

// publish publishes msg and waits for its acknowledgement, unless the
// adapter may no longer write.
func (p *publisher) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	if err := p.fence(); err != nil {
		return nil, err
	}
	return p.js.PublishMsg(ctx, msg)
}
