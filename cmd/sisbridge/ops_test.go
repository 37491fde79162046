package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// metricName is a metric of ours in a PromQL expression.
var metricName = regexp.MustCompile(`\bsis_[a-z0-9_]+`)

// opsExpressions returns every PromQL expression of the Grafana dashboard
// and of the alert rules, by where they are.
func opsExpressions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	raw, err := os.ReadFile("../../deploy/grafana/sisbridge.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			out[fmt.Sprintf("dashboard %q target %d", p.Title, i)] = tg.Expr
		}
	}
	raw, err = os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alert rules: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	return out
}

// TestDashboardAndAlertsNameExportedMetrics: every metric the Grafana
// dashboard and the alert rules name is exported by a running `sisbridge
// run` (its gateway, seat pool and adapter on one /metrics); the rules
// pass promtool where it is installed (required with SIS_REQUIRE_ALL=1).
func TestDashboardAndAlertsNameExportedMetrics(t *testing.T) {
	exprs := opsExpressions(t)
	if len(exprs) < 20 {
		t.Fatalf("only %d expressions in the dashboard and the rules", len(exprs))
	}
	listen := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var stderr lockedBuffer
	go func() {
		done <- run(ctx, []string{"run", "--data-dir", t.TempDir(), "--nats-listen", freeAddr(t), "--listen", listen, "--log-format", "json"}, strings.NewReader(""), &stderr)
	}()
	var metrics string
	until(t, "the adapter's and the seats' metrics", func() bool {
		code, body := get("http://" + listen + "/metrics")
		metrics = body
		return code == 200 && strings.Contains(body, "sis_adapter_active") && strings.Contains(body, "sis_seats_total")
	})
	exported := map[string]bool{}
	for _, line := range strings.Split(metrics, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(name)
			exported[f[0]] = true
			if f[1] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[f[0]+s] = true
				}
			}
		}
	}
	for where, expr := range exprs {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s names no metric of ours: %s", where, expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s names %s, which nothing exports", where, n)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	promtool(t)
}

// promtool checks the rules with Prometheus's own tool.
func promtool(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SIS_REQUIRE_ALL") == "1" {
			t.Fatal("no promtool in PATH (Debian: apt-get install prometheus)")
		}
		t.Log("no promtool in PATH: the rules' syntax is not checked")
		return
	}
	out, err := exec.Command(bin, "check", "rules", "../../deploy/prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
