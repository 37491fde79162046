package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
)

// The clients of TestChaos: each one an actor that sends random requests
// on a connection of the client package, its clientView checking every
// event and reply.

// actors are the running clients.
type actors struct {
	list   []*actor
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// stop ends the clients' requests; their connections stay open.
func (as *actors) stop() {
	as.once.Do(func() {
		as.cancel()
		as.wg.Wait()
	})
}

// role is what kind of client an actor is.
type role uint8

const (
	roleNormal role = iota
	roleSlow        // reads with a delay for every event
	roleStall       // stops reading now and then
	roleHog         // now and then floods Subscribes on connections it never reads, then hangs them up
)

var roleNames = []string{"normal", "slow", "stall", "hog"}

// actor is one chaos client: it sends random requests on a connection of
// the client package; its view checks every event (see clientView).
type actor struct {
	r         *chaosRun
	name      string
	format    protocol.Format
	positions bool
	role      role
	rng       *rand.Rand
	slow      *rand.Rand // a slow client's delays, drawn on its reader goroutine
	v         *clientView
	c         *client.Client
	gate      atomic.Pointer[chan struct{}] // while set, the reader waits
	floodAt   time.Time                     // a hog's next flood
	conns     int                           // connections so far
}

// startActors starts 8 to 16 clients; the first three are slow, stalling
// and hogging.
func (r *chaosRun) startActors(rng *rand.Rand) *actors {
	ctx, cancel := context.WithCancel(context.Background())
	as := &actors{cancel: cancel}
	for i := range 8 + rng.IntN(9) {
		a := &actor{r: r, format: protocol.Format(rng.IntN(2)), positions: rng.IntN(2) == 0, role: roleNormal,
			rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(i))), slow: rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))}
		if i < 3 {
			a.role = role(i + 1)
		}
		a.floodAt = time.Now().Add(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		a.name = fmt.Sprintf("c%02d(%s,positions=%v,%s)", i, []string{"json", "msgpack"}[a.format], a.positions, roleNames[a.role])
		a.v = newClientView(a.name, a.positions, r.f, r.obs, r.stats)
		as.list = append(as.list, a)
		as.wg.Add(1)
		go func() {
			defer as.wg.Done()
			a.run(ctx)
		}()
	}
	r.t.Cleanup(func() {
		as.stop()
		for _, a := range as.list {
			a.closeConn()
		}
	})
	return as
}

// run sends requests until ctx ends; the connection stays open.
func (a *actor) run(ctx context.Context) {
	defer a.release()
	for ctx.Err() == nil {
		if !a.connected(ctx) {
			continue
		}
		a.v.overdueRD()
		if a.v.takeKeepAlive() {
			a.heartbeat()
		}
		a.act(ctx)
		pauseCtx(ctx, time.Duration(a.rng.IntN(30))*time.Millisecond)
	}
}

// act sends one random request, or stalls, floods or reconnects.
func (a *actor) act(ctx context.Context) {
	if a.role == roleHog && time.Now().After(a.floodAt) {
		a.flood(ctx)
		a.floodAt = time.Now().Add(time.Duration(15+a.rng.IntN(15)) * time.Second)
		return
	}
	if !a.v.hasSession() && a.rng.IntN(10) < 8 {
		a.initialize()
		return
	}
	switch x := a.rng.IntN(100); {
	case x < 35:
		a.subscribe()
	case x < 47:
		a.unsubscribe()
	case x < 54:
		a.heartbeat()
	case x < 57:
		a.initialize()
	case x < 64:
		a.malformed()
	case x < 66:
		a.closeConn()
	case x < 72 && a.role == roleStall:
		a.stall(ctx)
	}
}

// open reports whether the actor has a connection that has not ended.
func (a *actor) open() bool {
	if a.c == nil {
		return false
	}
	select {
	case <-a.c.Done():
		return false
	default:
		return true
	}
}

// connected makes sure there is a connection: one that ended is judged by
// its close code and replaced.
func (a *actor) connected(ctx context.Context) bool {
	if a.open() {
		return true
	}
	if a.c != nil {
		a.judgeClose()
		a.c = nil
	}
	a.conns++
	a.v.newConnection(a.conns)
	dctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()
	c, err := client.Dial(dctx, a.r.url, client.Options{Format: a.format, OnEvent: a.onEvent})
	if err != nil {
		if ctx.Err() == nil {
			a.r.f.add(checkClose, "%s: dial: %v", a.name, err)
			pauseCtx(ctx, 100*time.Millisecond)
		}
		return false
	}
	a.c = c
	return true
}

