package router

import (
	"fmt"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// Health is what the adapter knows of its two links: to the router and to
// the event store.
type Health struct {
	// Router says whether the router link is up; RouterReason says why not.
	Router       bool
	RouterReason string
	// StoreFault says why JetStream refuses the adapter's writes, empty
	// while it stores them; StoreSince is when it began refusing.
	StoreFault string
	StoreSince time.Time
	// Epoch is the router link's epoch.
	Epoch uint64
	// Closed says Close has ended the adapter.
	Closed bool
	// Active says this adapter holds the lease and writes to the bus;
	// Holder names the adapter that does (this one's name when Active).
	Active bool
	Holder string
}

// Health reports the adapter's links. It never waits for the store.
func (a *Adapter) Health() Health {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	return Health{Router: a.link.Connected, RouterReason: a.link.Reason, StoreFault: a.storeFault, StoreSince: a.storeSince,
		Epoch: a.link.Epoch, Closed: a.stopped, Active: !a.stopped && a.Failed() == nil, Holder: a.cfg.Name}
}

// Ready returns nil while the adapter has its router link and the store
// takes its writes; otherwise an error that wraps ErrClosed,
// ErrStoreRefuses or ErrRouterDown and says why.
func (a *Adapter) Ready() error {
	h := a.Health()
	switch {
	case h.Closed:
		return ErrClosed
	case h.StoreFault != "":
		return fmt.Errorf("%w since %s: %s", ErrStoreRefuses, h.StoreSince.Format(time.RFC3339), h.StoreFault)
	case !h.Router:
		return fmt.Errorf("%w: %s", ErrRouterDown, h.RouterReason)
	}
	return nil
}

// setClock makes c the router's clock (nil: the wall clock).
func (a *Adapter) setClock(c Clock) {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	a.clock = c
}

// routerClock returns the router's clock reading; nil without a Clock.
func (a *Adapter) routerClock() *subjects.RouterClock {
	a.linkMu.Lock()
	c := a.clock
	a.linkMu.Unlock()
	if c == nil {
		return nil
	}
	at, rate := c.RouterClock()
	return &subjects.RouterClock{At: at.UTC(), Rate: rate}
}

// routerNow is the router's time now (on every enqueue: no allocation).
func (a *Adapter) routerNow() time.Time {
	a.linkMu.Lock()
	c := a.clock
	a.linkMu.Unlock()
	if c == nil {
		return time.Now()
	}
	at, _ := c.RouterClock()
	return at
}

// routerClockTime is the router's time now when it has a clock of its
// own, else zero (the event's own time is the router's then).
func (a *Adapter) routerClockTime() time.Time {
	a.linkMu.Lock()
	c := a.clock
	a.linkMu.Unlock()
	if c == nil {
		return time.Time{}
	}
	at, _ := c.RouterClock()
	return at.UTC()
}

// checkTime refuses a TimeEnteredQueue too far ahead of the router's clock.
func (a *Adapter) checkTime(callID string, entered, now time.Time) error {
	if ahead := entered.Sub(now); ahead > a.cfg.ClockSkew {
		return fmt.Errorf("%w: call %s entered the queue %s ahead of the router's clock (%s); allowed %s",
			queue.ErrInvalid, callID, ahead.Round(time.Second), now.UTC().Format(time.RFC3339), a.cfg.ClockSkew)
	}
	return nil
}

// setStoreFault records that the store refuses writes (err) or takes them
// again (nil); the next status refresh tells the gateways, whose clients
// get RouterDisconnected meanwhile: what they see no longer changes.
func (a *Adapter) setStoreFault(err error) {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	a.linkVer++
	if err == nil {
		a.storeFault, a.storeSince = "", time.Time{}
		return
	}
	a.storeFault, a.storeSince = err.Error(), time.Now().UTC()
}

// published is the status gateways are given for the link st: not
// connected while the store refuses writes. a.linkMu is held.
func (a *Adapter) publishedLocked(st subjects.RouterStatus) subjects.RouterStatus {
	if a.storeFault != "" && st.Connected {
		st.Connected = false
		st.Since = a.storeSince
		st.Reason = ErrStoreRefuses.Error() + ": " + a.storeFault
	}
	return st
}
