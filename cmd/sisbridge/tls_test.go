package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestRunOverTLS: `run` with certificates serves NATS over TLS only (a
// plain client is refused; a tool verifying the server with the CA works)
// and the gateway over HTTPS.
func TestRunOverTLS(t *testing.T) {
	certs := makeCerts(t)
	natsAddr := freeAddr(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var stderr lockedBuffer
	go func() {
		done <- run(ctx, []string{"run", "--data-dir", dir, "--nats-listen", natsAddr, "--listen", "127.0.0.1:0", "--log-format", "json",
			"--nats-tls-cert", certs.serverCert, "--nats-tls-key", certs.serverKey, "--tls-cert", certs.serverCert, "--tls-key", certs.serverKey},
			strings.NewReader(""), &stderr)
	}()
	until(t, "the gateway up", func() bool { return strings.Contains(stderr.String(), "gateway listening") })
	url := regexp.MustCompile(`https://127\.0\.0\.1:\d+/`).FindString(stderr.String())
	if url == "" {
		t.Fatalf("no https URL in the log:\n%s", stderr.String())
	}
	creds := filepath.Join(dir, credentialsFile)
	if nc, err := nats.Connect("nats://"+natsAddr, nats.UserInfo("gateway", "x")); err == nil {
		nc.Close()
		t.Fatal("a client without TLS was let in")
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"users", "list", "--nats", "nats://" + natsAddr, "--nats-credentials", creds, "--nats-ca", certs.ca}, strings.NewReader(""), &out); err != nil {
		t.Fatalf("users list over TLS: %v\n%s", err, out.String())
	}
	pem, err := os.ReadFile(certs.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	until(t, "/readyz over HTTPS", func() bool {
		resp, err := hc.Get(url + "readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNATSClientCertificates: a command connects to a NATS server that
// verifies client certificates with --nats-cert and --nats-key, and is
// refused without them.
func TestNATSClientCertificates(t *testing.T) {
	certs := makeCerts(t)
	serverTLS := mustServerTLS(t, certs, true)
	s := startTLSServer(t, serverTLS)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"users", "list", "--nats", s, "--nats-ca", certs.ca}, strings.NewReader(""), &out)
	if err == nil {
		t.Fatal("connected without a client certificate")
	}
	out.Reset()
	if err := run(ctx, []string{"users", "list", "--nats", s, "--nats-ca", certs.ca, "--nats-cert", certs.clientCert, "--nats-key", certs.clientKey},
		strings.NewReader(""), &out); err != nil {
		t.Fatalf("with the client certificate: %v\n%s", err, out.String())
	}
}

// TestGatewayGivesUpOnRefusal: a gateway whose NATS server refuses it (no
// credentials, an unknown CA) says why at once instead of waiting for a
// server that is up.
func TestGatewayGivesUpOnRefusal(t *testing.T) {
	certs := makeCerts(t)
	url := startTLSServer(t, mustServerTLS(t, certs, false))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr lockedBuffer
	err := run(ctx, []string{"gateway", "--nats", url, "--listen", "127.0.0.1:0"}, strings.NewReader(""), &stderr)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "--nats-ca") {
		t.Fatalf("gateway against a server it cannot verify: %v", err)
	}
}

// TestMetricsOnAListenerOfTheirOwn: with --metrics-listen, /metrics is
// served there (the adapter's, the gateway's and the process's own) and
// not to clients.
func TestMetricsOnAListenerOfTheirOwn(t *testing.T) {
	metricsAddr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var stderr lockedBuffer
	go func() {
		done <- run(ctx, []string{"run", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
			"--metrics-listen", metricsAddr, "--log-format", "json"}, strings.NewReader(""), &stderr)
	}()
	until(t, "the gateway up", func() bool { return strings.Contains(stderr.String(), "gateway listening") })
	var public string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "gateway listening") {
			public = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(line)
		}
	}
	if code, _ := get(public + "metrics"); code != http.StatusNotFound {
		t.Fatalf("/metrics on the public listener: %d", code)
	}
	until(t, "both parts' metrics and the process's", func() bool {
		code, body := get("http://" + metricsAddr + "/metrics")
		return code == http.StatusOK && strings.Contains(body, "sis_gateway_connections") && strings.Contains(body, "sis_adapter_changes_accepted_total") &&
			strings.Contains(body, "\ngo_goroutines ") && strings.Contains(body, "\nprocess_open_fds ") && strings.Contains(body, "\nprocess_resident_memory_bytes ")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
