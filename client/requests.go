package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sisbridge/sisbridge/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// ErrClosed: the connection ended before the reply came.
var ErrClosed = errors.New("connection closed")

// Do sends a request (its ID is set here) and waits for the reply. A fault
// reply returns a *protocol.Fault error. Every event the gateway sent before
// the reply is already in Events when Do returns: after an Unsubscribe, the
// group's last events are the ones buffered then.
func (c *Client) Do(ctx context.Context, req protocol.Request) (*protocol.Result, error) {
	type reply struct {
		m  protocol.Message
		ok bool
	}
	ch := make(chan reply, 1)
	id, err := c.send(req, func(m protocol.Message, ok bool) { ch <- reply{m, ok} })
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if !r.ok {
			return nil, fmt.Errorf("%s: %w", req.Op, ErrClosed)
		}
		if r.m.Fault != nil {
			return nil, r.m.Fault
		}
		return r.m.Result, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", req.Op, ctx.Err())
	}
}

// replyFunc takes a request's reply (ok false: the connection ended first).
type replyFunc func(m protocol.Message, ok bool)

// Send sends a request (its ID is set here) without waiting: onReply gets
// its reply (a fault in m.Fault) on the connection's reader goroutine, in
// order with the events: after every event sent before the reply, before
// any sent after it. ok is false when the connection ended first. onReply
// must return quickly and must not wait for another reply.
func (c *Client) Send(req protocol.Request, onReply func(m protocol.Message, ok bool)) error {
	_, err := c.send(req, onReply)
	return err
}

func (c *Client) send(req protocol.Request, onReply replyFunc) (int64, error) {
	id := c.nextID.Add(1)
	req.ID = &id
	data, err := c.encode(&req)
	if err != nil {
		return id, err
	}
	c.mu.Lock()
	c.pending[id] = onReply
	c.mu.Unlock()
	if c.onWire != nil {
		c.onWire(true, data)
	}
	if err := c.SendRaw(data); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return id, fmt.Errorf("send %s: %w", req.Op, err)
	}
	select {
	case <-c.done: // the reader ended before the request was listed: no reply comes
		c.mu.Lock()
		fn := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if fn != nil {
			fn(protocol.Message{}, false)
		}
	default:
	}
	return id, nil
}

func (c *Client) encode(req *protocol.Request) ([]byte, error) {
	if c.format == protocol.Msgpack {
		return msgpack.Marshal(req)
	}
	return json.Marshal(req)
}

// Initialize initializes the session.
func (c *Client) Initialize(ctx context.Context, logonID, password string, positions bool) error {
	_, err := c.Do(ctx, protocol.Request{Op: protocol.OpInitialize, LogonID: logonID, Password: password, SendQueuePositionUpdates: &positions})
	return err
}

// Subscribe subscribes by ServiceGroupID (or TenantID and ServiceGroupName
// when id is empty); resume, when not nil, asks to resume after that Seq.
func (c *Client) Subscribe(ctx context.Context, req protocol.Request) (*protocol.Result, error) {
	req.Op = protocol.OpSubscribe
	return c.Do(ctx, req)
}

// Unsubscribe ends a subscription.
func (c *Client) Unsubscribe(ctx context.Context, group string) error {
	_, err := c.Do(ctx, protocol.Request{Op: protocol.OpUnsubscribe, ServiceGroupID: group})
	return err
}

// Heartbeat answers a KeepAlive.
func (c *Client) Heartbeat(ctx context.Context) error {
	_, err := c.Do(ctx, protocol.Request{Op: protocol.OpHeartbeat})
	return err
}
