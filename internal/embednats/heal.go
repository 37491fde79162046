package embednats

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
)

// RestartJetStream stops the server's JetStream and starts it again with
// the same configuration, keeping every file. The server keeps a stream
// that met a write error (a full disk) refusing every write until its
// JetStream starts anew; call this once the disk has room again.
func RestartJetStream(s *server.Server) error {
	cfg := s.JetStreamConfig()
	if cfg == nil {
		return errors.New("restart JetStream: it is not running")
	}
	// The running configuration names the store's "jetstream" directory;
	// EnableJetStream wants the one above it.
	if filepath.Base(cfg.StoreDir) == server.JetStreamStoreDir {
		cfg.StoreDir = filepath.Dir(cfg.StoreDir)
	}
	if err := s.ShutdownJetStream(); err != nil {
		return fmt.Errorf("restart JetStream: stop: %w", err)
	}
	if err := s.EnableJetStream(cfg); err != nil {
		return fmt.Errorf("restart JetStream: start: %w", err)
	}
	return nil
}
