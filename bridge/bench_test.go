package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// BenchmarkSubscribe10000 measures one Subscribe to a group of 10,000
// queued sessions, from the request to InitialDataComplete, on a warm view
// (the gateway already follows the group), over loopback WebSocket with the
// client decoding every message.
func BenchmarkSubscribe10000(b *testing.B) {
	url := benchGateway(b, 10_000)
	for _, f := range []protocol.Format{protocol.JSON, protocol.Msgpack} {
		b.Run([]string{"json", "msgpack"}[f], func(b *testing.B) {
			ctx := context.Background()
			c, err := client.Dial(ctx, url, client.Options{Format: f})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.Initialize(ctx, "", "", false); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				subscribeOnce(b, c)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/subscribe")
		})
	}
}

func subscribeOnce(b *testing.B, c *client.Client) {
	ctx := context.Background()
	if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: "bench"}); err != nil {
		b.Fatal(err)
	}
	n := 0
	for ev := range c.Events() {
		n += len(ev.SessionUpdates)
		if ev.Event == protocol.EventInitialDataComplete {
			break
		}
	}
	if n != 10_000 {
		b.Fatalf("%d sessions", n)
	}
	b.StopTimer()
	if err := c.Unsubscribe(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// benchGateway runs NATS, an adapter with one group of n sessions, and a
// gateway whose view of the group is loaded; it returns the WebSocket URL.
func benchGateway(b *testing.B, n int) string {
	ctx := context.Background()
	ns := natstest.Server(b)
	nc, js := natstest.Connect(b, ns)
	a, err := router.Open(ctx, js, natstest.Logger(b).Level(3), router.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close(ctx) })
	st := &router.State{Tenants: []subjects.Tenant{{TenantID: "t", Name: "T"}},
		Groups: []subjects.Group{{ServiceGroupID: "bench", TenantID: "t", Name: "Bench"}}, Queues: map[string][]queue.Session{}}
	for i := range n {
		st.Queues["bench"] = append(st.Queues["bench"], queue.Session{CallID: fmt.Sprintf("c%d", i), MediaType: queue.MediaVoice,
			TimeEnteredQueue: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), CustomerInformation: "+442079460123", DialedNumber: "+442079460000",
			IVRInformation: []queue.IVRInfo{{Label: "Language", Data: "English"}}})
	}
	if err := a.LinkUp(ctx, st); err != nil {
		b.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	srv, err := bridge.New(ctx, natstest.Logger(b).Level(3), bridge.Config{}, bridge.Deps{Conn: nc, JetStream: js, Seats: &countingSeats{max: 100}})
	if err != nil {
		b.Fatal(err)
	}
	base := newHTTPServer(b, srv)
	for !srv.RouterConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	url := "ws" + base[len("http"):] + protocol.Path
	c, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Initialize(ctx, "", "", false); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: "bench"}); err != nil { // warms the view
		b.Fatal(err)
	}
	return url
}
