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
	s.eachConn(func(c *conn) { c.tick(now) })
	s.hub.sweep(now)
}

// tick sends a KeepAlive when one is due and closes the connection when
// the heartbeat timeout has passed: for a session, since the first
// unanswered KeepAlive; for a connection that never initialized, since its
// last request.
func (c *conn) tick(now time.Time) {
	n := now.UnixNano()
	timeout := c.srv.cfg.HeartbeatTimeout.Nanoseconds()
	if c.hasSession() {
		if at := c.awaitingHB.Load(); at != 0 && n-at >= timeout {
			c.closeWith(protocol.CloseHeartbeat, "no Heartbeat after KeepAlive")
			return
		}
	} else if n-c.lastRequest.Load() >= timeout {
		c.closeWith(protocol.CloseHeartbeat, "no Initialize")
		return
	}
	if n < c.keepAliveAt.Load() {
		return
	}
	c.keepAliveAt.Store(n + jittered(c.srv.cfg.KeepAlive, 0.2).Nanoseconds())
	c.awaitingHB.CompareAndSwap(0, n)
	c.send(frame{data: protocol.AppendEvent(c.format, nil, protocol.EventKeepAlive), op: c.opcode, forced: true})
}

func (c *conn) hasSession() bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.sess != nil
}

// jittered returns d less a random part of up to frac of it. KeepAlives are
// spread so: clients that connected together (after a gateway restart, say)
// would otherwise all be sent one, and all answer, at the same moment,
// every interval.
func jittered(d time.Duration, frac float64) time.Duration {
	return d - time.Duration(rand.Float64()*frac*float64(d))
}
