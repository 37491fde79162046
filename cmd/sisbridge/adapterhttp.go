package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/router"
)

// adapterRoutes serves an adapter's health: /healthz (503 once it has
// failed), /readyz (503 while it stands by, naming the active adapter, or
// while the router link is down or the event store refuses writes, saying
// why) and /metrics.
func adapterRoutes(a *router.Node, reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { answer(w, a.Failed(), "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { answer(w, a.Ready(), "ready") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func answer(w http.ResponseWriter, err error, ok string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, err)
		return
	}
	_, _ = fmt.Fprintln(w, ok)
}

// serveHTTP serves h on ln until ctx ends; the returned function stops it
// and waits for it.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger) func() {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("adapter HTTP endpoint stopped")
		}
	}()
	log.Info().Str("url", "http://"+ln.Addr().String()+"/readyz").Msg("health and metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-done
	}
}
