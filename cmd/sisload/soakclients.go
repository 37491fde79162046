package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/oracle"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/subjects"
)

// soakClients is how the soak's clients churn.
type soakClients struct {
	// Gateways are the WebSocket URLs a client picks from at random.
	Gateways []string
	// Groups are the groups to subscribe to.
	Groups []subjects.Group
	// Life bounds a connection's life: it closes at a random moment in
	// [Life/10, Life].
	Life time.Duration
	// Slow is the share of connections that stall reading now and then.
	Slow float64
	// MaxGroups is the most groups one connection follows at once.
	MaxGroups int
	// Seed makes each worker's choices.
	Seed uint64
}

// runSoakClients runs n clients, each connecting, subscribing,
// unsubscribing and disconnecting over and over until ctx ends; the
// returned function waits for them to end.
func runSoakClients(ctx context.Context, n int, cfg soakClients, t *soakTally, o *oracle.Oracle) (wait func()) {
	var wg sync.WaitGroup
	for i := range n {
		w := &soakWorker{id: i, cfg: cfg, t: t, o: o, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))}
		wg.Go(func() { w.run(ctx) })
	}
	return wg.Wait
}

// soakWorker is one client, one connection after another.
type soakWorker struct {
	id  int
	cfg soakClients
	t   *soakTally
	o   *oracle.Oracle
	rng *rand.Rand
}

// run makes connections until ctx ends.
func (w *soakWorker) run(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		w.connection(ctx, n)
	}
}

// between returns a random duration in [lo, hi).
func (w *soakWorker) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// connection is one connection's life.
func (w *soakWorker) connection(ctx context.Context, n int) {
	life, cancel := context.WithTimeout(ctx, w.between(w.cfg.Life/10, w.cfg.Life))
	defer cancel()
	sc := &soakConn{who: fmt.Sprintf("client %d.%d", w.id, n), positions: w.rng.IntN(2) == 0, t: w.t, o: w.o,
		views: map[string]*soakView{}, quit: make(chan struct{})}
	if w.rng.Float64() < w.cfg.Slow {
		sc.stallEvery, sc.stallFor = 50+w.rng.IntN(200), w.between(2*time.Second, 15*time.Second)
	}
	format := protocol.JSON
	if w.rng.IntN(2) == 0 {
		format = protocol.Msgpack
	}
	c, err := client.Dial(life, w.cfg.Gateways[w.rng.IntN(len(w.cfg.Gateways))], client.Options{Format: format, OnEvent: sc.onEvent})
	if err != nil {
		w.t.dialFails.Add(1)
		pause(ctx, w.between(200*time.Millisecond, time.Second))
		return
	}
	w.t.dials.Add(1)
	w.t.connected.Add(1)
	defer w.t.connected.Add(-1)
	sc.c = c
	w.session(life, sc)
	w.end(sc)
}

// end closes the connection, noting how the gateway closed it if it did.
func (w *soakWorker) end(sc *soakConn) {
	select {
	case <-sc.c.Done():
		code, _ := sc.c.CloseCode()
		w.t.closed(code)
	default:
	}
	close(sc.quit)
	_ = sc.c.Close()
	sc.observeAll()
}

// session initializes and then acts every now and then until ctx ends or
// the connection does.
func (w *soakWorker) session(ctx context.Context, sc *soakConn) {
	if !sc.initialize(ctx) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sc.c.Done():
			return
		case <-time.After(w.between(100*time.Millisecond, 1500*time.Millisecond)):
		}
		if !w.step(ctx, sc) {
			return
		}
	}
}

// step does one thing: answers a KeepAlive, initializes again after a
// RouterDisconnected, subscribes or unsubscribes; false ends the
// connection.
func (w *soakWorker) step(ctx context.Context, sc *soakConn) bool {
	sc.checkAwaitRD()
	switch {
	case sc.takeKeepAlive():
		return sc.request(ctx, "Heartbeat", func() error {
			err := sc.c.Heartbeat(ctx)
			if err == nil {
				w.t.heartbeats.Add(1)
			}
			return err
		})
	case !sc.hasSession():
		return sc.initialize(ctx)
	}
	held := sc.held()
	switch r := w.rng.IntN(10); {
	case r < 5 && len(held) < w.cfg.MaxGroups:
		return w.subscribe(ctx, sc, held)
	case r < 8 && len(held) > 0:
		g := held[w.rng.IntN(len(held))]
		return sc.request(ctx, "Unsubscribe", func() error { return sc.unsubscribe(ctx, g) })
	}
	return true
}

