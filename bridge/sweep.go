package bridge

import (
	"time"

	"github.com/sisbridge/sisbridge/protocol"
)

// sweep runs every second: KeepAlives, heartbeat timeouts, idle views.
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
	c.keepAliveAt.Store(n + c.srv.cfg.KeepAlive.Nanoseconds())
	c.awaitingHB.CompareAndSwap(0, n)
	c.send(frame{data: protocol.AppendEvent(c.format, nil, protocol.EventKeepAlive), op: c.opcode, forced: true})
}

func (c *conn) hasSession() bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.sess != nil
}
