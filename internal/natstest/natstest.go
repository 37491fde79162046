// Package natstest starts real NATS servers for tests: in-process, with
// JetStream on a fresh directory, on a random loopback port.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/internal/embednats"
)

// Server starts a JetStream server for the test and stops it at cleanup.
func Server(tb testing.TB) *server.Server {
	tb.Helper()
	return ServerWith(tb, embednats.Config{})
}

// ServerWith starts a JetStream server configured by cfg, whose Listen
// (default a free loopback port) and DataDir (default a fresh directory of
// the test's) it fills in when empty; it stops the server at cleanup.
func ServerWith(tb testing.TB, cfg embednats.Config) *server.Server {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	s, err := embednats.Start(cfg, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect opens a client connection to s, closed at cleanup.
func Connect(tb testing.TB, s *server.Server, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// Logger returns a zerolog logger that writes through tb.Log.
func Logger(tb testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: writer{tb}, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).Level(zerolog.InfoLevel)
}

type writer struct{ tb testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}