// subscribe subscribes to a group the connection does not follow, by ID
// or now and then by tenant and name.
func (w *soakWorker) subscribe(ctx context.Context, sc *soakConn, held []string) bool {
	g := w.cfg.Groups[w.rng.IntN(len(w.cfg.Groups))]
	for _, h := range held {
		if h == g.ServiceGroupID {
			return true
		}
	}
	req := protocol.Request{ServiceGroupID: g.ServiceGroupID}
	if w.rng.IntN(5) == 0 {
		req = protocol.Request{TenantID: g.TenantID, ServiceGroupName: g.Name}
	}
	return sc.request(ctx, "Subscribe", func() error { return sc.subscribe(ctx, g.ServiceGroupID, req) })
}

// soakConn is one connection of a soak client and what it holds.
type soakConn struct {
	who       string
	positions bool
	c         *client.Client
	t         *soakTally
	o         *oracle.Oracle
	quit      chan struct{} // closed before the connection is: ends a stall

	// stallEvery and stallFor make a slow reader: every stallEvery events
	// it stops reading for stallFor (0: never).
	stallEvery int
	stallFor   time.Duration
	seen       int // events, on the reader goroutine

	mu      sync.Mutex
	unsure  bool // a request went without a reply: nothing more is checked
	session bool
	rds     int // RouterDisconnected events so far
	// awaitRD, when set, is when a RouterDisconnected must have come
	// (awaitRDs: the count before it), after awaitWhat.
	awaitRD   time.Time
	awaitRDs  int
	awaitWhat string
	keepAlive bool
	views     map[string]*soakView
}

// initialize sends Initialize until it succeeds (the router may be
// down: RouterDisconnectedFault) or the connection ends.
func (sc *soakConn) initialize(ctx context.Context) bool {
	for ctx.Err() == nil {
		sc.mu.Lock()
		rds := sc.rds
		sc.mu.Unlock()
		err := sc.c.Initialize(ctx, "", "", sc.positions)
		if err == nil {
			sc.mu.Lock()
			sc.session = sc.rds == rds
			sc.mu.Unlock()
			sc.t.sessions.Add(1)
			return true
		}
		if f, ok := errors.AsType[*protocol.Fault](err); !ok || f.Type != protocol.RouterDisconnectedFault {
			return sc.judgeFault("Initialize", err, rds)
		}
		pause(ctx, 250*time.Millisecond)
	}
	return false
}

// request runs a request; a fault it should not have got is a violation.
func (sc *soakConn) request(ctx context.Context, op string, fn func() error) bool {
	sc.mu.Lock()
	rds := sc.rds
	sc.mu.Unlock()
	if err := fn(); err != nil {
		return sc.judgeFault(op, err, rds)
	}
	return true
}

// judgeFault judges a request's error: the connection or the soak ending,
// or a fault after a RouterDisconnected, are part of the churn; any other
// fault is a violation. It returns whether the connection goes on.
func (sc *soakConn) judgeFault(op string, err error, rds int) bool {
	f, isFault := errors.AsType[*protocol.Fault](err)
	if !isFault {
		return false // the connection ended, or the soak did
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	switch {
	case sc.rds != rds || !sc.session:
	case f.Type == protocol.RouterDisconnectedFault && sc.awaitRD.IsZero():
		// The gateway may see the router gone before it has told every
		// session: the RouterDisconnected must follow, soon.
		sc.awaitRD, sc.awaitWhat, sc.awaitRDs = time.Now().Add(rdGrace), fmt.Sprintf("%s answered %s: %s", op, f.Type, f.Message), rds
	case f.Type != protocol.RouterDisconnectedFault:
		sc.t.violation("fault", "%s: %s answered %s: %s", sc.who, op, f.Type, f.Message)
	}
	return true
}

// rdGrace is how soon a RouterDisconnected must follow a
// RouterDisconnectedFault given to a session.
const rdGrace = 10 * time.Second

// checkAwaitRD reports a RouterDisconnectedFault that no RouterDisconnected
// followed within rdGrace.
func (sc *soakConn) checkAwaitRD() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	switch {
	case sc.awaitRD.IsZero():
	case sc.rds != sc.awaitRDs:
		sc.awaitRD = time.Time{}
	case time.Now().After(sc.awaitRD):
		sc.t.violation("fault", "%s: %s, and no RouterDisconnected followed within %s", sc.who, sc.awaitWhat, rdGrace)
		sc.awaitRD = time.Time{}
	}
}

