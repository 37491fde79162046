package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunFailsWhenAPartFails: `sisbridge run` whose adapter cannot start
// its feed (the port is taken) ends with an error naming the cause, not
// with success once the other parts stopped.
func TestRunFailsWhenAPartFails(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	err = run(ctx, []string{"run", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
		"--source", "feed", "--feed-listen", taken.Addr().String(), "--feed-token", "t0ken", "--log-format", "json"}, strings.NewReader(""), &stderr)
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("run ended with %v, want the taken feed address named\n%s", err, stderr.String())
	}
}

// TestRunChecksFlagsBeforeStarting: settings that cannot work are each
// named, and nothing starts (no data directory is made).
func TestRunChecksFlagsBeforeStarting(t *testing.T) {
	dir := t.TempDir() + "/data"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	err := run(ctx, []string{"run", "--data-dir", dir, "--nats-listen", "127.0.0.1:0", "--listen", "nowhere",
		"--replicas", "3", "--retention", "-1h", "--nats-max-store", "1000", "--tls-cert", "missing.pem"}, strings.NewReader(""), &stderr)
	if err == nil {
		t.Fatal("run started")
	}
	for _, want := range []string{"--replicas 3", "retention", "--nats-max-store 1000", "--listen", "--tls-cert and --tls-key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q:\n%v", want, err)
		}
	}
	if _, statErr := os.Stat(dir); statErr == nil {
		t.Error("the data directory was made: something started")
	}
}

// TestRunNamesAnUnusableDataDir: a --data-dir that cannot hold files is
// named with its cause, not reported as a server that never got ready.
func TestRunNamesAnUnusableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	err := run(ctx, []string{"run", "--data-dir", filepath.Join(file, "data"), "--nats-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &stderr)
	if err == nil || !strings.Contains(err.Error(), "data dir") || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("run: %v", err)
	}
}
