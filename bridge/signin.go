package bridge

import (
	"context"
	"sync"
	"time"
)

// signIn checks credentials under the throttle and writes the audit line;
// it reports whether they are a host administrator's. via names the door
// (initialize, groups). The password is never logged.
func (srv *Server) signIn(ctx context.Context, logonID, password, remote, via string) bool {
	now, addr := time.Now(), hostOf(remote)
	ev := func(result string) {
		srv.audit.Info().Str("event", "sign_in").Str("via", via).Str("result", result).Str("logon", logged(logonID)).Str("remote", remote).Msg("audit")
	}
	if srv.signIns.blocked(now, logonID, addr) {
		srv.hit(limitSignIn, remote)
		ev("throttled")
		return false
	}
	if err := srv.users.Authenticate(ctx, logonID, password); err != nil {
		srv.signIns.failed(now, logonID, addr)
		ev("refused")
		return false
	}
	srv.signIns.succeeded(logonID)
	ev("ok")
	return true
}

// signIns throttles failed sign-ins (Initialize with credentials, Basic
// auth on /v1/groups) per LogonID and per remote address: after Free
// failures of a key within signInMemory, each further attempt must wait a
// back-off that doubles with every failure, from Backoff up to
// maxBackoff. An attempt during the back-off is refused without checking
// the password (the answer is the same InvalidUserFault). A success clears
// its LogonID's failures.
type signIns struct {
	free    int
	backoff time.Duration

	mu   sync.Mutex
	keys map[string]*failures
}

// failures of one key.
type failures struct {
	n     int
	last  time.Time
	until time.Time // attempts before this are refused unchecked
}

const (
	maxBackoff   = 5 * time.Minute
	signInMemory = 15 * time.Minute // failures older than this are forgotten
	signInKeys   = 100000           // past this many keys, forgotten ones are dropped
)

func newSignIns(free int, backoff time.Duration) *signIns {
	return &signIns{free: free, backoff: backoff, keys: map[string]*failures{}}
}

// blocked says whether an attempt of logonID from addr must be refused
// unchecked now.
func (s *signIns) blocked(now time.Time, logonID, addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{"id:" + logonID, "addr:" + addr} {
		if f := s.keys[k]; f != nil && now.Before(f.until) {
			return true
		}
	}
	return false
}

// failed records a failed attempt.
func (s *signIns) failed(now time.Time, logonID, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) > signInKeys {
		s.forgetLocked(now)
	}
	for _, k := range []string{"id:" + logonID, "addr:" + addr} {
		f := s.keys[k]
		if f == nil || now.Sub(f.last) > signInMemory {
			f = &failures{}
			s.keys[k] = f
		}
		f.n++
		f.last = now
		if over := f.n - s.free + 1; over > 0 {
			f.until = now.Add(min(s.backoff<<min(over-1, 20), maxBackoff))
		}
	}
}

// succeeded clears logonID's failures (its address's stay: one address
// trying many IDs stays throttled).
func (s *signIns) succeeded(logonID string) {
	s.mu.Lock()
	delete(s.keys, "id:"+logonID)
	s.mu.Unlock()
}

func (s *signIns) forgetLocked(now time.Time) {
	for k, f := range s.keys {
		if now.Sub(f.last) > signInMemory {
			delete(s.keys, k)
		}
	}
}