// subscribe subscribes to group with req; its view starts before the
// request goes, so that no event of the group comes without one.
func (sc *soakConn) subscribe(ctx context.Context, group string, req protocol.Request) error {
	sc.mu.Lock()
	if !sc.session {
		sc.mu.Unlock()
		return nil
	}
	v := newSoakView(group)
	sc.views[group] = v
	sc.mu.Unlock()
	res, err := sc.c.Subscribe(ctx, req)
	if err != nil {
		sc.settle(err, group, v)
		return err
	}
	sc.t.subscribes.Add(1)
	if res.ServiceGroupID != group || res.Succeeded == nil || !*res.Succeeded {
		sc.t.violation("reply", "%s: Subscribe to %s answered %+v", sc.who, group, *res)
	}
	return nil
}

// unsubscribe unsubscribes from group; nothing of it may come after the
// reply.
func (sc *soakConn) unsubscribe(ctx context.Context, group string) error {
	sc.observe(group)
	err := sc.c.Unsubscribe(ctx, group)
	sc.settle(err, group, nil)
	if err == nil {
		sc.t.unsubscribes.Add(1)
	}
	return err
}

// settle ends a request about group: with a reply (or fault) the view is
// dropped; without one (the connection ends, or the soak) whether the
// gateway took the request is unknown, so nothing the connection still
// gets is checked.
func (sc *soakConn) settle(err error, group string, v *soakView) {
	if _, isFault := errors.AsType[*protocol.Fault](err); err == nil || isFault {
		sc.forget(group, v)
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.unsure = true
}

// forget drops the view of group (only if it is v, when v is set).
func (sc *soakConn) forget(group string, v *soakView) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if v == nil || sc.views[group] == v {
		delete(sc.views, group)
	}
}

// held returns the groups the connection follows.
func (sc *soakConn) held() []string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	out := make([]string, 0, len(sc.views))
	for g := range sc.views {
		out = append(out, g)
	}
	return out
}

// hasSession says whether the connection has a session.
func (sc *soakConn) hasSession() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.session
}

// takeKeepAlive reports (once) that a KeepAlive came.
func (sc *soakConn) takeKeepAlive() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	k := sc.keepAlive
	sc.keepAlive = false
	return k
}

// onEvent takes every event, in order, on the connection's reader.
func (sc *soakConn) onEvent(ev protocol.Message) {
	sc.t.events.Add(1)
	sc.stall()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	switch ev.Event {
	case protocol.EventRouterDisconnected:
		sc.t.routerDisconnects.Add(1)
		sc.session = false
		sc.rds++
		clear(sc.views)
	case protocol.EventKeepAlive:
		sc.keepAlive = true
	case protocol.EventSessionsUpdated, protocol.EventInitialDataComplete:
		sc.groupEvent(&ev)
	}
}

// stall stops reading for a while now and then, on a slow reader.
func (sc *soakConn) stall() {
	sc.seen++
	if sc.stallEvery == 0 || sc.seen%sc.stallEvery != 0 {
		return
	}
	t := time.NewTimer(sc.stallFor)
	defer t.Stop()
	select {
	case <-t.C:
	case <-sc.quit:
	}
}

// groupEvent checks and applies an event of a group; the view it leaves is
// checked against the stream.
func (sc *soakConn) groupEvent(ev *protocol.Message) {
	v := sc.views[ev.ServiceGroupID]
	switch {
	case sc.unsure:
		return
	case v == nil && sc.rds > 0 && !sc.session:
		sc.t.violation("after RouterDisconnected", "%s: %s of %s (Seq %d) after RouterDisconnected", sc.who, ev.Event, ev.ServiceGroupID, ev.Seq)
		return
	case v == nil:
		sc.t.violation("not subscribed", "%s: %s of %s (Seq %d), a group it does not follow", sc.who, ev.Event, ev.ServiceGroupID, ev.Seq)
		return
	case v.broken:
		return
	}
	if err := v.event(ev, sc.positions); err != nil {
		v.broken = true
		sc.t.violation("updates", "%s: %s: %v", sc.who, v.id, err)
		return
	}
	if v.complete {
		sc.o.Check(oracle.Observation{Group: v.id, Seq: v.seq, Positions: sc.positions, Print: v.print, Who: sc.who})
	}
}

// observe checks the view of group against the stream.
func (sc *soakConn) observe(group string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if v := sc.views[group]; v != nil && v.complete && !v.broken {
		sc.o.Check(oracle.Observation{Group: v.id, Seq: v.seq, Positions: sc.positions, Print: v.print, Who: sc.who})
	}
}

// observeAll checks every complete view against the stream.
func (sc *soakConn) observeAll() {
	for _, g := range sc.held() {
		sc.observe(g)
	}
}
