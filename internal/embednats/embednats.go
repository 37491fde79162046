// Package embednats runs a NATS server with JetStream inside the process,
// logging through zerolog.
package embednats

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// Config says how to run the embedded server.
type Config struct {
	// Listen is the client address, host:port. Default "127.0.0.1:4222";
	// port 0 picks a free one.
	Listen string
	// DataDir holds JetStream's files, under DataDir/jetstream. Required:
	// two servers must never share one.
	DataDir string
	// MaxStore caps JetStream file storage, in bytes. Default 1 GiB.
	MaxStore int64
	// MaxMemory caps JetStream memory storage, in bytes. Default 256 MiB.
	MaxMemory int64
	// SyncAlways fsyncs every write before acknowledging it: slower, and no
	// acknowledged change is lost on power failure. Default false (the
	// server syncs every 2 minutes; the adapter reconciles a lost tail with
	// the router when it starts).
	SyncAlways bool
	// TLS, when set, makes the server accept TLS connections only, with
	// this configuration (its certificate; with ClientAuth
	// RequireAndVerifyClientCert and ClientCAs, client certificates are
	// required too). Default nil: plain TCP.
	TLS *tls.Config
	// Users, when set, are the only clients the server lets in, each with
	// its permissions (access.Credentials.ServerUsers). Default none:
	// anyone who reaches Listen may connect.
	Users []*server.User
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Default 10 s.
	ReadyTimeout time.Duration
	// Cluster, when its Name is set, makes the server a node of a NATS
	// cluster with JetStream. Default: a server of its own.
	Cluster Cluster
}

// Cluster makes an embedded server a node of a cluster.
type Cluster struct {
	// Name is the cluster's, the same on every node. Required.
	Name string
	// ServerName is this node's, unique in the cluster. Required.
	ServerName string
	// Listen is the route listener, host:port. Required.
	Listen string
	// Routes are the other nodes' route listeners, host:port (this node's
	// own may be among them).
	Routes []string
	// User and Password authenticate routes both ways: a node lets in only
	// routes that give them, and gives them to the nodes it dials.
	// Required: an open route port would let anyone join the cluster.
	User, Password string
}

// validate reports what is wrong with a cluster's settings.
func (c Cluster) validate() []error {
	if c.Name == "" {
		return nil
	}
	var errs []error
	if c.ServerName == "" {
		errs = append(errs, errors.New("cluster: a server name is required"))
	}
	if _, _, err := splitListen(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("cluster listen: %w", err))
	}
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("cluster: routes to the other nodes are required"))
	}
	if c.User == "" || c.Password == "" {
		errs = append(errs, errors.New("cluster: a route user and password are required"))
	}
	return errs
}

// options sets a cluster node's server options.
func (c Cluster) options(opts *server.Options) error {
	if c.Name == "" {
		return nil
	}
	host, port, _ := splitListen(c.Listen)
	opts.ServerName = c.ServerName
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port, Username: c.User, Password: c.Password}
	for _, r := range c.Routes {
		u, err := url.Parse("nats-route://" + r)
		if err != nil {
			return fmt.Errorf("cluster route %q: %w", r, err)
		}
		u.User = url.UserPassword(c.User, c.Password)
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:4222"
	}
	if c.MaxStore == 0 {
		c.MaxStore = 1 << 30
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = 256 << 20
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: required"))
	}
	if _, _, err := splitListen(c.Listen); err != nil {
		errs = append(errs, err)
	}
	if c.MaxStore < 0 || c.MaxMemory < 0 {
		errs = append(errs, errors.New("max store and max memory: want 0 (default) or more"))
	}
	errs = append(errs, c.Cluster.validate()...)
	return errors.Join(errs...)
}

func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("listen %q: bad port", listen)
	}
	if port == 0 {
		port = -1 // the server's word for "any free port"
	}
	return host, port, nil
}

// Start runs a server and waits until it accepts clients. The caller stops
// it with Shutdown and WaitForShutdown.
func Start(cfg Config, log zerolog.Logger) (*server.Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if err := UsableDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	host, port, _ := splitListen(cfg.Listen)
	if port > 0 { // a taken port fails at once, not after ReadyTimeout
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		_ = ln.Close()
	}
	opts := &server.Options{
		ServerName: "sisbridge", Host: host, Port: port, NoSigs: true,
		JetStream: true, StoreDir: filepath.Clean(cfg.DataDir),
		JetStreamMaxStore: cfg.MaxStore, JetStreamMaxMemory: cfg.MaxMemory, SyncAlways: cfg.SyncAlways,
		Users: cfg.Users,
	}
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, cfg.TLS, 5
		opts.TLSVerify = cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if err := cfg.Cluster.options(opts); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	s.SetLoggerV2(&logger{log: log.With().Str("component", "nats").Logger()}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready within %s on %s", cfg.ReadyTimeout, cfg.Listen)
	}
	return s, nil
}

// UsableDir makes dir if need be and makes sure files can be written in
// it: the server would otherwise only fail to become ready, 10 s later,
// without saying why.
func UsableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// logger routes the server's log to zerolog. Fatalf logs at error level
// and does not exit the process: the caller sees the failed start.
type logger struct{ log zerolog.Logger }

func (l *logger) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l *logger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l *logger) Fatalf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *logger) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *logger) Debugf(format string, v ...any)  { l.log.Debug().Msgf(format, v...) }
func (l *logger) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
