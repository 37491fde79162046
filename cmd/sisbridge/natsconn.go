package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
)

// waitLogEvery is how often a process waiting for NATS says so.
const waitLogEvery = 5 * time.Second

// dialNATS connects to the NATS server at url, waiting (and saying so every
// few seconds) while it is not up yet, so that the order in which an
// operator starts things does not matter; cancelling ctx gives up. A server
// without JetStream is named as such. The connection reconnects by itself
// for ever after.
func dialNATS(ctx context.Context, nf *natsFlags, name string, log zerolog.Logger) (*nats.Conn, error) {
	url := nf.url
	opts, err := nf.connectOptions(nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second), nats.ReconnectJitter(250*time.Millisecond, time.Second))
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", access.Redact(url), err)
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
		if err := refused(nc.LastError()); err != nil {
			return fmt.Errorf("connect to NATS at %s: %w", access.Redact(url), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to NATS at %s: gave up after %s: %w", access.Redact(url), time.Since(start).Round(time.Second), ctx.Err())
		case now := <-poll.C:
			if now.Sub(lastLog) >= waitLogEvery {
				lastLog = now
				log.Warn().Str("nats", access.Redact(url)).Dur("waited", now.Sub(start).Round(time.Second)).Msg("waiting for the NATS server to accept connections")
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
		return fmt.Errorf("NATS at %s: %w", access.Redact(url), errNoJetStream)
	case err != nil:
		return fmt.Errorf("NATS at %s: JetStream account: %w", access.Redact(url), err)
	}
	return nil
}

// refused says whether err is the server turning the connection away
// (credentials, TLS), which waiting does not mend; it returns err with a
// hint then, nil otherwise.
func refused(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "authorization"):
		return fmt.Errorf("%w (give --nats-user with $SIS_NATS_PASSWORD, or --nats-credentials)", err)
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls") || strings.Contains(msg, "certificate"):
		return fmt.Errorf("%w (--nats-ca verifies the server; --nats-cert and --nats-key give a client certificate)", err)
	}
	return nil
}

// checkURLs refuses a --nats value with a URL that does not parse, naming
// it without its password (nats.go's own error would quote it whole).
func checkURLs(raw string) error {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err != nil || u.Host == "" {
			return fmt.Errorf("--nats: URL %d of %d is malformed (%s): want nats://[user:password@]host:port", i+1, len(parts), access.Redact(strings.TrimSpace(p)))
		}
	}
	return nil
}

// natsFlags say how a command reaches NATS, and as whom: a user and
// password (given, or its role's in a credentials file made by
// `sisbridge nats-config` or kept by `sisbridge run`).
type natsFlags struct {
	url, user, credentials string
	ca, cert, key          string
	role                   access.Role
}

// register adds the flags of a command that connects as role.
func (n *natsFlags) register(fs *flag.FlagSet, role access.Role) {
	n.role = role
	fs.StringVar(&n.url, "nats", "nats://127.0.0.1:4222", "NATS server URL (credentials in the URL are never logged)")
	fs.StringVar(&n.user, "nats-user", "", "NATS user (default: $SIS_NATS_USER, or the "+string(role)+" user of --nats-credentials)")
	fs.StringVar(&n.credentials, "nats-credentials", "", "credentials file (sisbridge nats-config; the data directory's of sisbridge run): connect as its "+string(role)+" user")
	fs.StringVar(&n.ca, "nats-ca", "", "CA certificate file to verify the NATS server's TLS certificate with (default: the system's)")
	fs.StringVar(&n.cert, "nats-cert", "", "client certificate file, for a NATS server that verifies clients")
	fs.StringVar(&n.key, "nats-key", "", "the client certificate's key file")
}

// options are the nats.Options of the flags: credentials and the role's
// inbox prefix (the only replies its permissions let it read).
func (n *natsFlags) options() ([]nats.Option, error) {
	if err := checkURLs(n.url); err != nil {
		return nil, err
	}
	user, password := n.user, os.Getenv("SIS_NATS_PASSWORD")
	if user == "" {
		user = os.Getenv("SIS_NATS_USER")
	}
	if n.credentials != "" {
		creds, err := access.Load(n.credentials)
		if err != nil {
			return nil, err
		}
		s, ok := creds[n.role]
		if !ok {
			return nil, fmt.Errorf("--nats-credentials %s has no %s user", n.credentials, n.role)
		}
		user, password = s.User, s.Password
	}
	opts := access.Options(n.role, access.Secret{User: user, Password: password})
	tlsOpts, err := n.tlsOptions()
	return append(opts, tlsOpts...), err
}

// tlsOptions are the TLS options of the flags, each file checked now.
func (n *natsFlags) tlsOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if n.ca != "" {
		if _, err := os.Stat(n.ca); err != nil {
			return nil, fmt.Errorf("--nats-ca: %w", err)
		}
		opts = append(opts, nats.RootCAs(n.ca))
	}
	switch {
	case (n.cert == "") != (n.key == ""):
		return nil, errors.New("--nats-cert and --nats-key: give both or neither")
	case n.cert != "":
		if _, err := tls.LoadX509KeyPair(n.cert, n.key); err != nil {
			return nil, fmt.Errorf("--nats-cert/--nats-key: %w", err)
		}
		opts = append(opts, nats.ClientCert(n.cert, n.key))
	}
	return opts, nil
}

// connectOptions are opts with the flags' own.
func (n *natsFlags) connectOptions(opts ...nats.Option) ([]nats.Option, error) {
	own, err := n.options()
	return append(opts, own...), err
}
