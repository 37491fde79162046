package bridge

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sisbridge/sisbridge/protocol"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+protocol.Path, s.serveWebSocket)
	mux.HandleFunc("GET /v1/groups", s.serveGroups)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.gatherer, promhttp.HandlerOpts{}))
	return mux
}

// serveWebSocket upgrades the request and serves the connection.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); !s.originAllowed(origin, r.Host) {
		s.log.Info().Str("origin", logged(origin)).Str("remote", r.RemoteAddr).Msg("WebSocket refused: origin not in --allowed-origins")
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if notAHandshake(w, r) {
		return
	}
	addr := s.admit(w, r.RemoteAddr)
	if addr == "" {
		return
	}
	up := ws.HTTPUpgrader{Protocol: func(p string) bool {
		_, ok := protocol.FormatOf(p)
		return ok && p != ""
	}}
	nc, rw, hs, err := up.Upgrade(r, w)
	if err != nil {
		s.admitted()
		s.release(addr)
		s.log.Debug().Err(err).Msg("websocket upgrade failed")
		return
	}
	format, _ := protocol.FormatOf(hs.Protocol)
	t := newTransport(s, nc, rw, format)
	ss := newSession(s, t, r.RemoteAddr, addr)
	if !s.addSession(ss) {
		s.release(addr)
		t.closeWith(protocol.CloseGoingAway, "gateway shutting down")
		_ = nc.Close()
		return
	}
	s.metrics.connections.Inc()
	s.wg.Add(1)
	go t.serve(ss)
}

// notAHandshake answers a request that is no WebSocket handshake (a
// browser's plain GET, another WebSocket version) before it takes a
// connection slot; it reports whether it did.
func notAHandshake(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "the Session Information WebSocket endpoint: connect with a WebSocket client", http.StatusUpgradeRequired)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "WebSocket version not supported: want 13", http.StatusUpgradeRequired)
	default:
		return false
	}
	return true
}

// originAllowed says whether a browser page from origin may connect: any
// when AllowedOrigins is empty, the gateway's own pages (the wallboard)
// always, else those listed.
func (s *Server) originAllowed(origin, host string) bool {
	if origin == "" || len(s.cfg.AllowedOrigins) == 0 {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, host) {
		return true
	}
	return slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool { return strings.EqualFold(o, origin) })
}

// serveGroups lists the directory; with authentication on it takes the
// Basic credentials of a host administrator.
func (s *Server) serveGroups(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Auth {
		user, pass, ok := r.BasicAuth()
		if !ok || !s.signIn(r.Context(), user, pass, r.RemoteAddr, "groups") {
			w.Header().Set("WWW-Authenticate", `Basic realm="sisbridge"`)
			http.Error(w, "host administrator credentials required", http.StatusUnauthorized)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Tenants []Tenant `json:"Tenants"`
	}{s.dir.list()})
}

// serveReady says whether NATS is reachable and the router status known.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "draining: the gateway is stopping", http.StatusServiceUnavailable)
	case s.nc.Status() != nats.CONNECTED:
		http.Error(w, "NATS not connected", http.StatusServiceUnavailable)
	case !s.router.statusKnown():
		http.Error(w, "router status not known yet", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}

func sortTenants(m map[string]*Tenant) []Tenant {
	out := make([]Tenant, 0, len(m))
	for _, t := range m {
		slices.SortFunc(t.ServiceGroups, func(a, b GroupSummary) int { return strings.Compare(a.ServiceGroupID, b.ServiceGroupID) })
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Tenant) int { return strings.Compare(a.TenantID, b.TenantID) })
	return out
}