// judgeClose: a connection the gateway ended must say why, with 4009 for
// a client too slow (a client that did not read may miss the close frame).
func (a *actor) judgeClose() {
	code, why := a.c.CloseCode()
	a.r.stats.reconnects.Add(1)
	switch {
	case code == protocol.CloseSlowConsumer:
		a.r.stats.slowCloses.Add(1)
	case code == 0:
		a.r.stats.unannounced.Add(1) // a close frame behind unread data can be lost
	default:
		a.r.f.add(checkClose, "%s: the gateway closed the connection with %d %q", a.v.who(), code, why)
	}
}

// closeConn closes the connection (a client hanging up); the reader must
// not be waiting then.
func (a *actor) closeConn() {
	if a.c != nil {
		a.release()
		_ = a.c.Close()
		a.c = nil
		a.r.stats.reconnects.Add(1)
	}
}

// onEvent runs on the connection's reader: it waits while the client
// stalls, dawdles for a slow client, and gives the event to the view.
func (a *actor) onEvent(m protocol.Message) {
	if g := a.gate.Load(); g != nil {
		<-*g
	}
	if a.role == roleSlow {
		pause(time.Duration(a.slow.IntN(3000)) * time.Microsecond)
	}
	a.v.onEvent(m)
}

// release lets the reader go on.
func (a *actor) release() {
	if g := a.gate.Swap(nil); g != nil {
		close(*g)
	}
}

