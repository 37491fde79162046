package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/protocol"
)

// abuseResult is what the gateway's process went through while one client
// that never reads Subscribed and Unsubscribed a deep group again and
// again.
type abuseResult struct {
	Sessions int `json:"sessions"`
	Repeat   int `json:"repeat"`
	// Written is how many requests (after Initialize) the client wrote, in
	// WriteTime; WriteErr is the error that stopped it, if any.
	Written   int           `json:"written"`
	WriteTime time.Duration `json:"writeTimeNs"`
	WriteErr  string        `json:"writeErr,omitempty"`
	// Closed says the gateway ended the connection, ClosedAt when (from the
	// first Subscribe written); CloseCode is the close frame the client
	// found when it finally read (-1: none), Unread the bytes it read then.
	Closed    bool          `json:"closed"`
	ClosedAt  time.Duration `json:"closedAtNs"`
	CloseCode int           `json:"closeCode"`
	Unread    int64         `json:"unread"`
	// SlowCloses counts the gateway's 4009 closes (its metric);
	// MaxSubscriptions is the most subscriptions the gateway held.
	SlowCloses       float64 `json:"slowCloses"`
	MaxSubscriptions int     `json:"maxSubscriptions"`
	// Memory of this process as in herdResult.
	Before   memSample `json:"before"`
	Peak     memSample `json:"peak"`
	Samples  int       `json:"samples"`
	ResetHWM bool      `json:"resetHWM"`
	After    memSample `json:"after"`
}

// rawClient is a WebSocket connection that writes requests and never
// reads until told to: the gateway sees a client whose socket is full.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
	id   int64
}

// dialRaw opens a JSON WebSocket connection to url.
func dialRaw(ctx context.Context, url string) (*rawClient, error) {
	conn, br, _, err := ws.Dialer{Protocols: []string{protocol.SubprotocolJSON}}.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return &rawClient{conn: conn, br: br}, nil
}

// send writes one request frame.
func (c *rawClient) send(req protocol.Request) error {
	c.id++
	id := c.id
	req.ID = &id
	data, err := json.Marshal(&req)
	if err != nil {
		return err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return wsutil.WriteClientMessage(c.conn, ws.OpText, data)
}

// closeCode reads what the socket still holds, for up to d, until a close
// frame (its code) or the end (-1); it returns the bytes read as well.
func (c *rawClient) closeCode(d time.Duration) (int, int64) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var n int64
	for {
		hdr, err := ws.ReadHeader(c.br)
		if err != nil {
			return -1, n
		}
		n += 2 + hdr.Length
		if hdr.OpCode != ws.OpClose {
			if _, err := io.CopyN(io.Discard, c.br, hdr.Length); err != nil {
				return -1, n
			}
			continue
		}
		payload := make([]byte, hdr.Length)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return -1, n
		}
		code, _ := ws.ParseCloseFrameData(payload)
		return int(code), n
	}
}

// runAbuse starts the stack with one group of o.sessions sessions, has one
// client that never reads write Initialize and then o.repeat Subscribe and
// Unsubscribe pairs, and watches this process's memory and the connection
// for o.hold after the last request.
func runAbuse(ctx context.Context, o herdOpts, stderr io.Writer) (abuseResult, error) {
	r := abuseResult{Sessions: o.sessions, Repeat: o.repeat, CloseCode: -1}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	log, err := newLogger(o.logLevel)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(stderr, "[abuse] pre-filling one group with %d sessions\n", o.sessions)
	st, err := startStack(ctx, log, 1, o.sessions)
	if err != nil {
		return r, err
	}
	defer st.Close()
	gw, err := st.startGateway(ctx, bridge.Config{}, 10)
	if err != nil {
		return r, err
	}
	defer gw.close()
	c, err := dialRaw(ctx, gw.url)
	if err != nil {
		return r, err
	}
	defer c.conn.Close()
	no := false
	if err := c.send(protocol.Request{Op: protocol.OpInitialize, SendQueuePositionUpdates: &no}); err != nil {
		return r, fmt.Errorf("initialize: %w", err)
	}
	if err := waitUntil(ctx, 30*time.Second, func() bool { return gw.srv.Stats().Sessions == 1 }); err != nil {
		return r, fmt.Errorf("the gateway never initialized the session: %w", err)
	}
	err = abuse(ctx, &r, c, o, gw, st.groups[0], stderr)
	return r, err
}

