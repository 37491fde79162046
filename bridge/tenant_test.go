package bridge_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// allGroups is a tenant-wide Subscribe or Unsubscribe.
func allGroups(tenant string) protocol.Request {
	yes := true
	return protocol.Request{TenantID: tenant, AllGroups: &yes}
}

// until applies c's events to m until one satisfies stop, which it returns.
func until(t *testing.T, c *client.Client, m *client.Mirror, stop func(protocol.Message) bool) protocol.Message {
	t.Helper()
	for {
		ev := next(t, c)
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
		if stop(ev) {
			return ev
		}
	}
}

func isComplete(group string) func(protocol.Message) bool {
	return func(m protocol.Message) bool {
		return m.Event == protocol.EventInitialDataComplete && m.ServiceGroupID == group
	}
}

// TestTenantWideSubscribe: AllGroups subscribes to every group of the
// tenant (one it followed already is not sent again), to a group added
// later (initial data, then live), and a removed group ends with
// ServiceGroupRemoved, for per-group subscribers too; Unsubscribe of the
// tenant ends the subscriptions it made and no other.
func TestTenantWideSubscribe(t *testing.T) {
	e := newEnv(t)
	e.enqueue("acme-sales", 2)
	e.enqueue("acme-support", 3)
	_, url := e.gateway(bridge.Config{}, nil)
	c, m := subscribedTo(t, url, "acme-sales", true)
	other, om := subscribedTo(t, url, "acme-support", true)

	res, err := c.Subscribe(ctxT(t), allGroups("acme"))
	if err != nil || res.Succeeded == nil || !*res.Succeeded || !reflect.DeepEqual(res.ServiceGroupIDs, []string{"acme-sales", "acme-support"}) {
		t.Fatalf("tenant-wide Subscribe: %+v %v", res, err)
	}
	until(t, c, m, isComplete("acme-support"))
	if got := callIDs(m.Groups["acme-support"]); !reflect.DeepEqual(got, queueIDs(e.Queues["acme-support"])) {
		t.Fatalf("acme-support's initial data %v", got)
	}
	again, err := c.Subscribe(ctxT(t), allGroups("acme"))
	if err != nil || *again.Succeeded || len(again.ServiceGroupIDs) != 2 {
		t.Fatalf("the same tenant again: %+v %v", again, err)
	}

	// a group added to the tenant: subscribed by itself
	if err := e.Adapter.PutGroup(e.Ctx, subjects.Group{ServiceGroupID: "acme-new", TenantID: "acme", Name: "New"}); err != nil {
		t.Fatal(err)
	}
	e.Queues["acme-new"] = queue.New("acme-new")
	until(t, c, m, isComplete("acme-new"))
	e.enqueue("acme-new", 1)
	until(t, c, m, func(ev protocol.Message) bool {
		return ev.ServiceGroupID == "acme-new" && ev.Event == protocol.EventSessionsUpdated
	})
	if got := callIDs(m.Groups["acme-new"]); !reflect.DeepEqual(got, queueIDs(e.Queues["acme-new"])) {
		t.Fatalf("acme-new %v", got)
	}

	// a group removed: ServiceGroupRemoved, for the tenant-wide and the per-group subscriber
	if err := e.Adapter.RemoveGroup(e.Ctx, "acme-support"); err != nil {
		t.Fatal(err)
	}
	for _, cm := range []struct {
		c *client.Client
		m *client.Mirror
	}{{c, m}, {other, om}} {
		until(t, cm.c, cm.m, func(ev protocol.Message) bool {
			return ev.Event == protocol.EventServiceGroupRemoved && ev.ServiceGroupID == "acme-support"
		})
	}
	if err := c.Unsubscribe(ctxT(t), "acme-support"); faultType(err) != protocol.InvalidServiceGroupFault {
		t.Fatalf("Unsubscribe of the removed group: %v, want InvalidServiceGroupFault (not subscribed)", err)
	}

	// the tenant unsubscribed: acme-new (its own) ends, acme-sales (subscribed by itself) stays
	u := allGroups("acme")
	u.Op = protocol.OpUnsubscribe
	if _, err := c.Do(ctxT(t), u); err != nil {
		t.Fatal(err)
	}
	drain(t, c, m)
	e.enqueue("acme-new", 1)
	e.enqueue("acme-sales", 1)
	ev := until(t, c, m, func(ev protocol.Message) bool { return ev.Event == protocol.EventSessionsUpdated })
	if ev.ServiceGroupID != "acme-sales" {
		t.Fatalf("after the tenant's Unsubscribe: %+v", ev)
	}
	if _, err := c.Do(ctxT(t), u); faultType(err) != protocol.InvalidServiceGroupFault {
		t.Fatalf("a second tenant Unsubscribe: %v", err)
	}
}

func TestTenantWideSubscribeIsChecked(t *testing.T) {
	sendsMalformed(t) // on purpose
	e := newEnv(t)
	_, url := e.gateway(bridge.Config{Limits: bridge.Limits{Subscriptions: 2}}, nil)
	c := initialized(t, url, false)
	from := uint64(3)
	cases := []struct {
		name string
		req  protocol.Request
		want protocol.FaultType
	}{
		{"unknown tenant", allGroups("nobody"), protocol.InvalidServiceGroupFault},
		{"malformed tenant", allGroups("no body"), protocol.InvalidServiceGroupFault},
		{"with a group", func() protocol.Request { r := allGroups("acme"); r.ServiceGroupID = "acme-sales"; return r }(), protocol.InvalidRequestFault},
		{"with a resume", func() protocol.Request { r := allGroups("acme"); r.ResumeFromSeq = &from; return r }(), protocol.InvalidRequestFault},
	}
	for _, tc := range cases {
		if _, err := c.Subscribe(ctxT(t), tc.req); faultType(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	// the bound: one group followed, the tenant's two would make three
	if _, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "globex-chat"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctxT(t), allGroups("acme")); faultType(err) != protocol.InvalidRequestFault {
		t.Fatalf("past the bound: %v, want InvalidRequestFault", err)
	}
	if res, err := c.Subscribe(ctxT(t), protocol.Request{ServiceGroupID: "acme-sales"}); err != nil || !*res.Succeeded {
		t.Fatalf("the refused tenant-wide Subscribe left something behind: %+v %v", res, err)
	}
}

// TestTenantWideSubscribeRacesAdditions: groups added to a tenant in a
// burst, while a tenant-wide Subscribe of it is being answered: every
// group is subscribed exactly once, with one InitialDataComplete each.
func TestTenantWideSubscribeRacesAdditions(t *testing.T) {
	e := newEnv(t)
	srv, url := e.gateway(bridge.Config{}, nil)
	c := initialized(t, url, false)
	const added = 30
	done := make(chan error, 1)
	go func() {
		var err error
		for i := range added {
			err = errors.Join(err, e.Adapter.PutGroup(e.Ctx, subjects.Group{ServiceGroupID: fmt.Sprintf("acme-new-%d", i), TenantID: "acme", Name: fmt.Sprintf("New %d", i)}))
		}
		done <- err
	}()
	if _, err := c.Subscribe(ctxT(t), allGroups("acme")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	complete := map[string]int{}
	for len(complete) < 2+added {
		if ev := next(t, c); ev.Event == protocol.EventInitialDataComplete {
			complete[ev.ServiceGroupID]++
		}
	}
	waitFor(t, "every group subscribed once", func() bool { return srv.Stats().Subscriptions == 2+added })
	for g, n := range complete {
		if n != 1 {
			t.Errorf("%s: %d InitialDataComplete", g, n)
		}
	}
}
