package bridge

import (
	"math/rand/v2"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
)

// sweepEvery is how often sweep runs: often enough that KeepAlives due in
// the same second do not all go at once.
const sweepEvery = 100 * time.Millisecond

// sweep runs every sweepEvery: KeepAlives, heartbeat timeouts, idle views.
func (s *Server) sweep(now time.Time) {
	s.eachSession(func(ss *session) { ss.tick(now) })
	s.hub.sweep(now)
}

// tick sends an initialized session a KeepAlive when one is due, and
// closes the connection when the heartbeat timeout has passed: for a
// session, since the first unanswered KeepAlive; for a connection without
// one (never initialized, or after RouterDisconnected), since its last
// request. Only a session is sent KeepAlives: a connection without one
// could not answer them (a Heartbeat needs a session), and keeps itself
// open by its requests (Initialize, retried until the router is back).
func (s *session) tick(now time.Time) {
	n := now.UnixNano()
	timeout := s.srv.cfg.HeartbeatTimeout.Nanoseconds()
	if s.current() == nil {
		if s.initializeLate(now) {
			return
		}
		if n-s.lastRequest.Load() >= timeout {
			s.t.closeWith(protocol.CloseHeartbeat, "no Initialize")
		}
		return
	}
	if at := s.awaitingHB.Load(); at != 0 && n-at >= timeout {
		s.t.closeWith(protocol.CloseHeartbeat, "no Heartbeat after KeepAlive")
		return
	}
	if n < s.keepAliveAt.Load() {
		return
	}
	s.keepAliveAt.Store(n + jittered(s.srv.cfg.KeepAlive, 0.2).Nanoseconds())
	s.awaitingHB.CompareAndSwap(0, n)
	s.t.keepAlive()
}

// jittered returns d less a random part of up to frac of it. KeepAlives are
// spread so: clients that connected together (after a gateway restart, say)
// would otherwise all be sent one, and all answer, at the same moment,
// every interval.
func jittered(d time.Duration, frac float64) time.Duration {
	return d - time.Duration(rand.Float64()*frac*float64(d))
}
