package access_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/seats"
	"github.com/sisbridge/sisbridge/subjects"
)

// bus is a server whose only clients are the roles' users, with an
// adapter that has published two tenants' queues.
type bus struct {
	url   string
	creds access.Credentials
}

var roles = []access.Role{access.Adapter, access.Gateway, access.Recorder, access.Admin, access.TenantReader("acme"), access.TenantReader("globex")}

func newBus(t *testing.T) *bus {
	t.Helper()
	creds, err := access.Generate(roles...)
	if err != nil {
		t.Fatal(err)
	}
	users, err := creds.ServerUsers(false)
	if err != nil {
		t.Fatal(err)
	}
	s := natstest.ServerWith(t, embednats.Config{Users: users})
	return &bus{url: s.ClientURL(), creds: creds}
}

// conn is a role's connection and the permission violations it met.
type conn struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	mu         sync.Mutex
	violations []string
}

func (c *conn) denied() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

func (b *bus) connect(t *testing.T, r access.Role) *conn {
	t.Helper()
	c := &conn{}
	s := b.creds[r]
	nc, err := nats.Connect(b.url, nats.UserInfo(s.User, s.Password), nats.CustomInboxPrefix(r.Inbox()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.violations = append(c.violations, err.Error())
			c.mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var directory = &router.State{
	Tenants: []subjects.Tenant{{TenantID: "acme", Name: "Acme"}, {TenantID: "globex", Name: "Globex"}},
	Groups:  []subjects.Group{{ServiceGroupID: "acme-sales", TenantID: "acme", Name: "Sales"}, {ServiceGroupID: "globex-chat", TenantID: "globex", Name: "Chat"}},
	Queues: map[string][]queue.Session{
		"acme-sales":  {{CallID: "a1", MediaType: queue.MediaVoice, TimeEnteredQueue: time.Now().Add(-time.Minute), CustomerInformation: "+442079460001"}},
		"globex-chat": {{CallID: "g1", MediaType: queue.MediaChat, TimeEnteredQueue: time.Now().Add(-time.Minute), CustomerInformation: "jane@example.org"}},
	},
}

// adapter runs an adapter as its role through its whole job: bus created,
// router state published, changes, a snapshot on close.
func (b *bus) adapter(t *testing.T) *router.Adapter {
	t.Helper()
	c := b.connect(t, access.Adapter)
	ctx := ctxT(t)
	a, err := router.Open(ctx, c.js, natstest.Logger(t), router.Config{Name: "test", SnapshotInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	if err := a.LinkUp(ctx, directory); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, "acme-sales", queue.Change{Op: queue.OpEnqueue, CallID: "a2", Session: queue.Session{MediaType: queue.MediaEmail}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v := c.denied(); len(v) > 0 {
		t.Fatalf("the adapter was refused: %v", v)
	}
	return a
}

// TestEachRoleDoesItsJob: the adapter and a gateway, each with only its
// role's permissions, serve a client its queues.
func TestEachRoleDoesItsJob(t *testing.T) {
	b := newBus(t)
	b.adapter(t)
	g := b.connect(t, access.Gateway)
	ctx := ctxT(t)
	kv, err := g.js.KeyValue(ctx, subjects.BucketSeats)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := seats.New(kv, natstest.Logger(t), seats.Config{Seats: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close(context.Background()) })
	srv, err := bridge.New(ctx, natstest.Logger(t), bridge.Config{}, bridge.Deps{Conn: g.nc, JetStream: g.js, Seats: seatPool{pool}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	cl, err := client.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+protocol.Path, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	// until the gateway has seen the router status, then its directory
	retry(t, func() error { return cl.Initialize(ctx, "", "", false) })
	retry(t, func() error {
		_, err := cl.Subscribe(ctx, protocol.Request{ServiceGroupID: "acme-sales"})
		return err
	})
	m := client.NewMirror(false)
	for {
		ev := <-cl.Events()
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Event == protocol.EventInitialDataComplete {
			break
		}
	}
	if n := len(m.Groups["acme-sales"]); n != 2 {
		t.Fatalf("the client holds %d sessions of acme-sales, want 2", n)
	}
	if v := g.denied(); len(v) > 0 {
		t.Fatalf("the gateway was refused: %v", v)
	}
}

// retry calls fn every 50 ms until it succeeds, failing the test after 20 s.
func retry(t *testing.T, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for err := fn(); err != nil; err = fn() {
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type seatPool struct{ p *seats.Pool }

func (s seatPool) Acquire(ctx context.Context, id string) (func(context.Context) error, error) {
	seat, err := s.p.Acquire(ctx, id)
	if err != nil {
		return nil, err
	}
	return seat.Release, nil
}

// TestTenantReaderReadsItsTenantOnly: a tenant's reader reads its tenant's
// events through its consumer, and nothing of another tenant.
func TestTenantReaderReadsItsTenantOnly(t *testing.T) {
	b := newBus(t)
	b.adapter(t)
	r := b.connect(t, access.TenantReader("acme"))
	ctx := ctxT(t)
	stream, err := r.js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Name: access.ReaderConsumer("acme"), FilterSubject: subjects.TenantEvents("acme")})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		if !strings.HasPrefix(msg.Subject(), "sis.v1.evt.acme.") {
			t.Fatalf("the acme reader got %s", msg.Subject())
		}
		n++
		_ = msg.Ack()
	}
	if n == 0 {
		t.Fatal("the acme reader read nothing of acme")
	}
	refused, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = stream.CreateOrUpdateConsumer(refused, jetstream.ConsumerConfig{Name: access.ReaderConsumer("acme"), FilterSubject: subjects.TenantEvents("globex")})
	if err == nil {
		t.Fatal("the acme reader made a consumer of globex's events")
	}
	// The last message of a subject, by direct get (the subject in the API
	// subject: what a permission can name).
	last := func(subject string) (*nats.Msg, error) {
		return r.nc.Request("$JS.API.DIRECT.GET."+subjects.StreamEvents+"."+subject, nil, 2*time.Second)
	}
	if _, err := last(subjects.Events("globex", "globex-chat")); err == nil {
		t.Fatal("the acme reader read globex's last event")
	}
	msg, err := last(subjects.Events("acme", "acme-sales"))
	if err != nil || msg.Header.Get("Nats-Subject") != subjects.Events("acme", "acme-sales") {
		t.Fatalf("the acme reader cannot read acme's last event: %v", err)
	}
}

// TestRolesAreRefusedTheRest: what a role may not do is refused by the
// server, and nothing of it is stored.
func TestRolesAreRefusedTheRest(t *testing.T) {
	b := newBus(t)
	b.adapter(t)
	ctx := ctxT(t)
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	forged := []byte("forged")
	for _, tc := range []struct {
		name string
		role access.Role
		try  func(c *conn) error
	}{
		{"gateway publishes an event", access.Gateway, func(c *conn) error {
			_, err := c.js.Publish(short(), subjects.Events("acme", "acme-sales"), forged)
			return err
		}},
		{"gateway rewrites the router status", access.Gateway, func(c *conn) error {
			kv, err := c.js.KeyValue(ctx, subjects.BucketRouter)
			if err != nil {
				return err
			}
			_, err = kv.Put(short(), subjects.RouterStatusKey, forged)
			return err
		}},
		{"gateway deletes the events stream", access.Gateway, func(c *conn) error { return c.js.DeleteStream(short(), subjects.StreamEvents) }},
		{"reader writes seats", access.TenantReader("acme"), func(c *conn) error {
			_, err := c.js.Publish(short(), "$KV."+subjects.BucketSeats+".seat-1", forged)
			return err
		}},
		{"reader follows another tenant live", access.TenantReader("acme"), func(c *conn) error { return subscribe(c, "sis.v1.live.globex.>") }},
		{"reader snoops on every reply", access.TenantReader("acme"), func(c *conn) error { return subscribe(c, "_INBOX.>") }},
		{"recorder publishes an event", access.Recorder, func(c *conn) error {
			_, err := c.js.Publish(short(), subjects.Events("acme", "acme-sales"), forged)
			return err
		}},
		{"admin reads events", access.Admin, func(c *conn) error {
			_, err := c.js.Stream(short(), subjects.StreamEvents)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := b.connect(t, tc.role)
			err := tc.try(c)
			if err == nil {
				t.Fatal("allowed")
			}
			t.Logf("refused: %v; server: %v", err, c.denied())
		})
	}
	st, _ := b.connect(t, access.Recorder).js.Stream(ctx, subjects.StreamEvents)
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetMsg(ctx, info.State.LastSeq)
	if err != nil || string(last.Data) == "forged" {
		t.Fatalf("the stream ends with %v %v", last, err)
	}
}

// subscribe subscribes to subject and reports the server's refusal.
func subscribe(c *conn, subject string) error {
	if _, err := c.nc.SubscribeSync(subject); err != nil {
		return err
	}
	if err := c.nc.Flush(); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, v := range c.denied() {
			if strings.Contains(v, subject) {
				return errors.New(v)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// TestNoCredentialsNoEntry: a connection without credentials, or with a
// wrong password, is refused.
func TestNoCredentialsNoEntry(t *testing.T) {
	b := newBus(t)
	if nc, err := nats.Connect(b.url); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	if nc, err := nats.Connect(b.url, nats.UserInfo(string(access.Gateway), "guess")); err == nil {
		nc.Close()
		t.Fatal("connected with a wrong password")
	}
}
