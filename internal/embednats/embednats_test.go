package embednats_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/internal/embednats"
	"github.com/sisbridge/sisbridge/internal/process"
)

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := process.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestClusterRoutesNeedTheSecret: a node's route port lets in only routes
// that give the cluster's route user and password; anyone else who
// reaches it is refused, and so cannot join the cluster and read the bus.
func TestClusterRoutesNeedTheSecret(t *testing.T) {
	routeAddr := freeAddr(t)
	cfg := embednats.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Cluster: embednats.Cluster{
		Name: "sis", ServerName: "node-1", Listen: routeAddr, Routes: []string{freeAddr(t)}, User: "route", Password: "s3cret-route-pass"}}
	s, err := embednats.Start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	cases := []struct {
		user, pass string
		refused    bool
	}{
		{"", "", true},
		{"route", "guess", true},
		{"admin", "s3cret-route-pass", true},
		{"route", "s3cret-route-pass", false},
	}
	for _, c := range cases {
		got := routeAnswer(t, routeAddr, c.user, c.pass)
		if refused := strings.Contains(got, "Authorization Violation"); refused != c.refused {
			t.Errorf("route %q/%q: answered %q, want refused=%v", c.user, c.pass, got, c.refused)
		}
	}
}

// routeAnswer connects to a route port as a route with user and pass and
// returns the first line after the server's INFO.
func routeAnswer(t *testing.T, addr, user, pass string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil { // INFO
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":%q,\"pass\":%q,\"name\":\"intruder\",\"cluster\":\"sis\",\"headers\":true}\r\nPING\r\n", user, pass)
	line, err := r.ReadString('\n')
	if err != nil {
		return "closed: " + err.Error()
	}
	return strings.TrimSpace(line)
}
