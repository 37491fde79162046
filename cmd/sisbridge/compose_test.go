package main

import (
	"context"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/access"
)

// This machine has no container engine: docker-compose.yml, the Dockerfile
// and deploy/ are checked here instead of run. The compose file is loaded
// as Docker Compose loads it, every sisbridge command line in it is parsed
// against sisbridge's own flags, deploy/nats.conf is loaded as nats-server
// loads it, and deploy/haproxy.cfg is checked by haproxy when installed.

// loadCompose loads docker-compose.yml as `docker compose` would.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")}, cli.WithWorkingDirectory(root))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// checkArgs parses a sisbridge command line as the binary would and runs
// the checks that need no network or files.
func checkArgs(args []string) error {
	if len(args) == 0 {
		return nil
	}
	switch args[0] {
	case "router":
		fs, c := newRouterCmd(io.Discard)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := checkURLs(c.nf.url); err != nil {
			return err
		}
		if _, _, err := pickSource(c.rf.source, &c.rf.sf, &c.rf.ff, strings.NewReader(""), zerolog.Nop()); err != nil {
			return err
		}
		return c.rf.af.config().WithDefaults().Validate()
	case "gateway":
		fs, c := newGatewayCmd(io.Discard)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := checkURLs(c.nf.url); err != nil {
			return err
		}
		if err := c.gf.check(); err != nil {
			return err
		}
		return c.gf.config().WithDefaults().Validate()
	case "nats-config":
		fs, _ := newNATSConfigCmd(io.Discard)
		return fs.Parse(args[1:])
	case "healthcheck":
		if len(args) != 2 {
			return os.ErrInvalid
		}
		_, err := url.ParseRequestURI(args[1])
		return err
	}
	return os.ErrInvalid
}

// TestComposeFile: the topology of docker-compose.yml is what the scaling
// design says, and everything in it would start.
func TestComposeFile(t *testing.T) {
	p := loadCompose(t)
	want := []string{"adapter-a", "adapter-b", "config", "gateway-1", "gateway-2", "haproxy", "nats-1", "nats-2", "nats-3"}
	if got := p.ServiceNames(); !slices.Equal(sortedCopy(got), want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	pinned := regexp.MustCompile(`^nats:2\.\d+\.\d+(-alpine)?$`)
	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			switch {
			case strings.HasPrefix(name, "nats-"):
				if !pinned.MatchString(s.Image) {
					t.Errorf("image %q: want the official nats image, a pinned 2.x tag", s.Image)
				}
			case name == "haproxy":
				if !strings.HasPrefix(s.Image, "haproxy:") || !hasPort(s, 8080) {
					t.Errorf("image %q, ports %+v: want HAProxy publishing 8080", s.Image, s.Ports)
				}
			default:
				if s.Build == nil || s.Build.Context == "" {
					t.Errorf("not built from the Dockerfile")
				}
				if err := checkArgs(s.Command); err != nil {
					t.Errorf("command %q: %v", s.Command, err)
				}
			}
			if name != "config" && (s.HealthCheck == nil || len(s.HealthCheck.Test) == 0) {
				t.Errorf("no health check")
			}
			if name != "config" && s.Restart == "" {
				t.Errorf("no restart policy")
			}
		})
	}
	checkAdapters(t, p)
}

// checkAdapters: two adapters of one router, named apart, every stream
// replicated on the three nodes.
func checkAdapters(t *testing.T, p *types.Project) {
	t.Helper()
	names := map[string]bool{}
	for _, n := range []string{"adapter-a", "adapter-b"} {
		cmd := strings.Join(p.Services[n].Command, " ")
		if !strings.Contains(cmd, "--replicas 3") || !strings.Contains(cmd, "nats-1:4222,nats://nats-2:4222,nats://nats-3:4222") {
			t.Errorf("%s: %s: want every node and --replicas 3", n, cmd)
		}
		name := regexp.MustCompile(`--name (\S+)`).FindStringSubmatch(cmd)
		if name == nil || names[name[1]] {
			t.Errorf("%s: want a --name of its own", n)
		} else {
			names[name[1]] = true
		}
	}
}

func hasPort(s types.ServiceConfig, port uint32) bool {
	return slices.ContainsFunc(s.Ports, func(p types.ServicePortConfig) bool { return p.Target == port && p.Published != "" })
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// TestDeployNATSConfig: deploy/nats.conf loads as nats-server loads it,
// with the users nats-config writes: a JetStream node of a three-node
// cluster where every role has its user.
func TestDeployNATSConfig(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../deploy/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := access.Generate(access.Roles...)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "auth"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeServerConfig(filepath.Join(dir, "auth", configServer), creds); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SERVER_NAME", "nats-1")
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
	if err != nil {
		t.Fatalf("deploy/nats.conf: %v", err)
	}
	if opts.ServerName != "nats-1" || !opts.JetStream || opts.Cluster.Name == "" || len(opts.Routes) != 3 || len(opts.Users) != len(access.Roles) {
		t.Fatalf("deploy/nats.conf: name %q, JetStream %v, cluster %q with %d routes, %d users",
			opts.ServerName, opts.JetStream, opts.Cluster.Name, len(opts.Routes), len(opts.Users))
	}
}

// TestDeployHAProxyConfig: haproxy itself finds deploy/haproxy.cfg valid
// (skipped where haproxy is not installed, a failure under
// SIS_REQUIRE_ALL=1).
func TestDeployHAProxyConfig(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("SIS_REQUIRE_ALL") == "1" {
			t.Fatal("haproxy is not installed (SIS_REQUIRE_ALL=1)")
		}
		t.Skip("haproxy is not installed")
	}
	out, err := exec.Command(bin, "-c", "-f", "../../deploy/haproxy.cfg").CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

// TestDockerfile: a multi-stage build whose image runs sisbridge as a
// non-root user.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	from := regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(df)
	if len(from) < 2 || user == nil || strings.HasPrefix(user[1], "0") || user[1] == "root" ||
		!strings.Contains(df, "CGO_ENABLED=0") || !strings.Contains(df, `ENTRYPOINT ["/sisbridge"]`) {
		t.Fatalf("Dockerfile: want a multi-stage static build run as a non-root user, entrypoint /sisbridge")
	}
}
