package main

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/internal/embednats"
)

// TestDialWaitsForNATS starts the NATS server after the command began to
// connect: the command waits and goes on.
func TestDialWaitsForNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		nc, err := dialNATS(ctx, "nats://"+addr, "test", zerolog.Nop())
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
	if _, err := dialNATS(ctx, s.ClientURL(), "test", zerolog.Nop()); !errors.Is(err, errNoJetStream) {
		t.Fatalf("got %v", err)
	}
}
