package main

import (
	"bytes"
	"context"
	"net"
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