// abuse writes the requests and watches, as runAbuse says.
func abuse(ctx context.Context, r *abuseResult, c *rawClient, o herdOpts, gw *gateway, group string, stderr io.Writer) error {
	slow0 := gatewayValue(gw.reg, "sis_gateway_slow_client_closes_total")
	r.Before = settledMem()
	r.ResetHWM = resetPeakRSS()
	watch := watchMem(o.sample)
	start := time.Now()
	for i := range 2 * o.repeat {
		op := protocol.OpSubscribe
		if i%2 == 1 {
			op = protocol.OpUnsubscribe
		}
		if err := c.send(protocol.Request{Op: op, ServiceGroupID: group}); err != nil {
			r.WriteErr = err.Error()
			break
		}
		r.Written++
	}
	r.WriteTime = time.Since(start)
	fmt.Fprintf(stderr, "[abuse] %d requests written in %s; the client does not read\n", r.Written, r.WriteTime.Round(time.Microsecond))
	err := watchAbuse(ctx, r, gw, watch, start, o.hold, stderr)
	r.Peak, r.Samples = watch.Stop()
	if err != nil {
		return err
	}
	r.After = settledMem()
	r.SlowCloses = gatewayValue(gw.reg, "sis_gateway_slow_client_closes_total") - slow0
	if r.Closed {
		r.CloseCode, r.Unread = c.closeCode(5 * time.Second)
	}
	return nil
}

// watchAbuse polls the gateway every 50 ms until it has closed the
// connection (and 2 s more, for its memory to show), or hold has passed
// since the last request; it prints a line a second.
func watchAbuse(ctx context.Context, r *abuseResult, gw *gateway, watch *memWatch, start time.Time, hold time.Duration, w io.Writer) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	end := time.Now().Add(hold)
	lastLine := time.Now()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		s := gw.srv.Stats()
		r.MaxSubscriptions = max(r.MaxSubscriptions, s.Subscriptions)
		if !r.Closed && s.Connections == 0 {
			r.Closed, r.ClosedAt = true, time.Since(start)
			fmt.Fprintf(w, "[abuse] the gateway closed the connection %s after the first Subscribe\n", ms(r.ClosedAt))
			end = time.Now().Add(2 * time.Second)
		}
		if time.Since(lastLine) >= time.Second {
			lastLine = time.Now()
			peak, _ := watch.Peak()
			cur := sampleMem()
			fmt.Fprintf(w, "[abuse] %3.0fs  connection open %v  subscriptions %d  RSS %s MiB (peak %s)  heap %s MiB (peak %s)  kernel TCP %s MiB\n",
				time.Since(start).Seconds(), !r.Closed, s.Subscriptions, mibs(cur.RSS), mibs(peak.RSS), mibs(cur.Heap), mibs(peak.Heap), mibs(cur.KernelTCP))
		}
	}
	return nil
}

// printAbuse prints the abuse run's table.
func printAbuse(w io.Writer, r abuseResult) {
	fmt.Fprintf(w, "\nabuse: one client that never reads its socket writes Initialize, then %d Subscribe/Unsubscribe pairs for one group of %d sessions\n",
		r.Repeat, r.Sessions)
	fmt.Fprintf(w, "requests written: %d in %s", r.Written, r.WriteTime.Round(time.Microsecond))
	if r.WriteErr != "" {
		fmt.Fprintf(w, " (then: %s)", r.WriteErr)
	}
	fmt.Fprintln(w)
	switch {
	case !r.Closed:
		fmt.Fprintf(w, "closed by the gateway: no (still open at the end of the watch)\n")
	case r.CloseCode < 0:
		fmt.Fprintf(w, "closed by the gateway: yes, %s after the first Subscribe; no close frame reached the client (it read %s MiB left in the socket)\n",
			ms(r.ClosedAt), mibs(uint64(r.Unread)))
	default:
		fmt.Fprintf(w, "closed by the gateway: yes, %s after the first Subscribe, close code %d (the client read %s MiB left in the socket)\n",
			ms(r.ClosedAt), r.CloseCode, mibs(uint64(r.Unread)))
	}
	fmt.Fprintf(w, "gateway's 4009 closes: %.0f; most subscriptions the gateway held at once: %d\n", r.SlowCloses, r.MaxSubscriptions)
	printMemTable(w, r.Before, r.Peak, r.After, r.Samples, r.ResetHWM)
	if !r.Closed {
		fmt.Fprintln(w, "after: the connection still open, with whatever the gateway holds for it.")
	}
}
