package main

import (
	"bytes"
	"context"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/stats"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sisbridge/sisbridge/access"
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
		"--replicas", "3", "--retention", "-1h", "--nats-max-store", "1000", "--tls-cert", "missing.pem", "--adapter-lease", "100ms"}, strings.NewReader(""), &stderr)
	if err == nil {
		t.Fatal("run started")
	}
	for _, want := range []string{"--replicas 3", "retention", "--nats-max-store 1000", "--listen", "--tls-cert and --tls-key", "adapter lease TTL 100ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q:\n%v", want, err)
		}
	}
	if _, statErr := os.Stat(dir); statErr == nil {
		t.Error("the data directory was made: something started")
	}
}

// TestZeroLimitsAreRefused: a limit of 0 on the command line is refused
// with its flag named (the configuration would read it as "the default"),
// before NATS is dialled; on the gateway and on run alike.
func TestZeroLimitsAreRefused(t *testing.T) {
	limits := []string{"--max-connections", "0", "--max-connections-per-address", "0", "--max-request-rate", "0",
		"--max-request-burst", "0", "--max-subscriptions", "0", "--initialize-timeout", "0s", "--stats-window", "0s", "--service-level-threshold", "0s"}
	for _, cmd := range [][]string{
		{"gateway", "--nats", "nats://127.0.0.1:1"},
		{"run", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stderr bytes.Buffer
		err := run(ctx, append(cmd, limits...), strings.NewReader(""), &stderr)
		cancel()
		if err == nil {
			t.Fatalf("%s started with zero limits", cmd[0])
		}
		for i := 0; i < len(limits); i += 2 {
			if !strings.Contains(err.Error(), limits[i]+" ") && !strings.Contains(err.Error(), limits[i]+":") {
				t.Errorf("%s: the error does not name %s:\n%v", cmd[0], limits[i], err)
			}
		}
		if strings.Contains(stderr.String(), "waiting for the NATS server") {
			t.Errorf("%s dialled NATS before refusing its flags", cmd[0])
		}
	}
	// A negative value is no limit, and accepted.
	gf := gatewayFlags{listen: "127.0.0.1:0", seats: 1, leaseTTL: time.Minute}
	gf.cfg.Limits = bridge.Limits{Connections: -1, PerAddress: -1, RequestRate: -1, RequestBurst: 1, Subscriptions: -1, InitializeTimeout: time.Second}
	gf.cfg.Statistics = stats.Config{Window: time.Minute, ServiceLevelThreshold: time.Second}
	if err := gf.check(); err != nil {
		t.Fatalf("negative limits: %v", err)
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

// TestRunProtectsItsNATS: `run` keeps credentials for every role in its
// data directory (0600), its NATS server lets no one in without them, and
// other tools connect with --nats-credentials.
func TestRunProtectsItsNATS(t *testing.T) {
	natsAddr := freeAddr(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var stderr lockedBuffer
	go func() {
		done <- run(ctx, []string{"run", "--data-dir", dir, "--nats-listen", natsAddr, "--listen", "127.0.0.1:0", "--log-format", "json"}, strings.NewReader(""), &stderr)
	}()
	credsPath := filepath.Join(dir, credentialsFile)
	until(t, "the gateway up", func() bool { return strings.Contains(stderr.String(), "gateway listening") })
	fi, err := os.Stat(credsPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	if nc, err := nats.Connect("nats://" + natsAddr); err == nil {
		nc.Close()
		t.Fatal("the embedded server let in a client without credentials")
	}
	var out bytes.Buffer
	err = run(ctx, []string{"users", "add", "--nats", "nats://" + natsAddr, "--nats-credentials", credsPath, "ann"}, strings.NewReader("s3cret-pass\ns3cret-pass\n"), &out)
	if err != nil {
		t.Fatalf("users add with the run's credentials: %v\n%s", err, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	creds, err := access.Load(credsPath)
	if err != nil {
		t.Fatal(err)
	}
	for r, sec := range creds {
		if strings.Contains(stderr.String(), sec.Password) || strings.Contains(out.String(), sec.Password) {
			t.Fatalf("the %s password is in the output", r)
		}
	}
}

// TestNoSecretInOutput: passwords and tokens given to the commands appear
// in none of their output, whatever fails: a NATS URL that does not parse,
// one that cannot be reached, a feed token.
func TestNoSecretInOutput(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	t.Setenv("SIS_NATS_PASSWORD", secret)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"router", "--nats", "nats://user:" + secret + "@127.0.0.1:bad port", "--listen", ""},
		{"gateway", "--nats", "nats://user:" + secret + "@127.0.0.1:1,nats://u:" + secret + "@[::1", "--listen", "127.0.0.1:0"},
		{"users", "list", "--nats", "nats://user:" + secret + "@127.0.0.1:1", "--timeout", "1s"},
		{"router", "--nats", "nats://127.0.0.1:1", "--nats-user", "gateway", "--listen", "", "--source", "feed", "--feed-listen", "nowhere", "--feed-token", secret},
	} {
		var out lockedBuffer
		rctx, stop := context.WithTimeout(ctx, 3*time.Second)
		err := run(rctx, args, strings.NewReader(""), &out)
		stop()
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(out.String(), secret) {
			t.Fatalf("%v: the secret is in the output:\n%v\n%s", args, err, out.String())
		}
	}
}

// TestRunStopsWhileStoreRefuses: `run` whose JetStream store is full (the
// simulator at full speed fills --nats-max-store) reports it and still
// stops when told to, within its shutdown bound.
func TestRunStopsWhileStoreRefuses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var stderr lockedBuffer
	go func() {
		done <- run(ctx, []string{"run", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
			"--nats-max-store", "16777216", "--speed", "-1", "--log-format", "json"}, strings.NewReader(""), &stderr)
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(stderr.String(), "the event store refuses writes") {
		select {
		case err := <-done:
			t.Fatalf("run ended before the store filled: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the store never filled")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel() // SIGTERM
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("run did not stop within a minute of being told to, its store refusing writes")
	}
}
