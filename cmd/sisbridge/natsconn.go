package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// waitLogEvery is how often a process waiting for NATS says so.
const waitLogEvery = 5 * time.Second

// dialNATS connects to the NATS server at url, waiting (and saying so every
// few seconds) while it is not up yet, so that the order in which an
// operator starts things does not matter; cancelling ctx gives up. A server
// without JetStream is named as such. The connection reconnects by itself
// for ever after.
func dialNATS(ctx context.Context, url, name string, log zerolog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second), nats.ReconnectJitter(250*time.Millisecond, time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact(url), err)
	}
	if err := awaitConnected(ctx, nc, url, log); err != nil {
		nc.Close()
		return nil, err
	}
	if err := requireJetStream(ctx, nc, url); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// awaitConnected waits until nc is connected.
func awaitConnected(ctx context.Context, nc *nats.Conn, url string, log zerolog.Logger) error {
	start := time.Now()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	lastLog := start
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to NATS at %s: gave up after %s: %w", redact(url), time.Since(start).Round(time.Second), ctx.Err())
		case now := <-poll.C:
			if now.Sub(lastLog) >= waitLogEvery {
				lastLog = now
				log.Warn().Str("nats", redact(url)).Dur("waited", now.Sub(start).Round(time.Second)).Msg("waiting for the NATS server to accept connections")
			}
		}
	}
	return nil
}

// errNoJetStream: the NATS server does not run JetStream, which the bus needs.
var errNoJetStream = errors.New("the NATS server does not run JetStream (start it with -js, or a jetstream block in its configuration)")

// requireJetStream asks the server for its JetStream account.
func requireJetStream(ctx context.Context, nc *nats.Conn, url string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("NATS at %s: %w", redact(url), errNoJetStream)
	case err != nil:
		return fmt.Errorf("NATS at %s: JetStream account: %w", redact(url), err)
	}
	return nil
}
