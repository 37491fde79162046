package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"github.com/sisbridge/sisbridge/router"
	"io"
	"path/filepath"

	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/wallboard"
)

func runAll(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("sisbridge run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		rf         routerFlags
		gf         gatewayFlags
		cf         clusterFlags
		natsListen = fs.String("nats-listen", "127.0.0.1:4222", "address of the embedded NATS server (port 0: any free port)")
		dataDir    = fs.String("data-dir", "sisbridge-data", "directory of the embedded NATS server's JetStream files")
		maxStore   = fs.Int64("nats-max-store", 1<<30, "JetStream file storage limit, bytes")
		syncAlways = fs.Bool("nats-sync-always", false, "fsync every write before acknowledging it (slower; survives power loss)")
		natsCert   = fs.String("nats-tls-cert", "", "TLS certificate file of the embedded NATS server: it then takes TLS connections only")
		natsKey    = fs.String("nats-tls-key", "", "the embedded NATS server's TLS key file")
	)
	rf.register(fs)
	gf.register(fs)
	cf.register(fs)
	log, src, closeSrc, err := rf.setup(fs, args, stdin, stderr)
	if err != nil {
		return err
	}
	defer closeSrc()
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	ncfg := embednats.Config{Listen: *natsListen, DataDir: dir, MaxStore: *maxStore, SyncAlways: *syncAlways}
	if err := checkRunFlags(ncfg, rf.af.config(), &gf, &cf); err != nil {
		return fmt.Errorf("sisbridge run: %w", err)
	}
	serverTLS, clientTLS, err := embeddedTLS(*natsCert, *natsKey)
	if err != nil {
		return fmt.Errorf("sisbridge run: %w", err)
	}
	ncfg.TLS = serverTLS
	creds, err := cf.credentialsFor(dir)
	if err != nil {
		return err
	}
	ncfg.Cluster = cf.config(creds)
	if ncfg.Users, err = creds.ServerUsers(false); err != nil {
		return err
	}
	s, err := embednats.Start(ncfg, log)
	if err != nil {
		return err
	}
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
		log.Info().Msg("SIS Bridge stopped")
	}()
	anc, err := connectAs(s.ClientURL(), creds, access.Adapter, clientTLS)
	if err != nil {
		return err
	}
	defer anc.Close()
	if cf.on() {
		if err := awaitJetStream(ctx, anc, log); err != nil {
			return err
		}
	}
	gnc, err := connectAs(s.ClientURL(), creds, access.Gateway, clientTLS)
	if err != nil {
		return err
	}
	defer gnc.Close()
	credsPath := cf.credentials
	if credsPath == "" {
		credsPath = filepath.Join(dir, credentialsFile)
	}
	log.Info().Str("nats", s.ClientURL()).Str("data_dir", dir).Str("credentials", credsPath).
		Msg("SIS Bridge starting (Ctrl-C stops); other tools connect with --nats-credentials")
	reg := processRegistry() // one /metrics for both parts
	return both(ctx,
		func(ctx context.Context) error {
			return serveAdapter(ctx, anc, rf.af.config(), src, log, adapterObs{reg: reg, watch: func(ctx context.Context, a *router.Node) {
				healer(s, dir, a, log).run(ctx)
			}})
		},
		func(ctx context.Context) error { return serveGateway(ctx, gnc, &gf, wallboard.Handler(), log, reg) })
}

// embeddedTLS loads the embedded server's certificate: the server's TLS
// configuration, and the one run's own connections verify it with (the
// certificate itself is their trust anchor, so a certificate of any issuer
// will do). Both nil without a certificate.
func embeddedTLS(certFile, keyFile string) (server, client *tls.Config, err error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil, nil
	case certFile == "" || keyFile == "":
		return nil, nil, errors.New("--nats-tls-cert and --nats-tls-key: give both or neither")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--nats-tls-cert/--nats-tls-key: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("--nats-tls-cert: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	client = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	client.ServerName = loopbackName(leaf) // run dials a loopback address
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, client, nil
}

// loopbackName is the name run's own connections expect of the embedded
// server's certificate: none when it names a loopback address (dialed),
// else its first DNS name or address.
func loopbackName(leaf *x509.Certificate) string {
	for _, ip := range leaf.IPAddresses {
		if ip.IsLoopback() {
			return ""
		}
	}
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0]
	}
	if len(leaf.IPAddresses) > 0 {
		return leaf.IPAddresses[0].String()
	}
	return ""
}

// credentialsFile is where `run` keeps its embedded server's credentials,
// in the data directory.
const credentialsFile = "nats-credentials.json"

// runCredentials loads, or creates, the credentials of every role for
// the embedded server (mode 0600, in the data directory).
func runCredentials(dir string) (access.Credentials, error) {
	if err := embednats.UsableDir(dir); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	return access.LoadOrCreate(dir, credentialsFile, access.Roles...)
}

// connectAs connects to the embedded server as role (over TLS with
// clientTLS, when set).
func connectAs(url string, creds access.Credentials, role access.Role, clientTLS *tls.Config) (*nats.Conn, error) {
	opts := append(access.Options(role, creds[role]), nats.Name("sisbridge-run-"+string(role)))
	if clientTLS != nil {
		opts = append(opts, nats.Secure(clientTLS))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded NATS server as %s: %w", role, err)
	}
	return nc, nil
}

// healer watches a's store on the embedded server s.
func healer(s *server.Server, dir string, a *router.Node, log zerolog.Logger) *storeHealer {
	return &storeHealer{srv: s, dir: dir, health: a.Health, log: log.With().Str("component", "nats").Logger(),
		after: 10 * time.Second, every: 2 * time.Second, minFree: 64 << 20}
}

// both runs two parts until ctx ends or one of them ends, which stops the
// other; it returns once both have. It returns the error of the part that
// ended first for a reason of its own (the other then only ends because it
// was told to), nil when ctx ended and both stopped cleanly.
func both(ctx context.Context, a, b func(context.Context) error) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	for _, fn := range []func(context.Context) error{a, b} {
		go func() {
			err := fn(inner)
			cancel()
			errs <- err
		}()
	}
	var first error
	for range 2 {
		err := <-errs
		if first == nil && err != nil && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	return first
}

// minStore is the least JetStream storage that holds a bus at all.
const minStore = 16 << 20

// checkRunFlags checks, before anything starts, every setting of `run`
// that cannot work, and names each: what the embedded server, the adapter
// and the gateway would each refuse later, and what only a cluster can do.
func checkRunFlags(ncfg embednats.Config, rcfg router.Config, gf *gatewayFlags, cf *clusterFlags) error {
	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	add("embedded NATS", ncfg.Validate())
	if ncfg.MaxStore > 0 && ncfg.MaxStore < minStore {
		errs = append(errs, fmt.Errorf("--nats-max-store %d: want at least %d (16 MiB)", ncfg.MaxStore, minStore))
	}
	rcfg = rcfg.WithDefaults()
	add("adapter", rcfg.Validate())
	errs = append(errs, cf.check(rcfg.Bus.Replicas)...)
	add("gateway", gf.config().WithDefaults().Validate())
	add("gateway", gf.check())
	return errors.Join(errs...)
}
