package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestNATSConfigRunsARealServer: the configuration nats-config writes
// runs a real nats-server; the router adapter connects to it with the
// credentials file and works; the tenant reader reads its tenant; a
// rotated password is new in both files.
func TestNATSConfigRunsARealServer(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runNATSConfig([]string{"--out", dir, "--reader", "acme"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{configCredentials, "reader-acme.json", configServer} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	main := "listen: 127.0.0.1:-1\njetstream { store_dir: " + `"` + filepath.Join(dir, "js") + `"` + " }\ninclude " + configServer + "\n"
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoSigs, opts.NoLog = true, true
	// A client's first PING from the server comes 2 s after its CONNECT;
	// checking a bcrypt password can take longer on a loaded test machine
	// (the race detector, the suite beside it), and nats.go then reads
	// that PING where it expects its PONG and gives up the connection.
	opts.DisableShortFirstPing = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the configured server did not start")
	}
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("anonymous client let in")
	}

	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var stderr lockedBuffer
	go func() {
		done <- run(ctx, []string{"router", "--nats", s.ClientURL(), "--nats-credentials", filepath.Join(dir, configCredentials),
			"--listen", addr, "--speed", "-1", "--log-format", "json"}, strings.NewReader(""), &stderr)
	}()
	until(t, "the adapter ready", func() bool { code, _ := get("http://" + addr + "/readyz"); return code == http.StatusOK })

	nf := natsFlags{url: s.ClientURL(), credentials: filepath.Join(dir, "reader-acme.json"), role: access.TenantReader("acme")}
	ropts, err := nf.options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(nf.url, ropts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Name: access.ReaderConsumer("acme"), FilterSubject: subjects.TenantEvents("acme")})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := <-msgs.Messages(); !ok || !strings.HasPrefix(m.Subject(), "sis.v1.evt.acme.") {
		t.Fatalf("the acme reader got %v", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("router: %v\n%s", err, stderr.String())
	}

	before, _ := access.Load(filepath.Join(dir, configCredentials))
	if err := runNATSConfig([]string{"--out", dir, "--reader", "acme", "--rotate", "gateway"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	after, _ := access.Load(filepath.Join(dir, configCredentials))
	if after[access.Gateway] == before[access.Gateway] || after[access.Adapter] != before[access.Adapter] {
		t.Fatal("--rotate gateway did not change the gateway's password only")
	}
}
