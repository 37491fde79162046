package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// hub holds the gateway's views, one per group with subscribers (or that had
// some within ViewIdle), and feeds them their live events: every view's
// core subscription delivers into one channel that one goroutine reads.
type hub struct {
	srv   *Server
	feed  chan *nats.Msg // live events of every view
	loads limiter        // bounds the reads of history at once

	mu    sync.Mutex // guards views
	views map[string]*view

	// used by sweep only
	lastCheck  time.Time // when sweep last ran
	reconnects uint64
}

// feedSize is how many live messages may wait for the dispatcher; past it
// the NATS client drops them, and the views repair the gaps.
const feedSize = 1 << 16

func newHub(s *Server) *hub {
	return &hub{srv: s, views: map[string]*view{}, feed: make(chan *nats.Msg, feedSize),
		loads: make(limiter, s.cfg.LoadConcurrency), reconnects: s.nc.Stats().Reconnects}
}

// dispatch hands live messages to their views until ctx ends.
func (h *hub) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-h.feed:
			if _, group, ok := subjects.ParseLive(m.Subject); ok {
				if v := h.view(group); v != nil {
					v.onMsg(m)
				}
			}
		}
	}
}

func (h *hub) view(group string) *view {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.views[group]
}

// acquire returns the group's view once it is loaded, holding a reference
// that the subscription keeps (or release gives back). Cancelling ctx
// gives up the wait with the reason the view is not loaded yet.
func (h *hub) acquire(ctx context.Context, g subjects.Group) (*view, error) {
	v, old, fresh := h.lookup(g)
	if old != nil {
		old.close()
	}
	if fresh {
		if err := v.start(); err != nil {
			h.remove(v)
			v.release()
			return nil, err
		}
	}
	select {
	case <-v.ready:
		return v, nil
	case <-ctx.Done():
		v.release()
		_, why := v.followErr()
		return nil, fmt.Errorf("load view: %w", errors.Join(ctx.Err(), why))
	}
}

// lookup finds or makes the group's view and takes a reference; a view of
// a group that moved to another tenant is replaced (old, to be closed).
func (h *hub) lookup(g subjects.Group) (v, old *view, fresh bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.views[g.ServiceGroupID]
	if !ok || v.group.TenantID != g.TenantID {
		old, v, fresh = v, newView(h, g), true
		h.views[g.ServiceGroupID] = v
		h.srv.metrics.views.Set(float64(len(h.views)))
	}
	v.refs.Add(1)
	return v, old, fresh
}

// remove takes v out of the hub, if it is still there.
func (h *hub) remove(v *view) {
	h.mu.Lock()
	if h.views[v.group.ServiceGroupID] == v {
		delete(h.views, v.group.ServiceGroupID)
	}
	h.srv.metrics.views.Set(float64(len(h.views)))
	h.mu.Unlock()
	v.close()
}

// sweep, once a second, looks for live messages that may have been lost,
// drops views nobody has used for ViewIdle, and ends the subscriptions of
// views that could not follow their group for SubscribeTimeout.
func (h *hub) sweep(now time.Time) {
	if now.Sub(h.lastCheck) < time.Second {
		return
	}
	h.lastCheck = now
	h.checkLosses()
	for _, v := range h.all() {
		switch {
		case v.idleFor(now) > h.srv.cfg.ViewIdle:
			h.remove(v)
		case h.abandoned(v, now):
			h.abandon(v)
		}
	}
}

// all returns the views.
func (h *hub) all() []*view {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*view, 0, len(h.views))
	for _, v := range h.views {
		out = append(out, v)
	}
	return out
}

// abandoned says whether v has not followed its group for too long.
func (h *hub) abandoned(v *view, now time.Time) bool {
	since, _ := v.followErr()
	return !since.IsZero() && now.Sub(since) > h.srv.cfg.SubscribeTimeout
}

// abandon ends a view that cannot follow its group: every subscriber's
// connection is closed with 4010 and the reason, so that no client waits
// in silence; a new Subscribe tries anew.
func (h *hub) abandon(v *view) {
	_, why := v.followErr()
	h.srv.log.Error().Err(why).Str("group", v.group.ServiceGroupID).Msg("group view cannot follow its group; closing its subscribers")
	reason := fmt.Sprintf("service group %s cannot be followed", v.group.ServiceGroupID)
	for _, t := range v.subscribers() {
		t.closeWith(protocol.CloseGroupUnavailable, reason)
	}
	h.remove(v)
}

// checkLosses makes every view read what it may have missed after the NATS
// connection was re-established, and a view whose subscription dropped
// messages read what it dropped.
func (h *hub) checkLosses() {
	reconnects := h.srv.nc.Stats().Reconnects
	all := reconnects != h.reconnects
	h.reconnects = reconnects
	for _, v := range h.all() {
		if v.droppedMore() || all {
			v.catchUp()
		}
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.views)
}

// closeAll stops every view (shutdown).
func (h *hub) closeAll() {
	h.mu.Lock()
	views := h.views
	h.views = map[string]*view{}
	h.mu.Unlock()
	for _, v := range views {
		v.close()
	}
}

// limiter bounds how many of something run at once.
type limiter chan struct{}

// acquire waits for a slot; cancelling ctx gives up the wait. The returned
// function frees the slot.
func (l limiter) acquire(ctx context.Context) (func(), error) {
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
