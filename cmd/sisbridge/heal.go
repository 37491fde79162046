package main

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/router"
)

// storeHealer restarts the embedded server's JetStream when the adapter
// has found the store refusing writes for a while and the data
// directory's disk has room again: a stream that met a write error keeps
// refusing until then. JetStream's own limit (--nats-max-store) is not
// healed so: room comes back there as retention removes old events.
type storeHealer struct {
	srv     *server.Server
	dir     string
	health  func() router.Health
	log     zerolog.Logger
	after   time.Duration // how long the fault lasts before a restart
	every   time.Duration // how often to look
	minFree uint64        // room the disk needs
	last    time.Time     // the last restart
}

// run looks every h.every until ctx ends.
func (h *storeHealer) run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.check(now)
		}
	}
}

func (h *storeHealer) check(now time.Time) {
	st := h.health()
	if st.StoreFault == "" || now.Sub(st.StoreSince) < h.after || now.Sub(h.last) < 4*h.after {
		return
	}
	if strings.Contains(st.StoreFault, "insufficient resources") {
		return // the store's limit, not a write error
	}
	free, err := freeBytes(h.dir)
	if err != nil || free < h.minFree {
		h.log.Warn().Uint64("free_bytes", free).Str("fault", st.StoreFault).Msg("the event store refuses writes and its disk has no room: free some")
		h.last = now
		return
	}
	h.last = now
	h.log.Warn().Str("fault", st.StoreFault).Uint64("free_bytes", free).Msg("restarting JetStream: its disk has room again")
	if err := embednats.RestartJetStream(h.srv); err != nil {
		h.log.Error().Err(err).Msg("restart JetStream")
	}
}
