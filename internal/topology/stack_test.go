package topology

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/internal/process"
	"github.com/sisbridge/sisbridge/subjects"
)

// binaries are the programs the topology runs, built once per test binary.
var binaries struct {
	once               sync.Once
	dir                string
	sisbridge, natsSrv string
	err                error
}

// build builds sisbridge and nats-server (from the nats-server module the
// project depends on) into a directory removed by TestMain.
func build(t *testing.T) (sisbridge, natsServer string) {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "sis-topology-bin-*")
		if binaries.err != nil {
			return
		}
		binaries.sisbridge = filepath.Join(binaries.dir, "sisbridge")
		binaries.natsSrv = filepath.Join(binaries.dir, "nats-server")
		for _, b := range [][2]string{{binaries.sisbridge, "github.com/sisbridge/sisbridge/cmd/sisbridge"}, {binaries.natsSrv, "github.com/nats-io/nats-server/v2"}} {
			if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.sisbridge, binaries.natsSrv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// requireHAProxy returns haproxy's path, skipping the test where it is
// missing (a failure under SIS_REQUIRE_ALL=1).
func requireHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("SIS_REQUIRE_ALL") == "1" {
			t.Fatal("haproxy is not installed (SIS_REQUIRE_ALL=1; .ci/run installs Debian's)")
		}
		t.Skip("haproxy is not installed: the topology test needs it (apt-get install haproxy)")
	}
	return bin
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := process.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// stack is the topology: three NATS nodes, two adapters, two gateways and
// HAProxy, every one a process.
type stack struct {
	t        *testing.T
	dir      string
	creds    access.Credentials
	credFile string
	nats     []*natsNode
	adapters []*process.Process
	adminURL []string // each adapter's http base
	gateways []*process.Process
	gwAddr   []string
	lb       *process.Process
	lbAddr   string
	bin      string
}

// natsNode is one NATS server of the cluster.
type natsNode struct {
	*process.Process
	client, monitor string
}

// urls are the NATS client URLs of every node.
func (s *stack) urls() string {
	var u []string
	for _, n := range s.nats {
		u = append(u, "nats://"+n.client)
	}
	return strings.Join(u, ",")
}

// start starts the whole topology and waits until it serves.
func start(t *testing.T) *stack {
	t.Helper()
	sisbridge, natsServer := build(t)
	haproxy := requireHAProxy(t)
	s := &stack{t: t, dir: t.TempDir(), bin: sisbridge}
	var err error
	if s.creds, err = access.Generate(access.Roles...); err != nil {
		t.Fatal(err)
	}
	s.credFile = filepath.Join(s.dir, "credentials.json")
	if err := s.creds.Save(s.credFile); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stopAll)
	s.startNATS(natsServer)
	s.ensureBus()
	for i := range 2 {
		s.startAdapter(i)
	}
	for i := range 2 {
		s.startGateway(i)
	}
	s.startHAProxy(haproxy)
	return s
}

// ctx is a context bounded by the test's own deadline.
func (s *stack) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s.t.Cleanup(cancel)
	return ctx
}