// do sends a request and waits for its reply, or for the connection's end:
// the client package's Do on a connection that has just ended would wait
// for its deadline.
func (a *actor) do(req protocol.Request) (*protocol.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	c := a.c
	go func() {
		select {
		case <-c.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	a.r.stats.requests.Add(1)
	res, err := c.Do(ctx, req)
	if errors.Is(err, context.Canceled) {
		a.r.stats.cut.Add(1)
	}
	return res, err
}

// initialize sends Initialize with the client's SendQueuePositionUpdates.
func (a *actor) initialize() {
	tok := a.v.sending(false, "")
	_, err := a.do(protocol.Request{Op: protocol.OpInitialize, SendQueuePositionUpdates: &a.positions})
	a.v.afterInitialize(tok, err)
}

// heartbeat sends Heartbeat (the answer to a KeepAlive, or at random).
func (a *actor) heartbeat() {
	tok := a.v.sending(false, "")
	_, err := a.do(protocol.Request{Op: protocol.OpHeartbeat})
	a.v.afterHeartbeat(tok, err)
}

// subscribe sends a random Subscribe (see subscribeRequest).
func (a *actor) subscribe() {
	req, s := a.subscribeRequest()
	tok := a.v.sending(true, s.group)
	res, err := a.do(req)
	a.v.afterSubscribe(s, tok, res, err)
}

// subscribeRequest picks a Subscribe: by ID, by tenant and name (in any
// case), by both (the ID wins); of a group that does not exist now and
// then; resuming from a Seq the client holds, from 0, or from one the
// group never reaches.
func (a *actor) subscribeRequest() (protocol.Request, subReq) {
	req := protocol.Request{Op: protocol.OpSubscribe}
	if a.rng.IntN(100) < 5 {
		req.TenantID, req.ServiceGroupName = "acme", "Nowhere"
		return req, subReq{}
	}
	g := chaosGroups[a.rng.IntN(len(chaosGroups))]
	name := []func(string) string{strings.ToLower, strings.ToUpper, strings.TrimSpace}[a.rng.IntN(3)](g.name)
	switch x := a.rng.IntN(10); {
	case x < 5:
		req.ServiceGroupID = g.id
	case x < 9:
		req.TenantID, req.ServiceGroupName = g.tenant, name
	default:
		req.ServiceGroupID, req.TenantID, req.ServiceGroupName = g.id, "globex", "Nowhere"
	}
	s := subReq{group: g.id}
	if seq, ok := a.v.resumePoint(g.id); ok && a.rng.IntN(2) == 0 {
		s.resume = &seq
	} else if x := a.rng.IntN(100); x < 8 {
		s.resume = new(uint64)
		if x < 3 {
			*s.resume, s.bogus = 1<<40+a.rng.Uint64N(1000), true
		}
	}
	req.ResumeFromSeq = s.resume
	return req, s
}

// unsubscribe unsubscribes from a group it holds, or now and then from any.
func (a *actor) unsubscribe() {
	g := chaosGroups[a.rng.IntN(len(chaosGroups))].id
	if subs := a.v.subscribed(); len(subs) > 0 && a.rng.IntN(10) < 8 {
		g = subs[a.rng.IntN(len(subs))]
	}
	tok := a.v.sending(false, "")
	_, err := a.do(protocol.Request{Op: protocol.OpUnsubscribe, ServiceGroupID: g})
	a.v.afterUnsubscribe(g, tok, err)
}

// malformed sends a request the gateway must refuse, or garbage, after
// which the connection must stay open.
func (a *actor) malformed() {
	tok := a.v.sending(false, "")
	var err error
	switch a.rng.IntN(5) {
	case 0:
		_, err = a.do(protocol.Request{Op: "Frobnicate"})
		a.v.afterMalformed("an unknown op", tok, err, protocol.InvalidRequestFault)
	case 1:
		_, err = a.do(protocol.Request{Op: protocol.OpInitialize})
		a.v.afterMalformed("Initialize without SendQueuePositionUpdates", tok, err, protocol.InvalidRequestFault, protocol.RouterDisconnectedFault)
	case 2:
		_, err = a.do(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "bad id!"})
		a.v.afterMalformed("Subscribe of a malformed ID", tok, err, protocol.InvalidServiceGroupFault, protocol.RouterDisconnectedFault)
	case 3:
		_, err = a.do(protocol.Request{Op: protocol.OpSubscribe})
		a.v.afterMalformed("Subscribe naming no group", tok, err, protocol.InvalidServiceGroupFault, protocol.RouterDisconnectedFault)
	default:
		garbage := [][]byte{[]byte(`{"op":"Subscribe","id":`), []byte(`[1,2,3]`), []byte("\u00ff")}[a.rng.IntN(3)]
		if a.format == protocol.Msgpack {
			garbage = []byte{0xc1, 0x81, 0xa2}[:1+a.rng.IntN(3)]
		}
		_ = a.c.SendRaw(garbage)
	}
}

// stall stops reading for up to 3 s: the gateway must then send every
// event, or close the connection (4009).
func (a *actor) stall(ctx context.Context) {
	g := make(chan struct{})
	a.gate.Store(&g)
	pauseCtx(ctx, time.Duration(300+a.rng.IntN(2700))*time.Millisecond)
	a.release()
}

// flood opens floodConns connections that never read, sends on each
// Initialize, Subscribe and Unsubscribe of the deepest group over and over
// for 3 to 5 s, then hangs them up. The gateway must bound what it queues
// for such clients (the heap check).
func (a *actor) flood(ctx context.Context) {
	gate, stop := make(chan struct{}), make(chan struct{})
	var (
		conns []*client.Client
		wg    sync.WaitGroup
	)
	for range floodConns {
		c, err := client.Dial(ctx, a.r.url, client.Options{OnEvent: func(protocol.Message) { <-gate }})
		if err != nil {
			break
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			floodRequests(c, a.r.stats, stop)
		}()
	}
	a.r.stats.floods.Add(1)
	pause(time.Duration(3000+a.rng.IntN(2000)) * time.Millisecond) // not cut short when the run ends
	close(gate)
	close(stop)
	for _, c := range conns {
		_ = c.Close() // also ends a send the gateway does not take
	}
	wg.Wait()
}

// floodRequests sends Initialize (again after a RouterDisconnected it does
// not read), Subscribe and Unsubscribe on c until stopped or c fails.
func floodRequests(c *client.Client, stats *runStats, stop chan struct{}) {
	id, no := int64(1<<40), false // the client knows no such request: it drops the replies
	var reqs [][]byte
	for _, r := range []protocol.Request{{Op: protocol.OpInitialize, SendQueuePositionUpdates: &no},
		{Op: protocol.OpSubscribe, ServiceGroupID: chaosGroups[0].id}, {Op: protocol.OpUnsubscribe, ServiceGroupID: chaosGroups[0].id}} {
		r.ID = &id
		data, _ := json.Marshal(r)
		reqs = append(reqs, data)
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if c.SendRaw(reqs[i%len(reqs)]) != nil {
			return
		}
		stats.flooded.Add(1)
	}
}
