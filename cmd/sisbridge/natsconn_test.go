package main

import (
	"context"
	"errors"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/internal/embednats"
)

// TestDialWaitsForNATS starts the NATS server after the command began to
// connect: the command waits and goes on.
func TestDialWaitsForNATS(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		nc, err := dialNATS(ctx, &natsFlags{url: "nats://" + addr, role: access.Gateway}, "test", zerolog.Nop())
		if err == nil {
			nc.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("dial ended before the server started: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s, err := embednats.Start(embednats.Config{Listen: addr, DataDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDialNamesAServerWithoutJetStream: a NATS server without JetStream is
// named as such, not as "no responders".
func TestDialNamesAServerWithoutJetStream(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := dialNATS(ctx, &natsFlags{url: s.ClientURL(), role: access.Gateway}, "test", zerolog.Nop()); !errors.Is(err, errNoJetStream) {
		t.Fatalf("got %v", err)
	}
}

// TestSeatLeaseMustMatchTheBucket: a --seat-lease other than the bucket's
// is refused at start, naming the flag and the value to give.
func TestSeatLeaseMustMatchTheBucket(t *testing.T) {
	s, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := dialNATS(ctx, &natsFlags{url: s.ClientURL(), role: access.Gateway}, "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := subjects.Ensure(ctx, js, subjects.Config{}); err != nil {
		t.Fatal(err)
	}
	gf := &gatewayFlags{seats: 10, leaseTTL: 10 * time.Second}
	if _, err := openSeats(ctx, js, gf, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), "--seat-lease 30s") {
		t.Fatalf("got %v", err)
	}
	gf.leaseTTL = 30 * time.Second
	pool, err := openSeats(ctx, js, gf, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close(ctx)
}
