package wallboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestNodeClient runs sis-client.js's own tests (node/*.test.mjs, with
// node --test) in Node against two real gateways, one open and one asking
// for a host administrator. The tests drive the router through a control
// endpoint on loopback whose requests this goroutine carries out.
func TestNodeClient(t *testing.T) {
	node, flags := nodeRuntime(t)
	e := newEnv(t)
	srv, base := e.serve(bridge.Config{KeepAlive: 300 * time.Millisecond, HeartbeatTimeout: 2 * time.Second}, nil)
	locked := &env{Env: e.Env, seats: &seats{}}
	_, authBase := locked.serve(bridge.Config{Auth: true}, admin{})
	ops := make(chan controlOp)
	ctl := httptest.NewServer(control(ops))
	t.Cleanup(ctl.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	files, _ := filepath.Glob(filepath.Join("node", "*.test.mjs"))
	if len(files) == 0 {
		t.Fatal("no node/*.test.mjs to run")
	}
	cmd := exec.CommandContext(ctx, node, append(flags, append([]string{"--test", "--test-reporter=tap"}, files...)...)...)
	cmd.Env = append(os.Environ(), "SIS_URL="+wsURL(base), "SIS_AUTH_URL="+wsURL(authBase), "SIS_CONTROL="+ctl.URL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case op := <-ops:
			op.reply <- op.run(e, srv)
		case err := <-done:
			summary := tapSummary(out.String())
			if err != nil {
				t.Fatalf("node --test: %v (%s)\n%s", err, summary, out.String())
			}
			t.Logf("node --test %s: %s", strings.Join(files, " "), summary)
			return
		}
	}
}

// nodeRuntime finds node and the flags that give it a global WebSocket
// (Node 22 has one; Node 20 behind --experimental-websocket; an older one
// needs the ws package in node/node_modules). It skips the test without
// Node, failing under SIS_REQUIRE_ALL=1.
func nodeRuntime(t *testing.T) (string, []string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		msg := "no node in PATH: sis-client.js's Node tests need Node.js 20 or later (Debian: apt-get install nodejs)"
		if os.Getenv("SIS_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	probe := "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
	for _, flags := range [][]string{nil, {"--experimental-websocket"}} {
		if exec.Command(node, append(flags, "-e", probe)...).Run() == nil {
			return node, flags
		}
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "ws")); err != nil {
		t.Fatalf("%s has no WebSocket and node/node_modules has no ws package (npm install --prefix wallboard/node ws)", node)
	}
	return node, nil
}

func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/sis/v1" }

// tapSummary picks the counts out of node --test's TAP output.
func tapSummary(out string) string {
	var parts []string
	for _, line := range strings.Split(out, "\n") {
		for _, k := range []string{"# tests ", "# pass ", "# fail ", "# skipped ", "# duration_ms "} {
			if strings.HasPrefix(line, k) {
				parts = append(parts, strings.TrimPrefix(line, "# "))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// controlOp is one request of the Node tests to change the router or read
// the truth, carried out by the test's goroutine.
type controlOp struct {
	path  string
	args  controlArgs
	reply chan controlReply
}

type controlArgs struct {
	Group, CallID, Customer, Tenant, Reason string
	Media                                   queue.MediaType
	Cause                                   queue.RemoveCause
	Position, Count                         int
	Unheard                                 bool
}

type controlReply struct {
	status int
	body   any
}

// control serves POST /<op> with a JSON controlArgs body and GET /queue,
// /stats, handing each request to ops.
func control(ops chan<- controlOp) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := controlOp{path: r.URL.Path, reply: make(chan controlReply, 1)}
		op.args.Group = r.URL.Query().Get("group")
		if r.Method == http.MethodPost {
			if err := json.NewDecoder(r.Body).Decode(&op.args); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		select {
		case ops <- op:
		case <-r.Context().Done():
			return
		}
		rep := <-op.reply
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_ = json.NewEncoder(w).Encode(rep.body)
	})
}

// run carries out an op on the stack.
func (op controlOp) run(e *env, srv *bridge.Server) controlReply {
	a := op.args
	change := func(c queue.Change) error {
		if _, ok := e.Queues[a.Group]; !ok {
			return fmt.Errorf("no group %q", a.Group)
		}
		if a.Unheard {
			e.ApplyUnheard(a.Group, c)
		} else {
			e.Apply(a.Group, c)
		}
		return nil
	}
	var err error
	switch op.path {
	case "/queue":
		return controlReply{http.StatusOK, truth(e, a.Group)}
	case "/stats":
		return controlReply{http.StatusOK, srv.Stats()}
	case "/enqueue":
		for i := range max(a.Count, 1) {
			id := a.CallID
			if a.Count > 0 {
				id = fmt.Sprintf("%s-%d", a.CallID, i)
			}
			err = change(queue.Change{Op: queue.OpEnqueue, CallID: id, Session: queue.Session{MediaType: a.Media,
				CustomerInformation: a.Customer, TimeEnteredQueue: time.Now().UTC()}})
		}
	case "/move":
		err = change(queue.Change{Op: queue.OpMove, CallID: a.CallID, Position: a.Position})
	case "/remove":
		err = change(queue.Change{Op: queue.OpRemove, CallID: a.CallID, Cause: a.Cause})
	case "/putgroup":
		err = e.PutGroup(subjects.Group{ServiceGroupID: a.Group, TenantID: a.Tenant, Name: a.Group})
	case "/removegroup":
		err = e.RemoveGroup(a.Group)
	case "/linkdown":
		e.Adapter.LinkDown(e.Ctx, a.Reason)
	case "/linkup":
		err = e.Adapter.LinkUp(e.Ctx, e.State())
	case "/kick":
		srv.SeatLost(e.seats.last())
	default:
		return controlReply{http.StatusNotFound, "no such op " + op.path}
	}
	if err != nil {
		return controlReply{http.StatusBadRequest, err.Error()}
	}
	return controlReply{http.StatusOK, "ok"}
}

// truth is a group's queue as the router holds it: "CallID@position" in order.
func truth(e *env, group string) []string {
	q, ok := e.Queues[group]
	if !ok {
		return nil
	}
	var ids []string
	for i, s := range q.Sessions() {
		ids = append(ids, fmt.Sprintf("%s@%d", s.CallID, i+1))
	}
	return ids
}
