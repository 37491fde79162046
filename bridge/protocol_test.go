package bridge_test

import (
	"slices"
	"testing"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

func TestInitializeFaults(t *testing.T) {
	sendsMalformed(t) // on purpose
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := dial(t, url, protocol.JSON)
	ctx := ctxT(t)
	if _, err := c.Do(ctx, protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "acme-sales"}); faultType(err) != protocol.InvalidRequestFault {
		t.Fatalf("subscribe before initialize: %v", err)
	}
	if _, err := c.Do(ctx, protocol.Request{Op: protocol.OpInitialize}); faultType(err) != protocol.InvalidRequestFault {
		t.Fatalf("initialize without SendQueuePositionUpdates: %v", err)
	}
	if _, err := c.Do(ctx, protocol.Request{Op: "Dance"}); faultType(err) != protocol.InvalidRequestFault {
		t.Fatalf("unknown op: %v", err)
	}
	if err := c.Initialize(ctx, "", "", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(ctx, "", "", false); faultType(err) != protocol.InvalidRequestFault {
		t.Fatalf("second initialize: %v", err)
	}
	if err := c.Heartbeat(ctx); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
}

func TestMalformedRequestsKeepTheConnection(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	for _, f := range []protocol.Format{protocol.JSON, protocol.Msgpack} {
		c := dial(t, url, f)
		for _, raw := range [][]byte{[]byte("not json"), []byte(`{"op":7}`), []byte(`[]`), []byte(`{"op":"Initialize","id":"x"}`)} {
			if err := c.SendRaw(raw); err != nil {
				t.Fatal(err)
			}
		}
		// the faults come as replies without an id: the connection still works
		if err := c.Initialize(ctxT(t), "", "", true); err != nil {
			t.Fatalf("format %d: initialize after malformed input: %v", f, err)
		}
	}
}

func TestSubscribeInitialDataThenLive(t *testing.T) {
	e := newEnv(t)
	ids := e.enqueue("acme-sales", 1200)
	_, url := e.gateway(bridge.Config{InitialChunk: 500}, nil)
	seq := uint64(1200)
	for _, f := range []protocol.Format{protocol.JSON, protocol.Msgpack} {
		c := dial(t, url, f)
		ctx := ctxT(t)
		if err := c.Initialize(ctx, "", "", true); err != nil {
			t.Fatal(err)
		}
		res, err := c.Subscribe(ctx, protocol.Request{TenantID: "acme", ServiceGroupName: "SALES"})
		if err != nil || res.Succeeded == nil || !*res.Succeeded || res.ServiceGroupID != "acme-sales" {
			t.Fatalf("subscribe by name: %+v %v", res, err)
		}
		m := client.NewMirror(true)
		chunks := 0
		for {
			ev := next(t, c)
			if err := m.Apply(ev); err != nil {
				t.Fatal(err)
			}
			if ev.Event == protocol.EventSessionsUpdated {
				chunks++
				if ev.Seq != seq {
					t.Fatalf("initial data carries Seq %d, want %d", ev.Seq, seq)
				}
			}
			if ev.Event == protocol.EventInitialDataComplete {
				if ev.Seq != seq || ev.ServiceGroupID != "acme-sales" {
					t.Fatalf("InitialDataComplete %+v", ev)
				}
				break
			}
		}
		if chunks != (len(ids)+499)/500 || !slices.Equal(callIDs(m.Groups["acme-sales"]), ids) {
			t.Fatalf("format %d: %d chunks, %d sessions", f, chunks, len(m.Groups["acme-sales"]))
		}
		res, err = c.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"})
		if err != nil || *res.Succeeded {
			t.Fatalf("second subscribe: %+v %v", res, err)
		}
		// a live change and the shifts it causes come in one event
		e.Apply("acme-sales", queue.Change{Op: queue.OpRemove, CallID: ids[0], Cause: queue.CauseSessionAllocatedToAgent})
		seq++
		ev := next(t, c)
		if ev.Seq != seq || len(ev.SessionUpdates) != len(ids) || ev.SessionUpdates[0].UpdateType != "Remove" ||
			ev.SessionUpdates[0].RemoveCause != "SessionAllocatedToAgent" || ev.SessionUpdates[1].UpdateType != "Modify" {
			t.Fatalf("live event: seq %d, %d updates", ev.Seq, len(ev.SessionUpdates))
		}
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
		ids = ids[1:]
		for i, s := range m.Groups["acme-sales"] {
			if s.QueuePosition != i+1 || s.CallID != ids[i] {
				t.Fatalf("position %d holds %s at %d", i+1, s.CallID, s.QueuePosition)
			}
		}
	}
}

func TestSubscribeFaults(t *testing.T) {
	sendsMalformed(t) // on purpose
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	ctx := ctxT(t)
	for _, req := range []protocol.Request{
		{ServiceGroupID: "nope"},
		{ServiceGroupID: "bad id!"},
		{TenantID: "acme", ServiceGroupName: "Chat"},
		{TenantID: "acme"},
		{},
	} {
		if _, err := c.Subscribe(ctx, req); faultType(err) != protocol.InvalidServiceGroupFault {
			t.Fatalf("%+v: %v", req, err)
		}
	}
	if err := c.Unsubscribe(ctx, "acme-sales"); faultType(err) != protocol.InvalidServiceGroupFault {
		t.Fatalf("unsubscribe when not subscribed: %v", err)
	}
}

func TestModifyOnlyForPositionSessions(t *testing.T) {
	e := newEnv(t)
	ids := e.enqueue("globex-chat", 5)
	_, url := e.gateway(bridge.Config{}, nil)
	with, without := initialized(t, url, true), initialized(t, url, false)
	mw, mo := client.NewMirror(true), client.NewMirror(false)
	for _, p := range []struct {
		c *client.Client
		m *client.Mirror
	}{{with, mw}, {without, mo}} {
		if _, err := p.c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "globex-chat"}); err != nil {
			t.Fatal(err)
		}
		untilComplete(t, p.c, p.m, "globex-chat")
	}
	e.Apply("globex-chat", queue.Change{Op: queue.OpMove, CallID: ids[4], Position: 1})
	e.Apply("globex-chat", queue.Change{Op: queue.OpRemove, CallID: ids[2], Cause: queue.CauseDisconnect})
	// the gateway may carry both changes in one event: read up to Seq 7
	var updates []protocol.SessionUpdate
	for ev := (protocol.Message{}); ev.Seq != 7; {
		ev = next(t, with)
		if err := mw.Apply(ev); err != nil {
			t.Fatal(err)
		}
		updates = append(updates, ev.SessionUpdates...)
	}
	if updates[0].UpdateType != "Modify" || updates[0].Session.CallID != ids[4] || updates[0].Session.QueuePosition != 1 {
		t.Fatalf("move for a position session: %+v", updates)
	}
	evo := next(t, without)
	if evo.Seq != 7 || len(evo.SessionUpdates) != 1 || evo.SessionUpdates[0].UpdateType != "Remove" || evo.SessionUpdates[0].RemoveCause != "Disconnect" {
		t.Fatalf("a session without positions got %+v", evo)
	}
	want := queueIDs(e.Queues["globex-chat"])
	if got := callIDs(mw.Groups["globex-chat"]); !slices.Equal(got, want) {
		t.Fatalf("position mirror %v, router %v", got, want)
	}
}

func TestUnsubscribeStopsEvents(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	ctx := ctxT(t)
	for _, g := range []string{"acme-sales", "acme-support"} {
		if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: g}); err != nil {
			t.Fatal(err)
		}
		untilComplete(t, c, client.NewMirror(false), g)
	}
	if err := c.Unsubscribe(ctx, "acme-sales"); err != nil {
		t.Fatal(err)
	}
	e.enqueue("acme-sales", 3)
	e.enqueue("acme-support", 1)
	if ev := next(t, c); ev.ServiceGroupID != "acme-support" {
		t.Fatalf("event of an unsubscribed group: %+v", ev)
	}
}
