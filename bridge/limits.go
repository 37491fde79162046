package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sisbridge/sisbridge/protocol"
	"golang.org/x/time/rate"
)

// Limits bound what one client, or one address, may take of a gateway.
// Each is answered as docs/protocol.md §6 says and counted in
// sis_gateway_limit_hits_total{limit}. A negative value means no limit.
type Limits struct {
	// Connections is the most WebSocket connections the gateway holds; one
	// more is refused before the upgrade with HTTP 503. Default 10,000 (a
	// process's file descriptors run out at about 20,000).
	Connections int
	// PerAddress is the most connections from one remote address; one more
	// is refused with HTTP 429. Default 256.
	PerAddress int
	// InitializeTimeout closes a connection that still has no session this
	// long after it opened, with 4011. Default 60 s.
	InitializeTimeout time.Duration
	// RequestRate is how many requests a second a connection may make on
	// average, RequestBurst how many at once; past them it is closed with
	// 4029. Default 20 and 100.
	RequestRate  float64
	RequestBurst int
	// Subscriptions is the most groups one session may be subscribed to;
	// one more Subscribe (a tenant-wide one that would take it past) is
	// answered InvalidRequestFault. Default 10,000 (§10).
	Subscriptions int
	// SignInFree is how many failed sign-ins a LogonID, or a remote
	// address, may make before each further attempt waits a back-off that
	// starts at SignInBackoff and doubles (to 5 min at most); attempts
	// during it are refused unchecked. Default 5 and 1 s.
	SignInFree    int
	SignInBackoff time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.Connections, 10000)
	def(&l.PerAddress, 256)
	def(&l.RequestBurst, 100)
	def(&l.Subscriptions, 10000)
	def(&l.SignInFree, 5)
	if l.SignInBackoff == 0 {
		l.SignInBackoff = time.Second
	}
	if l.InitializeTimeout == 0 {
		l.InitializeTimeout = time.Minute
	}
	if l.RequestRate == 0 {
		l.RequestRate = 20
	}
	return l
}

func (l Limits) validate() error {
	var errs []error
	if l.RequestRate > 0 && l.RequestBurst < 1 {
		errs = append(errs, fmt.Errorf("request burst %d: want at least 1", l.RequestBurst))
	}
	if l.InitializeTimeout < 0 {
		errs = append(errs, fmt.Errorf("initialize timeout %s: want more than 0", l.InitializeTimeout))
	}
	return errors.Join(errs...)
}

// Names of the limits in sis_gateway_limit_hits_total.
const (
	limitConnections   = "connections"
	limitPerAddress    = "connections_per_address"
	limitInitialize    = "initialize_timeout"
	limitRequests      = "request_rate"
	limitSubscriptions = "subscriptions"
	limitSignIn        = "sign_in_backoff"
)

// hit counts and logs a limit's refusal.
func (s *Server) hit(limit, remote string) {
	s.metrics.limitHits.WithLabelValues(limit).Inc()
	s.limitLog.Warn().Str("event", "limit").Str("limit", limit).Str("remote", remote).Msg("audit")
}

// admit takes a connection slot for a client at addr, or answers the
// refusal and returns "".
func (s *Server) admit(w http.ResponseWriter, remote string) (addr string) {
	addr = hostOf(remote)
	s.mu.Lock()
	total, mine := len(s.conns)+s.admitting, s.perAddr[addr]
	ok := (s.cfg.Limits.Connections < 0 || total < s.cfg.Limits.Connections) && (s.cfg.Limits.PerAddress < 0 || mine < s.cfg.Limits.PerAddress)
	if ok {
		s.perAddr[addr]++
		s.admitting++
	}
	s.mu.Unlock()
	switch {
	case ok:
		return addr
	case s.cfg.Limits.Connections >= 0 && total >= s.cfg.Limits.Connections:
		s.hit(limitConnections, remote)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "gateway at its connection limit ("+strconv.Itoa(s.cfg.Limits.Connections)+"): try another gateway or later", http.StatusServiceUnavailable)
	default:
		s.hit(limitPerAddress, remote)
		http.Error(w, "too many connections from your address ("+strconv.Itoa(s.cfg.Limits.PerAddress)+")", http.StatusTooManyRequests)
	}
	return ""
}

// admitted ends the admission of a connection that failed its upgrade
// (addSession ends that of one that did not).
func (s *Server) admitted() {
	s.mu.Lock()
	s.admitting--
	s.mu.Unlock()
}

// release gives back a connection's slot of its address.
func (s *Server) release(addr string) {
	s.mu.Lock()
	if s.perAddr[addr]--; s.perAddr[addr] <= 0 {
		delete(s.perAddr, addr)
	}
	s.mu.Unlock()
}

func hostOf(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// newLimiter is a connection's request limiter; nil means no limit.
func (s *Server) newLimiter() *rate.Limiter {
	if s.cfg.Limits.RequestRate < 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(s.cfg.Limits.RequestRate), s.cfg.Limits.RequestBurst)
}

// overRate says a request goes past the connection's rate: it is closed.
func (s *session) overRate() bool {
	if s.limiter == nil || s.limiter.Allow() {
		return false
	}
	s.srv.hit(limitRequests, s.remote)
	s.t.closeWith(protocol.CloseTooManyRequests, "too many requests")
	return true
}

// initializeLate says a connection without a session has outlived the
// initialize timeout: it is closed.
func (s *session) initializeLate(now time.Time) bool {
	if s.ever.Load() || now.Sub(s.opened) < s.srv.cfg.Limits.InitializeTimeout {
		return false
	}
	s.srv.hit(limitInitialize, s.remote)
	s.t.closeWith(protocol.CloseInitializeTimeout, "no session within "+s.srv.cfg.Limits.InitializeTimeout.String())
	return true
}

// subscriptionLimit answers a Subscribe past the session's limit.
func (s *session) subscriptionLimit(subs int) *protocol.Fault {
	if max := s.srv.cfg.Limits.Subscriptions; max < 0 || subs < max {
		return nil
	}
	s.srv.hit(limitSubscriptions, s.remote)
	return protocol.Faultf(protocol.InvalidRequestFault, "subscription limit reached: %d groups per session", s.srv.cfg.Limits.Subscriptions)
}
