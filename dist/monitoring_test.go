package dist

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/scheduler"
)

// exported returns every metric name a running daemon exports: the families of a
// Metrics set up as `hexcron run` sets it up, with a histogram's _bucket, _sum and
// _count series.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := scheduler.NewMetrics("test")
	conf, err := planner.Parse("test.yaml", []byte("schedules:\n  - {name: s, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: \"0 * * * *\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FollowConfig(context.Background(), conf, noSuccess{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	m.SetLastSuccess("s", time.Now())
	m.SetClientStats(func() hexclient.Stats { return hexclient.Stats{} })
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		case dto.MetricType_SUMMARY:
			for _, s := range []string{"_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}

type noSuccess struct{}

func (noSuccess) LastSuccess(context.Context) (map[string]time.Time, error) { return nil, nil }

// metricRE finds the names of hexcron's own, Go runtime and process metrics in a query
// (label names and functions never start with these prefixes).
var metricRE = regexp.MustCompile(`\b(?:hexcron|go|process|promhttp)_[a-zA-Z0-9_:]*`)

// dashboardExprs returns every "expr" of the dashboard, with the panel it belongs to.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", "hexcron.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("grafana/hexcron.json: %v", err)
	}
	out := map[string]string{}
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = title
			}
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					out[s] = where
				} else {
					walk(x, where)
				}
			}
		case []any:
			for _, x := range v {
				walk(x, where)
			}
		}
	}
	walk(doc, "")
	if len(out) < 10 {
		t.Fatalf("only %d queries found in the dashboard", len(out))
	}
	return out
}

// ruleExprs returns every expr of systemd/hexcron.rules.yml, by alert name.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "systemd", "hexcron.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out[r.Expr] = r.Alert
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d rules found", len(out))
	}
	return out
}

// TestQueriesUseExportedMetrics: every metric the dashboard and the alert rules query is
// one the daemon exports, so that a renamed metric cannot leave a panel empty or an
// alert silent.
func TestQueriesUseExportedMetrics(t *testing.T) {
	names := exported(t)
	for _, src := range []struct {
		file  string
		exprs map[string]string
	}{
		{"dist/grafana/hexcron.json", dashboardExprs(t)},
		{"systemd/hexcron.rules.yml", ruleExprs(t)},
	} {
		used := 0
		for expr, where := range src.exprs {
			for _, name := range metricRE.FindAllString(expr, -1) {
				used++
				if !names[name] {
					t.Errorf("%s (%s): %s is not a metric the daemon exports\n  %s", src.file, where, name, expr)
				}
			}
		}
		if used == 0 {
			t.Errorf("%s: no metric names found", src.file)
		}
	}
}

// TestDashboardQueriesParse runs every dashboard query, with Grafana's variables
// filled in, through promtool as a recording rule: a query Prometheus would reject
// fails here.
func TestDashboardQueriesParse(t *testing.T) {
	pt := promtool(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	exprs := dashboardExprs(t)
	keys := make([]string, 0, len(exprs))
	for e := range exprs {
		keys = append(keys, e)
	}
	sort.Strings(keys)
	fill := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	for i, e := range keys {
		q, _ := json.Marshal(fill.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pt, "check", "rules", path).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("SUCCESS")) {
		t.Errorf("promtool check rules on the dashboard's queries: err=%v\n%s\n%s", err, out, b.String())
	}
}

// promtool returns the path of Prometheus's promtool: $PROMTOOL, else the one in PATH.
// Outside CI a missing promtool skips the test; with CI set (CI=true) it fails, so the
// checks cannot silently stop running. .ci/run extracts promtool from Debian's
// prometheus package and sets $PROMTOOL.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	msg := "promtool not found ($PROMTOOL unset, none in PATH): run .ci/run, or extract it from Debian's prometheus package " +
		"(apt-get download prometheus; dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool)"
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("%s (CI=%s requires the promtool checks to run)", msg, ci)
	}
	t.Skip(msg)
	return ""
}
