// Command natsconsumer is an example of a downstream service that reads
// SIS Bridge's bus directly, without a gateway: it materialises one
// service group's queue straight from JetStream (the group's snapshot,
// then the events after it), follows the group through a durable consumer
// of its own, and prints the queue after every change. Stopped and started
// again, it goes on where its consumer stopped: nothing missed, nothing
// applied twice. See docs/bus.md.
//
//	go run ./examples/natsconsumer --nats nats://127.0.0.1:4222 --tenant acme --group acme-sales
//
// With `sisbridge run`, give it a role that may read snapshots and make
// consumers: --nats-credentials sisbridge-data/nats-credentials.json
// --nats-user gateway.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "natsconsumer:", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	url, tenant, group, durable string
	credentials, user           string
	changes                     int // stop after this many changes applied (0: run until stopped)
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("natsconsumer", flag.ContinueOnError)
	fs.StringVar(&o.url, "nats", nats.DefaultURL, "NATS server URL")
	fs.StringVar(&o.tenant, "tenant", "", "TenantID of the group (required)")
	fs.StringVar(&o.group, "group", "", "ServiceGroupID to follow (required)")
	fs.StringVar(&o.durable, "durable", "", "name of the durable consumer (default natsconsumer-<group>)")
	fs.StringVar(&o.credentials, "nats-credentials", "", "credentials file of sisbridge (nats-credentials.json or a role's file)")
	fs.StringVar(&o.user, "nats-user", "", "role to connect as, from --nats-credentials")
	fs.IntVar(&o.changes, "changes", 0, "stop after applying this many changes (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var problems []error
	for name, v := range map[string]string{"tenant": o.tenant, "group": o.group} {
		if !subjects.ValidID(v) {
			problems = append(problems, fmt.Errorf("--%s %q: want 1 to 64 characters from [A-Za-z0-9_-]", name, v))
		}
	}
	if o.durable == "" {
		o.durable = "natsconsumer-" + o.group
	}
	return o, errors.Join(problems...)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	nc, err := dial(o)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	f, err := newFollower(ctx, js, o)
	if err != nil {
		return err
	}
	return f.follow(ctx, out, o.changes)
}

// dial connects, with the role's credentials when given.
func dial(o options) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("natsconsumer")}
	if o.credentials != "" {
		creds, err := access.Load(o.credentials)
		if err != nil {
			return nil, err
		}
		role := access.Role(o.user)
		if role == "" && len(creds) == 1 {
			for r := range creds {
				role = r
			}
		}
		c, ok := creds[role]
		if !ok {
			return nil, fmt.Errorf("--nats-credentials %s has no role %q (give --nats-user)", o.credentials, role)
		}
		opts = append(opts, access.Options(role, c)...)
	}
	nc, err := nats.Connect(o.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", access.Redact(o.url), err)
	}
	return nc, nil
}

// follower keeps one group's queue.
type follower struct {
	hist     *subjects.History
	consumer jetstream.Consumer
	tenant   string
	group    string
	st       subjects.GroupState
}

// newFollower reads the group's state (its snapshot, then the events
// after it) and makes or opens its durable consumer.
func newFollower(ctx context.Context, js jetstream.JetStream, o options) (*follower, error) {
	hist, err := subjects.OpenHistory(ctx, js)
	if err != nil {
		return nil, err
	}
	f := &follower{hist: hist, tenant: o.tenant, group: o.group}
	if err := f.load(ctx); err != nil {
		return nil, err
	}
	// A consumer that exists goes on after its last acknowledged message
	// (what came since is in the state already, and skipped); a new one
	// starts after the state just read.
	f.consumer, err = js.Consumer(ctx, subjects.StreamEvents, o.durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		f.consumer, err = js.CreateConsumer(ctx, subjects.StreamEvents, jetstream.ConsumerConfig{
			Durable:       o.durable,
			FilterSubject: subjects.Events(o.tenant, o.group),
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   f.st.StreamSeq + 1,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", o.durable, err)
	}
	return f, nil
}

// load reads the group's state as the bus has it now.
func (f *follower) load(ctx context.Context) error {
	st, err := f.hist.Load(ctx, f.tenant, f.group)
	if err != nil {
		return fmt.Errorf("load %s: %w", f.group, err)
	}
	if st.Queue == nil {
		st.Queue = queue.New(f.group)
	}
	f.st = st
	return nil
}

// follow applies the group's events as they come and prints the queue
// after each message; it returns when ctx ends or after max changes.
func (f *follower) follow(ctx context.Context, out io.Writer, max int) error {
	f.print(out, "loaded")
	applied := 0
	for ctx.Err() == nil && (max == 0 || applied < max) {
		batch, err := f.consumer.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		for msg := range batch.Messages() {
			n, err := f.apply(ctx, msg)
			if err != nil {
				return err
			}
			applied += n
			if n > 0 {
				f.print(out, fmt.Sprintf("%d change(s)", n))
			}
			if err := msg.Ack(); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	return nil
}

// apply applies a message's events: those already in the state are
// skipped, a gap (events lost to retention, say) reloads the state.
func (f *follower) apply(ctx context.Context, msg jetstream.Msg) (int, error) {
	events, err := subjects.DecodeEvents(msg.Data())
	if err != nil {
		return 0, nil // no event: nothing of the queue
	}
	meta, err := msg.Metadata()
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range events {
		before := f.st.Seq
		switch err := f.st.Apply(&events[i], meta.Sequence.Stream); {
		case errors.Is(err, subjects.ErrGap):
			return n, f.load(ctx)
		case err != nil:
			return n, fmt.Errorf("apply event %d of %s: %w", events[i].Seq, f.group, err)
		case f.st.Seq > before: // not one the state had already
			n++
		}
	}
	return n, nil
}

// print writes the queue: a header line, then a session a line.
func (f *follower) print(out io.Writer, why string) {
	fmt.Fprintf(out, "%s at Seq %d (%s): %d waiting\n", f.group, f.st.Seq, why, f.st.Queue.Len())
	for _, s := range f.st.Queue.Sessions() {
		fmt.Fprintf(out, "  %3d  %-24s %-11s %s\n", s.QueuePosition, s.CallID, s.MediaType, s.TimeEnteredQueue.Format(time.RFC3339))
	}
}
