package router

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// publisher sends events with asynchronous JetStream publishes and settles
// their acknowledgements strictly in order, so that whatever waits on a
// marker (a snapshot, a flush) runs only once everything before it is stored.
// A publish that fails or times out is retried, with its Nats-Msg-Id, until
// it is stored or the adapter is aborted.
type publisher struct {
	js       jetstream.JetStream
	log      zerolog.Logger
	inflight chan item
	done     chan struct{}
	ctx      context.Context
	timeout  time.Duration
	stats    *counters
	// wantDrain says changes wait for the backlog to shrink; drained tells
	// the adapter that it has.
	wantDrain atomic.Bool
	drained   chan struct{}
}

// item is one publish in flight, or a marker when msg is nil.
type item struct {
	g     *group
	seq   uint64 // the last change's sequence number
	n     int    // how many changes the message carries
	msg   *nats.Msg
	fut   jetstream.PubAckFuture
	err   error
	onAck func(streamSeq uint64)
}

func newPublisher(ctx context.Context, js jetstream.JetStream, log zerolog.Logger, window int, timeout time.Duration, st *counters) *publisher {
	p := &publisher{js: js, log: log, inflight: make(chan item, window), done: make(chan struct{}), ctx: ctx, timeout: timeout, stats: st,
		drained: make(chan struct{}, 1)}
	go p.run()
	return p
}

// send publishes a message of n changes ending at seq; it blocks while the
// window of unacknowledged publishes is full. Callers serialize send and
// mark.
func (p *publisher) send(g *group, seq uint64, n int, subject, msgID string, data []byte) {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{msgID}}}
	fut, err := p.js.PublishMsgAsync(msg)
	p.inflight <- item{g: g, seq: seq, n: n, msg: msg, fut: fut, err: err}
}

// backlogged says half the window awaits acknowledgement.
func (p *publisher) backlogged() bool { return len(p.inflight) >= cap(p.inflight)/2 }

// mark queues fn to run once every publish sent before it is stored; it gets
// the stream sequence of g's last stored event (0 when g is nil).
func (p *publisher) mark(g *group, fn func(streamSeq uint64)) {
	p.inflight <- item{g: g, onAck: fn}
}

// close lets the publisher finish what is in flight and stop.
func (p *publisher) close() { close(p.inflight) }

func (p *publisher) run() {
	defer close(p.done)
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	for it := range p.inflight {
		if p.wantDrain.Load() && len(p.inflight) < cap(p.inflight)/4 {
			select {
			case p.drained <- struct{}{}:
			default:
			}
		}
		if it.msg != nil && !p.settle(&it, timer) {
			continue
		}
		if it.onAck != nil {
			var streamSeq uint64
			if it.g != nil {
				_, streamSeq = it.g.acked()
			}
			it.onAck(streamSeq)
		}
	}
}

// settle waits for it's acknowledgement, retrying on failure. It reports
// false only when the adapter was aborted first: the event is then lost to
// the stream, and the next adapter's reconciliation heals the state.
func (p *publisher) settle(it *item, timer *time.Timer) bool {
	ack, err := p.await(it, timer)
	if err == nil && ack.Duplicate {
		// A first attempt found its sequence number taken: another writer
		// published this group's history. Counted and logged loudly: two
		// adapters must never feed one router's groups at once.
		p.stats.conflicts.Add(1)
		p.log.Error().Str("subject", it.msg.Subject).Uint64("seq", it.seq).Msg("event sequence already stored by another writer")
	}
	for attempt := 1; err != nil; attempt++ {
		p.stats.retries.Add(1)
		p.log.Warn().Err(err).Str("subject", it.msg.Subject).Uint64("seq", it.seq).Int("attempt", attempt).Msg("publish failed, retrying")
		if ack, err = p.retry(attempt, it.msg); p.ctx.Err() != nil {
			p.stats.lost.Add(uint64(it.n))
			p.log.Error().Str("subject", it.msg.Subject).Uint64("seq", it.seq).Msg("adapter aborted before the event was stored")
			return false
		}
	}
	it.g.setAcked(it.seq, ack.Sequence)
	p.stats.published.Add(uint64(it.n))
	p.stats.messages.Add(1)
	return true
}

func (p *publisher) await(it *item, timer *time.Timer) (*jetstream.PubAck, error) {
	if it.err != nil {
		return nil, it.err
	}
	timer.Reset(p.timeout)
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

// retry republishes msg synchronously after a backoff; the stream drops it
// if the first attempt was stored after all.
func (p *publisher) retry(attempt int, msg *nats.Msg) (*jetstream.PubAck, error) {
	backoff := min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second)
	select {
	case <-time.After(backoff):
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	return p.js.PublishMsg(ctx, &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: msg.Header})
}
