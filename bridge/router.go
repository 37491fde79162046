package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// routerWatch follows the router status the adapter writes. The router
// counts as connected while the status says so, updates keep coming within
// StatusTimeout, and the gateway's NATS connection is up. When it stops
// being connected, every session is ended with RouterDisconnected.
//
// The watch is a JetStream consumer, and one whose NATS node went away
// can stand still for many seconds before it notices: the adapter then
// seems gone while it writes on. So when the watch has delivered nothing
// for half of StatusTimeout (the adapter writes far more often), the
// status is read directly, and a watch that missed a newer entry is
// replaced.
type routerWatch struct {
	srv      *Server
	instance string
	kv       jetstream.KeyValue

	mu       sync.Mutex
	up       bool
	known    bool
	epoch    uint64
	status   subjects.RouterStatus
	lastSeen time.Time
	lastRev  uint64    // newest entry taken
	heard    time.Time // when the watch or a read last gave an entry
}

func watchRouter(ctx context.Context, s *Server) (*routerWatch, error) {
	kv, err := s.js.KeyValue(ctx, subjects.BucketRouter)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", subjects.BucketRouter, err)
	}
	w, err := kv.Watch(s.ctx, subjects.RouterStatusKey)
	if err != nil {
		return nil, fmt.Errorf("watch router status: %w", err)
	}
	r := &routerWatch{srv: s, instance: randomID(), kv: kv, heard: time.Now()}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.follow(w)
	}()
	return r, nil
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *routerWatch) follow(w jetstream.KeyWatcher) {
	t := time.NewTicker(r.srv.cfg.StatusTimeout / 6)
	defer t.Stop()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-r.srv.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				r.observe(e)
			}
		case now := <-t.C:
			if r.quiet(now) {
				w = r.probe(w)
			}
			r.check(now)
		}
	}
}

// quiet says the watch has given nothing for half of StatusTimeout.
func (r *routerWatch) quiet(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.Sub(r.heard) > r.srv.cfg.StatusTimeout/2
}

// probe reads the status directly. When it is newer than anything the
// watch gave, it is taken, and the watch, which missed it, is replaced by
// one that starts from what is stored now. It returns the watch to use.
func (r *routerWatch) probe(w jetstream.KeyWatcher) jetstream.KeyWatcher {
	ctx, cancel := context.WithTimeout(r.srv.ctx, r.srv.cfg.StatusTimeout/6)
	defer cancel()
	e, err := r.kv.Get(ctx, subjects.RouterStatusKey)
	if err != nil || !r.observe(e) {
		return w
	}
	fresh, err := r.kv.Watch(r.srv.ctx, subjects.RouterStatusKey)
	if err != nil {
		r.srv.log.Warn().Err(err).Msg("router status watch stalled and could not be replaced; reading the status directly meanwhile")
		return w
	}
	r.srv.log.Warn().Uint64("revision", e.Revision()).Msg("router status watch stalled (its NATS node went away?): replaced")
	_ = w.Stop()
	return fresh
}

// observe takes a status update; false when it is no newer than one
// already taken. An entry written long ago (a dead adapter's last word)
// is not taken as a sign of life.
func (r *routerWatch) observe(e jetstream.KeyValueEntry) bool {
	r.mu.Lock()
	newer := e.Revision() > r.lastRev
	if newer {
		r.lastRev, r.heard = e.Revision(), time.Now()
	}
	r.mu.Unlock()
	if !newer || e.Operation() != jetstream.KeyValuePut {
		return newer
	}
	st, err := subjects.DecodeStatus(e.Value())
	if err != nil {
		r.srv.log.Warn().Err(err).Msg("router status skipped")
		return true
	}
	seen := time.Now()
	if age := time.Since(e.Created()); age > r.srv.cfg.StatusTimeout {
		seen = seen.Add(-age)
	}
	r.mu.Lock()
	r.status, r.lastSeen, r.known = st, seen, true
	r.mu.Unlock()
	r.check(time.Now())
	return true
}

// check recomputes the router state and acts on a change.
func (r *routerWatch) check(now time.Time) {
	r.mu.Lock()
	fresh := now.Sub(r.lastSeen) <= r.srv.cfg.StatusTimeout
	up := r.known && fresh && r.status.Connected && r.srv.nc.Status() == nats.CONNECTED
	epochChanged := up && r.up && r.status.Epoch != r.epoch
	was := r.up
	r.up, r.epoch = up, r.status.Epoch
	reason := r.status.Reason
	r.mu.Unlock()
	switch {
	case was && (!up || epochChanged):
		if !fresh {
			reason = "no router status for " + r.srv.cfg.StatusTimeout.String()
		}
		r.srv.log.Warn().Str("reason", reason).Bool("epoch_changed", epochChanged).Msg("router disconnected: ending every session")
		r.srv.disconnectAll()
	case up && !was:
		r.srv.log.Info().Uint64("epoch", r.status.Epoch).Msg("router connected")
	}
}

// clock returns the router's time now and its rate: the router status's
// clock, or the wall clock (rate 1) for a real router.
func (r *routerWatch) clock(now time.Time) (time.Time, float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Clock == nil {
		return now.UTC(), 1
	}
	return r.status.RouterTime(now).UTC(), r.status.Clock.Rate
}

// downFault is the RouterDisconnectedFault of a request made while the
// router is down: it says why (the adapter's reason, or how long no status
// came) and since when, for a client to show where its queues were.
func (r *routerWatch) downFault() *protocol.Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.known:
		return protocol.Faultf(protocol.RouterDisconnectedFault, "the router is not connected: no router status yet")
	case time.Since(r.lastSeen) > r.srv.cfg.StatusTimeout:
		return protocol.Faultf(protocol.RouterDisconnectedFault, "the router is not connected: no router status since %s",
			r.lastSeen.UTC().Format(time.RFC3339))
	case r.srv.nc.Status() != nats.CONNECTED:
		return protocol.Faultf(protocol.RouterDisconnectedFault, "the router is not connected: the gateway lost the bus")
	}
	reason := r.status.Reason
	if reason == "" {
		reason = "no reason given"
	}
	return protocol.Faultf(protocol.RouterDisconnectedFault, "the router is not connected: %s (since %s)",
		reason, r.status.Since.UTC().Format(time.RFC3339))
}

func (r *routerWatch) connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// known reports whether a status was ever seen (readiness).
func (r *routerWatch) statusKnown() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.known
}

// disconnectAll ends every session with RouterDisconnected.
func (s *Server) disconnectAll() {
	s.eachSession(func(ss *session) { ss.endSession(true) })
}
