package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/nats-io/nats.go"
)

// cfServer is the third system of fanout and idle: a node of centrifuge
// (the engine of Centrifugo) in this process, with a WebSocket endpoint on
// loopback, relaying every group's NATS events, byte for byte, to a
// channel named after the group. Its clients speak centrifuge's protobuf
// protocol (cffleet.go).
type cfServer struct {
	node *centrifuge.Node
	http *http.Server
	ln   net.Listener
	subs []*nats.Subscription
	url  string
	done chan struct{}
	once sync.Once
}

// cfPath is the WebSocket endpoint's path, as in Centrifugo.
const cfPath = "/connection/websocket"

// startCentrifuge starts the node and its endpoint, and relays the events
// of groups (of tenant) from nc. writeDelay is the batching delay of every
// connection (centrifuge's WriteDelay: messages collected that long go out
// in one frame; 0 writes each at once).
func startCentrifuge(nc *nats.Conn, subject func(tenant, group string) string, tenant string, groups []string, writeDelay time.Duration) (s *cfServer, err error) {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelError})
	if err != nil {
		return nil, fmt.Errorf("centrifuge node: %w", err)
	}
	s = &cfServer{node: node, done: make(chan struct{})}
	defer closeOnError(s.close, &err)
	node.OnConnecting(cfConnecting(writeDelay))
	node.OnConnect(cfAllowSubscribe)
	if err := node.Run(); err != nil {
		return nil, fmt.Errorf("run the centrifuge node: %w", err)
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, s.relay(nc, subject, tenant, groups)
}

// cfConnecting accepts every connection as one load user, with the
// settings centrifuge documents for throughput: replies written at once,
// pushes batched for writeDelay with no limit on messages per frame.
func cfConnecting(writeDelay time.Duration) centrifuge.ConnectingHandler {
	return func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{
			Credentials:        &centrifuge.Credentials{UserID: "load"},
			WriteDelay:         max(writeDelay, 0),
			MaxMessagesInFrame: -1,
			ReplyWithoutQueue:  true,
		}, nil
	}
}

// cfAllowSubscribe lets a client subscribe to any channel.
func cfAllowSubscribe(c *centrifuge.Client) {
	c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
		cb(centrifuge.SubscribeReply{}, nil)
	})
}

// listen serves the WebSocket endpoint on a free loopback port, with a
// pool of write buffers (centrifuge's setting for many connections).
func (s *cfServer) listen() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("centrifuge listener: %w", err)
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.Handle(cfPath, centrifuge.NewWebsocketHandler(s.node, centrifuge.WebsocketConfig{UseWriteBufferPool: true}))
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.url = "ws://" + ln.Addr().String() + cfPath + "?cf_protocol=protobuf"
	go func() {
		defer close(s.done)
		_ = s.http.Serve(ln)
	}()
	return nil
}

// relay subscribes to each group's events and publishes every message to
// the group's channel. One subscription a group, as the gateway and the
// NATS clients have, so groups are relayed in parallel.
func (s *cfServer) relay(nc *nats.Conn, subject func(tenant, group string) string, tenant string, groups []string) error {
	for _, g := range groups {
		sub, err := nc.Subscribe(subject(tenant, g), func(m *nats.Msg) {
			_, _ = s.node.Publish(g, m.Data)
		})
		if err != nil {
			return fmt.Errorf("relay %s to centrifuge: %w", g, err)
		}
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return fmt.Errorf("relay %s: %w", g, err)
		}
		s.subs = append(s.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("relay subscriptions: %w", err)
	}
	return nil
}

// clients returns how many connections the node holds.
func (s *cfServer) clients() int { return s.node.Hub().NumClients() }

// subscribers returns how many connections subscribe to channel.
func (s *cfServer) subscribers(channel string) int { return s.node.Hub().NumSubscribers(channel) }

// close stops the relay, the endpoint and the node; safe twice.
func (s *cfServer) close() {
	s.once.Do(func() {
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.node.Shutdown(ctx) // disconnects every client
		if s.http != nil {
			_ = s.http.Shutdown(ctx)
			<-s.done
		}
	})
}