// startNATS writes each node's configuration and starts the cluster.
func (s *stack) startNATS(bin string) {
	t := s.t
	auth, err := os.Create(filepath.Join(s.dir, "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.creds.WriteServerConfig(auth); err != nil {
		t.Fatal(err)
	}
	_ = auth.Close()
	routes := make([]string, 3)
	for i := range 3 {
		routes[i] = freeAddr(t)
	}
	for i := range 3 {
		n := &natsNode{client: freeAddr(t), monitor: freeAddr(t)}
		conf := filepath.Join(s.dir, fmt.Sprintf("nats-%d.conf", i+1))
		var rs []string
		for _, r := range routes {
			rs = append(rs, "nats-route://"+r)
		}
		cfg := fmt.Sprintf("server_name: n%d\nlisten: %s\nhttp: %s\njetstream { store_dir: %q, max_file_store: 1GB, max_memory_store: 128MB }\n"+
			"cluster { name: sis, listen: %s, routes: [%s] }\ninclude auth.conf\n",
			i+1, n.client, n.monitor, filepath.Join(s.dir, fmt.Sprintf("js-%d", i+1)), routes[i], strings.Join(rs, ", "))
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		n.Process = &process.Process{Name: fmt.Sprintf("nats-%d", i+1), Bin: bin, Args: []string{"-c", conf},
			Log: filepath.Join(s.dir, fmt.Sprintf("nats-%d.log", i+1))}
		s.nats = append(s.nats, n)
	}
	// A node is ready (/healthz) only once the cluster has formed: all are
	// started before any is waited for.
	for _, n := range s.nats {
		if err := n.Start(s.ctx(), 0); err != nil {
			t.Fatal(err)
		}
		n.Ready = "http://" + n.monitor + "/healthz"
	}
	for _, n := range s.nats {
		if err := n.AwaitReady(s.ctx(), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

// connect connects to the cluster as role.
func (s *stack) connect(role access.Role) (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	sec := s.creds[role]
	nc, err := nats.Connect(s.urls(), nats.UserInfo(sec.User, sec.Password), nats.CustomInboxPrefix(role.Inbox()),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return nc, js
}

// ensureBus creates every stream and bucket with three replicas, retrying
// while the cluster elects its JetStream leader.
func (s *stack) ensureBus() {
	_, js := s.connect(access.Adapter)
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := subjects.Ensure(ctx, js, subjects.Config{Replicas: 3, AdapterLeaseTTL: leaseTTL})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the cluster never took the bus: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// leaseTTL is the adapters' lease in the topology.
const leaseTTL = 2 * time.Second

// startAdapter starts adapter i (a or b) on the simulator at a high rate.
func (s *stack) startAdapter(i int) {
	addr := freeAddr(s.t)
	name := fmt.Sprintf("adapter-%c", 'a'+i)
	p := &process.Process{Name: name, Bin: s.bin, Log: filepath.Join(s.dir, name+".log"), Ready: "http://" + addr + "/healthz",
		Args: []string{"router", "--nats", s.urls(), "--nats-credentials", s.credFile, "--name", name, "--replicas", "3",
			"--listen", addr, "--adapter-lease", leaseTTL.String(), "--source", "sim", "--speed", "10", "--rate", "20",
			"--tenants", "2", "--groups", "5", "--log-format", "json"}}
	if err := p.Start(s.ctx(), time.Minute); err != nil {
		s.t.Fatal(err)
	}
	s.adapters = append(s.adapters, p)
	s.adminURL = append(s.adminURL, "http://"+addr)
}

// startGateway starts gateway i.
func (s *stack) startGateway(i int) {
	addr := freeAddr(s.t)
	name := fmt.Sprintf("gateway-%d", i+1)
	p := &process.Process{Name: name, Bin: s.bin, Log: filepath.Join(s.dir, name+".log"), Ready: "http://" + addr + "/readyz",
		Args: []string{"gateway", "--nats", s.urls(), "--nats-credentials", s.credFile, "--listen", addr,
			"--license-seats", "1000", "--seat-lease", "30s", "--drain-delay", "1500ms", "--keepalive", "5s", "--log-format", "json"}}
	if err := p.Start(s.ctx(), time.Minute); err != nil {
		s.t.Fatal(err)
	}
	s.gateways = append(s.gateways, p)
	s.gwAddr = append(s.gwAddr, addr)
}

// startHAProxy starts HAProxy in front of the gateways, checking /readyz.
func (s *stack) startHAProxy(bin string) {
	s.lbAddr = freeAddr(s.t)
	stats := freeAddr(s.t)
	cfg := fmt.Sprintf(`global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend sis
    bind %s
    default_backend gateways
frontend stats
    bind %s
    http-request return status 200 content-type text/plain string ok if { path /up }
backend gateways
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 250ms fall 2 rise 1
    server gateway-1 %s check
    server gateway-2 %s check
`, s.lbAddr, stats, s.gwAddr[0], s.gwAddr[1])
	file := filepath.Join(s.dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.lb = &process.Process{Name: "haproxy", Bin: bin, Args: []string{"-db", "-f", file}, Log: filepath.Join(s.dir, "haproxy.log"),
		Ready: "http://" + stats + "/up"}
	if err := s.lb.Start(s.ctx(), 30*time.Second); err != nil {
		s.t.Fatal(err)
	}
}

// activeAdapter returns the index of the adapter whose /readyz says ready
// (the active one), waiting up to d; -1 if none is.
func (s *stack) activeAdapter(d time.Duration) int {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for i, base := range s.adminURL {
			if code := status(base + "/readyz"); code == http.StatusOK {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// status GETs url and returns its status code, 0 if it does not answer
// within a second (a process stopped by SIGSTOP takes the connection and
// never answers).
func status(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	code, _, _ := process.Get(ctx, url)
	return code
}

// stopAll stops every process (SIGTERM, then SIGKILL) and, on a failure,
// shows the end of each log.
func (s *stack) stopAll() {
	var all []*process.Process
	if s.lb != nil {
		all = append(all, s.lb)
	}
	all = append(all, s.gateways...)
	all = append(all, s.adapters...)
	for _, n := range s.nats {
		all = append(all, n.Process)
	}
	for _, p := range all {
		_ = p.Stop(syscall.SIGTERM, 15*time.Second)
	}
	// TOPO_KEEP=DIR keeps every process's whole log in DIR, passed or
	// failed; a failure prints the end of each.
	keep := os.Getenv("TOPO_KEEP")
	for _, p := range all {
		if keep == "" && !s.t.Failed() {
			break
		}
		data, _ := os.ReadFile(p.Log)
		if keep != "" {
			_ = os.WriteFile(filepath.Join(keep, p.Name+".log"), data, 0o644)
		}
		if s.t.Failed() {
			s.t.Logf("--- end of %s's log:\n%s", p.Name, data[max(0, len(data)-3000):])
		}
	}
}
