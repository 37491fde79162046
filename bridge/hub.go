package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sisbridge/sisbridge/subjects"
)

// hub holds the gateway's views, one per group with subscribers (or that had
// some within ViewIdle).
type hub struct {
	srv   *Server
	mu    sync.Mutex
	views map[string]*view
}

func newHub(s *Server) *hub { return &hub{srv: s, views: map[string]*view{}} }

// acquire returns the group's view once it is loaded, holding a reference
// that subscribe keeps (or release gives back).
func (h *hub) acquire(ctx context.Context, g subjects.Group) (*view, error) {
	h.mu.Lock()
	v, ok := h.views[g.ServiceGroupID]
	if !ok || v.group.TenantID != g.TenantID {
		if ok {
			v.stop()
		}
		v = newView(h.srv, g)
		h.views[g.ServiceGroupID] = v
		h.srv.metrics.views.Set(float64(len(h.views)))
	}
	v.refs++
	h.mu.Unlock()
	select {
	case <-v.ready:
		return v, nil
	case <-ctx.Done():
		v.release()
		return nil, fmt.Errorf("load view: %w", ctx.Err())
	}
}

// sweep drops views nobody has used for ViewIdle.
func (h *hub) sweep(now time.Time) {
	h.mu.Lock()
	var idle []*view
	for id, v := range h.views {
		if v.idleFor(now) > h.srv.cfg.ViewIdle {
			delete(h.views, id)
			idle = append(idle, v)
		}
	}
	h.srv.metrics.views.Set(float64(len(h.views)))
	h.mu.Unlock()
	for _, v := range idle {
		v.stop()
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.views)
}

// stopAll stops every view (shutdown).
func (h *hub) stopAll() {
	h.mu.Lock()
	views := h.views
	h.views = map[string]*view{}
	h.mu.Unlock()
	for _, v := range views {
		v.stop()
	}
}
