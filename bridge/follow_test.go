package bridge_test

import (
	"fmt"
	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// updateEvents changes the events stream's configuration.
func (e *env) updateEvents(change func(*jetstream.StreamConfig)) {
	e.TB.Helper()
	s, err := e.JS.Stream(e.Ctx, subjects.StreamEvents)
	if err != nil {
		e.TB.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	change(&cfg)
	if _, err := e.JS.UpdateStream(e.Ctx, cfg); err != nil {
		e.TB.Fatal(err)
	}
}

// unheardEnqueue stores n enqueues in acme-sales that no live subscriber
// hears: the stream stops republishing while they are stored.
func (e *env) unheardEnqueue(group string, n int) {
	e.TB.Helper()
	e.updateEvents(func(c *jetstream.StreamConfig) { c.RePublish = nil })
	e.enqueue(group, n)
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		e.TB.Fatal(err)
	}
	e.updateEvents(func(c *jetstream.StreamConfig) { *c = subjects.Config{}.WithDefaults().EventsStream() })
}

// follow applies events to m until its copy of group reaches seq.
func follow(t *testing.T, c *client.Client, m *client.Mirror, group string, seq uint64) {
	t.Helper()
	for m.Seq[group] < seq {
		if err := m.Apply(next(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	if m.Seq[group] != seq {
		t.Fatalf("%s went past seq %d to %d", group, seq, m.Seq[group])
	}
}

// TestViewRepairsAGapFromTheStream loses live events (stored, never
// republished): the next one shows the gap, and the view reads the missing
// ones back from the stream; the client sees every change, in order.
func TestViewRepairsAGapFromTheStream(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c, m := subscribedTo(t, url, "acme-sales", true)
	e.unheardEnqueue("acme-sales", 3)
	e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: "call-3", Position: 1})
	follow(t, c, m, "acme-sales", 4)
	_, want, _ := e.Adapter.Group("acme-sales")
	if got := callIDs(m.Groups["acme-sales"]); fmt.Sprint(got) != fmt.Sprint(idsOf(want)) {
		t.Fatalf("client holds %v, router %v", got, idsOf(want))
	}
	if n := gatewayMetrics(t, url)["sis_gateway_view_repairs_total"]; n < 1 {
		t.Fatalf("%v repairs", n)
	}
}

// TestViewCatchesUpAfterReconnect loses the last live events of a group
// while the gateway's NATS connection is cut: no later event shows the
// gap, so the view reads what it missed once it is connected again.
func TestViewCatchesUpAfterReconnect(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c, m := subscribedTo(t, url, "acme-sales", false)
	e.unheardEnqueue("acme-sales", 3)
	kickAll(t, e.NS)
	// The cut may have ended the session (RouterDisconnected): then a new
	// one subscribes again. Either way the client ends at seq 3.
	for m.Seq["acme-sales"] < 3 {
		ev := next(t, c)
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Event == protocol.EventRouterDisconnected {
			resubscribe(t, c, "acme-sales")
		}
	}
	if n := len(m.Groups["acme-sales"]); n != 3 || m.Seq["acme-sales"] != 3 {
		t.Fatalf("client at seq %d with %d sessions", m.Seq["acme-sales"], n)
	}
}

// kickAll closes every client connection of the NATS server; they
// reconnect by themselves.
func kickAll(t *testing.T, ns *server.Server) {
	t.Helper()
	cz, err := ns.Connz(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range cz.Conns {
		_ = ns.DisconnectClientByID(ci.Cid)
	}
}

// resubscribe initializes again, once the router is back, and subscribes.
func resubscribe(t *testing.T, c *client.Client, group string) {
	t.Helper()
	retryInitialize(t, c)
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: group}); err != nil {
		t.Fatal(err)
	}
}

// TestFollowsMoreGroupsThanTheStreamAllowsConsumers caps the events
// stream at 5 consumers and follows 40 groups: views use none, every
// Subscribe completes and every group's next change arrives.
func TestFollowsMoreGroupsThanTheStreamAllowsConsumers(t *testing.T) {
	e := bareEnv(t)
	e.Adapter = e.OpenAdapter()
	st := &router.State{Tenants: []subjects.Tenant{{TenantID: "t", Name: "T"}}, Queues: map[string][]queue.Session{}}
	for i := range 40 {
		st.Groups = append(st.Groups, subjects.Group{ServiceGroupID: fmt.Sprintf("g%02d", i), TenantID: "t", Name: fmt.Sprintf("G%02d", i)})
	}
	if err := e.Adapter.LinkUp(e.Ctx, st); err != nil {
		t.Fatal(err)
	}
	e.updateEvents(func(c *jetstream.StreamConfig) { c.MaxConsumers = 5 })
	srv, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	m := client.NewMirror(false)
	for _, g := range st.Groups {
		if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: g.ServiceGroupID}); err != nil {
			t.Fatal(err)
		}
		untilComplete(t, c, m, g.ServiceGroupID)
	}
	for i, g := range st.Groups {
		if err := e.Adapter.Apply(e.Ctx, g.ServiceGroupID, queue.Change{Op: queue.OpEnqueue, CallID: fmt.Sprintf("c%d", i),
			Session: queue.Session{MediaType: queue.MediaChat}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range st.Groups {
		follow(t, c, m, g.ServiceGroupID, 1)
	}
	stream, err := e.JS.Stream(e.Ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(e.Ctx)
	if err != nil || info.State.Consumers != 0 {
		t.Fatalf("%d consumers on the events stream (%v)", info.State.Consumers, err)
	}
	if v := srv.Stats().Views; v != 40 {
		t.Fatalf("%d views", v)
	}
}

func idsOf(ss []queue.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.CallID
	}
	return out
}

// TestForgedEventDoesNotStopAView: a message on a group's events subject
// that is no event (written by someone other than the adapter, which stops
// at its next write of the group) does not keep the group from being
// loaded: it is skipped, and the changes before it arrive.
func TestForgedEventDoesNotStopAView(t *testing.T) {
	e := newEnv(t)
	e.enqueue("acme-sales", 2)
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.JS.Publish(e.Ctx, subjects.Events("acme", "acme-sales"), []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	_, url := e.gateway(bridge.Config{SubscribeTimeout: 5 * time.Second}, nil)
	_, m := subscribedTo(t, url, "acme-sales", true)
	if got := callIDs(m.Groups["acme-sales"]); fmt.Sprint(got) != "[call-1 call-2]" {
		t.Fatalf("client holds %v", got)
	}
}

// TestViewThatCannotFollowClosesItsClients: a gap nothing in the stream
// fills (a forged live message, numbered far ahead) keeps the view from
// following; after SubscribeTimeout its subscribers are closed with 4010
// and the reason, never left in silence.
func TestViewThatCannotFollowClosesItsClients(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{SubscribeTimeout: time.Second}, nil)
	c, _ := subscribedTo(t, url, "acme-sales", false)
	data, err := subjects.EncodeEvents([]subjects.Event{{Tenant: "acme", Group: "acme-sales", Seq: 1000, Time: time.Now().UTC(),
		Change: queue.Change{Op: queue.OpEnqueue, CallID: "ghost", Position: 1, Session: queue.Session{MediaType: queue.MediaChat}}}})
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(subjects.Live("acme", "acme-sales"))
	msg.Data, msg.Header = data, nats.Header{jetstream.SequenceHeader: {"999999"}}
	nc, _ := natstest.Connect(t, e.NS)
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, c); code != protocol.CloseGroupUnavailable {
		t.Fatalf("closed with %d, want 4010", code)
	}
	if _, why := c.CloseCode(); !strings.Contains(why, "acme-sales") {
		t.Fatalf("close reason %q does not name the group", why)
	}
}
