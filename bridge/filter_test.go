package bridge_test

import (
	"fmt"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"reflect"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
)

// enqueueMedia adds a session of a media type at the tail of a group.
func (e *env) enqueueMedia(group string, m queue.MediaType) string {
	e.TB.Helper()
	e.n++
	id := fmt.Sprintf("call-%d", e.n)
	e.Apply(group, queue.Change{Op: queue.OpEnqueue, CallID: id, Session: queue.Session{MediaType: m,
		TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, e.n, 0, time.UTC)}})
	return id
}

// restricted is the router's queue of a group, sessions of the media in
// set only, with their positions in the whole queue.
func restricted(e *env, group string, set ...queue.MediaType) []string {
	var out []string
	for i, s := range e.Queues[group].Sessions() {
		for _, m := range set {
			if s.MediaType == m {
				out = append(out, fmt.Sprintf("%s@%d", s.CallID, i+1))
			}
		}
	}
	return out
}

func shownAt(list []protocol.SessionInfo) []string {
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s@%d", s.CallID, s.QueuePosition))
	}
	return out
}

// TestMediaTypesFilter: a Subscribe with MediaTypes gets only the sessions
// of those types (initial data, Adds, Modifies of their moves, Removes),
// with their positions in the whole queue; after every event its view is
// the router's queue restricted to them; a resume is filtered the same
// way; statistics stay the whole group's.
func TestMediaTypesFilter(t *testing.T) {
	e := newEnv(t)
	for _, m := range []queue.MediaType{queue.MediaEmail, queue.MediaVoice, queue.MediaChat, queue.MediaEmail, queue.MediaVoice} {
		e.enqueueMedia("acme-sales", m)
	}
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	_, url := e.gateway(bridge.Config{Statistics: statsCfg}, nil)
	want := []queue.MediaType{queue.MediaVoice, queue.MediaChat}
	yes := true
	c := initialized(t, url, true)
	m := client.NewMirror(true)
	m.Filtered = map[string]bool{"acme-sales": true}
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales", MediaTypes: []string{"Voice", "Chat"}, Statistics: &yes}); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		if got, w := shownAt(m.Groups["acme-sales"]), restricted(e, "acme-sales", want...); !reflect.DeepEqual(got, w) {
			t.Fatalf("%s: the filtered view holds %v, want %v", what, got, w)
		}
	}
	var stats *protocol.Statistics
	for ev := next(t, c); ; ev = next(t, c) {
		if ev.Event == protocol.EventQueueStatistics {
			stats = ev.Statistics
		} else if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Event == protocol.EventInitialDataComplete {
			break
		}
	}
	check("initial data")
	if stats == nil || stats.Waiting != 5 || stats.WaitingByMedia["Email"] != 2 {
		t.Fatalf("statistics %+v, want the whole group's: 5 waiting, 2 of them Email", stats)
	}

	// changes of every kind; after each one that reaches the client, its view is the restriction
	steps := []func(){
		func() { e.enqueueMedia("acme-sales", queue.MediaEmail) },
		func() { e.enqueueMedia("acme-sales", queue.MediaChat) },
		func() { e.remove("acme-sales", e.Queues["acme-sales"].Sessions()[0].CallID) }, // an Email at the head: the others move
		func() { e.remove("acme-sales", e.Queues["acme-sales"].Sessions()[0].CallID) }, // a Voice
		func() {
			e.Apply("acme-sales", queue.Change{Op: queue.OpMove, CallID: e.Queues["acme-sales"].Sessions()[3].CallID, Position: 1})
		},
	}
	for i, step := range steps {
		step()
		// a Chat arrival after each step: it reaches the client, after
		// whatever the step brought
		e.enqueueMedia("acme-sales", queue.MediaChat)
		if err := e.Adapter.Flush(e.Ctx); err != nil {
			t.Fatal(err)
		}
		last, _, _ := e.Adapter.Group("acme-sales")
		for m.Seq["acme-sales"] < last {
			ev := next(t, c)
			if ev.Event == protocol.EventQueueStatistics {
				continue
			}
			if err := m.Apply(ev); err != nil {
				t.Fatal(err)
			}
			for _, u := range ev.SessionUpdates {
				if u.Session.MediaType != "Voice" && u.Session.MediaType != "Chat" {
					t.Fatalf("step %d: an update of a %s session", i, u.Session.MediaType)
				}
			}
		}
		check(fmt.Sprintf("step %d", i))
	}

	// resumed with the filter: only the missed changes of those types (a
	// watcher tells when the view has applied them all)
	watcher, wm := subscribedTo(t, url, "acme-sales", false)
	from := m.Seq["acme-sales"]
	if err := c.Unsubscribe(ctxT(t), "acme-sales"); err != nil {
		t.Fatal(err)
	}
	drain(t, c, m)
	e.enqueueMedia("acme-sales", queue.MediaVoice)
	e.enqueueMedia("acme-sales", queue.MediaEmail)
	e.remove("acme-sales", e.Queues["acme-sales"].Sessions()[0].CallID)
	catchUp(t, e, watcher, wm, "acme-sales")
	res, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales", MediaTypes: []string{"Voice", "Chat"}, ResumeFromSeq: &from})
	if err != nil || res.Resumed == nil || !*res.Resumed {
		t.Fatalf("resume: %+v %v", res, err)
	}
	resumed := 0
	for ev := next(t, c); ev.Event != protocol.EventInitialDataComplete; ev = next(t, c) {
		resumed++
		if ev.Event == protocol.EventSessionsUpdated {
			if err := m.Apply(ev); err != nil {
				t.Fatal(err)
			}
			for _, u := range ev.SessionUpdates {
				if u.Session.MediaType != "Voice" && u.Session.MediaType != "Chat" {
					t.Fatalf("resumed: an update of a %s session", u.Session.MediaType)
				}
			}
		}
	}
	if resumed == 0 {
		t.Fatal("nothing resumed")
	}
	check("after the resume")
}

func TestMediaTypesAreChecked(t *testing.T) {
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{}, nil)
	c := dialRaw(t, url)
	c.initialize(false)
	for i, mt := range []string{`[]`, `["Fax"]`, `["Voice","voice"]`, `"Voice"`} {
		req := fmt.Sprintf(`{"op":"Subscribe","id":%d,"ServiceGroupID":"acme-sales","MediaTypes":%s}`, 100+i, mt)
		if err := wsutil.WriteClientMessage(c.conn, ws.OpText, []byte(req)); err != nil {
			t.Fatal(err)
		}
		if r := c.must(); r.Fault == nil || r.Fault.Type != protocol.InvalidRequestFault {
			t.Errorf("MediaTypes %s: %+v, want InvalidRequestFault", mt, r)
		}
	}
	// still usable: a good filter is taken
	id := c.send(protocol.Request{Op: protocol.OpSubscribe, ServiceGroupID: "acme-sales", MediaTypes: []string{"SMS"}})
	if r := c.must(); r.ID == nil || *r.ID != id || r.Result == nil || !*r.Result.Succeeded {
		t.Fatalf("a good filter: %+v", r)
	}
}

// remove takes a session out of a group's queue, answered.
func (e *env) remove(group, callID string) {
	e.TB.Helper()
	e.Apply(group, queue.Change{Op: queue.OpRemove, CallID: callID, Cause: queue.CauseSessionAllocatedToAgent})
}
