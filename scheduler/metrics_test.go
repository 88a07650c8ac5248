package scheduler

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"hexcron/hexclient"
	"hexcron/planner"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serveMetrics serves m on a real loopback listener and returns its base URL; the
// server is shut down, and Serve's result checked, when the test ends.
func serveMetrics(t *testing.T, m *Metrics, health func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln, health) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// scrape fetches /metrics and parses the text exposition format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, hdr := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, body %q", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// sample finds the metric of family name whose labels are exactly labels.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("metric family %s missing from the scrape", name)
	}
	var seen []string
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		var parts []string
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
			parts = append(parts, lp.GetName()+"="+lp.GetValue())
		}
		seen = append(seen, "{"+strings.Join(parts, ",")+"}")
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	sort.Strings(seen)
	t.Fatalf("%s%v not in the scrape; have %v", name, labels, seen)
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// mustParse parses a config from YAML text.
func mustParse(t *testing.T, text string) *planner.Config {
	t.Helper()
	conf, err := planner.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

const twoSchedules = `
budget:
  triggers: [{limit: 20, per: 1m, reserve: 2}, {limit: 60, per: 1h}]
schedules:
  - {name: daily-report, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "0 6 * * *", timezone: UTC}
  - {name: hourly-sync, project: 9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c, cron: "0 * * * *"}
`

// gatewaySection adds a gateway with clients ci and ops to twoSchedules.
const gatewaySection = `gateway:
  listen: 127.0.0.1:8470
  clients:
    - {name: ci, token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, schedules: [daily-report]}
    - {name: ops, token_sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752, projects: [5a8591dd-4039-49df-9202-96385ba3eff8]}
`

// TestGatewayRequestSeries: every configured client has a series at zero for every
// code the gateway answers with, anonymous has its 401, a request counts by client and
// code, and a reload that removes a client deletes its series.
func TestGatewayRequestSeries(t *testing.T) {
	m := NewMetrics("dev")
	m.SetConfig(mustParse(t, twoSchedules), metricsT0)
	if got := series(gather(t, m), "hexcron_gateway_requests_total"); len(got) != 0 {
		t.Fatalf("without a gateway: %v", got)
	}
	m.SetConfig(mustParse(t, twoSchedules+gatewaySection), metricsT0)
	fams := gather(t, m)
	got := series(fams, "hexcron_gateway_requests_total")
	if len(got) != 2*len(GatewayCodes)+1 {
		t.Fatalf("%d series, want %d: %v", len(got), 2*len(GatewayCodes)+1, got)
	}
	for _, want := range []string{"client=anonymous,code=401", "client=ci,code=429", "client=ops,code=201", "client=ops,code=413"} {
		if !slices.Contains(got, want) {
			t.Errorf("no series %s in %v", want, got)
		}
	}
	for _, mf := range fams["hexcron_gateway_requests_total"].GetMetric() {
		if value(mf) != 0 {
			t.Errorf("a series starts at %v", value(mf))
		}
	}
	m.ObserveGatewayRequest("ci", 429)
	m.ObserveGatewayRequest("ci", 429)
	m.ObserveGatewayRequest("anonymous", 401)
	for _, mf := range gather(t, m)["hexcron_gateway_requests_total"].GetMetric() {
		l := mf.GetLabel()
		want := 0.0
		switch l[0].GetValue() + "/" + l[1].GetValue() {
		case "ci/429":
			want = 2
		case "anonymous/401":
			want = 1
		}
		if value(mf) != want {
			t.Errorf("%s/%s = %v, want %v", l[0].GetValue(), l[1].GetValue(), value(mf), want)
		}
	}
	m.SetConfig(mustParse(t, twoSchedules+strings.Replace(gatewaySection, "    - {name: ops", "    - {name: qa", 1)), metricsT0)
	for _, s := range series(gather(t, m), "hexcron_gateway_requests_total") {
		if strings.Contains(s, "client=ops") {
			t.Fatalf("a removed client's series is left: %s", s)
		}
	}
	m.SetGatewayQueued(3)
	if v := value(gather(t, m)["hexcron_gateway_queued"].GetMetric()[0]); v != 3 {
		t.Errorf("hexcron_gateway_queued = %v", v)
	}
}

// metricsT0 is the instant the metrics tests compute intervals from.
var metricsT0 = time.Date(2026, 11, 30, 11, 30, 0, 0, time.UTC)

// series returns the label sets of family name, each as "k=v,k=v" in label order.
func series(fams map[string]*dto.MetricFamily, name string) []string {
	var out []string
	for _, m := range fams[name].GetMetric() {
		var parts []string
		for _, lp := range m.GetLabel() {
			parts = append(parts, lp.GetName()+"="+lp.GetValue())
		}
		out = append(out, strings.Join(parts, ","))
	}
	sort.Strings(out)
	return out
}

// cross is every "a=x,b=y" of the values of two labels, sorted (labels in the order
// Prometheus prints them: by name).
func cross(l1 string, v1 []string, l2 string, v2 []string) []string {
	var out []string
	for _, a := range v1 {
		for _, b := range v2 {
			if l1 < l2 {
				out = append(out, l1+"="+a+","+l2+"="+b)
			} else {
				out = append(out, l2+"="+b+","+l1+"="+a)
			}
		}
	}
	sort.Strings(out)
	return out
}

func labelled(l string, vs ...string) []string {
	var out []string
	for _, v := range vs {
		out = append(out, l+"="+v)
	}
	sort.Strings(out)
	return out
}

// TestMetricsFirstScrape: before any event, every label value of every counter is
// exported at 0 (per configured schedule for the schedule-labelled ones), with
// hexcron_build_info and each rule's budget limit.
func TestMetricsFirstScrape(t *testing.T) {
	m := NewMetrics("v1.2.3")
	m.SetConfig(mustParse(t, twoSchedules), metricsT0)
	fams := scrape(t, serveMetrics(t, m, nil))

	scheds := []string{"daily-report", "hourly-sync"}
	want := map[string][]string{
		"hexcron_triggers_total":         cross("schedule", scheds, "outcome", []string{"created", "adopted", "failed", "window_closed", "unknown"}),
		"hexcron_skips_total":            cross("schedule", scheds, "reason", []string{"overlap", "max_running", "unplaced", "window_closed", "missed", "interrupted", "removed", "forbidden", "paused"}),
		"hexcron_runs_total":             cross("schedule", scheds, "status", []string{"completed", "errored", "killed", "timed_out", "unable_to_allocate", "unknown"}),
		"hexcron_trigger_attempts_total": labelled("class", "ok", "rate_limited", "kernel_cap", "ambiguous", "auth", "permanent", "unreachable", "canceled", "forbidden"),
		"hexcron_trigger_holds_total":    labelled("reason", "kernel_cap", "rate_limited", "auth", "forbidden"),
		"hexcron_reconciles_total":       labelled("result", "adopted", "none", "error"),
		"hexcron_rate_limited_total":     labelled("predicted", "true", "false"),
		"hexcron_config_reloads_total":   labelled("result", "success", "failure"),
	}
	for name, w := range want {
		if got := series(fams, name); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("%s series:\n got %v\nwant %v", name, got, w)
		}
		for _, m := range fams[name].GetMetric() {
			if v := value(m); v != 0 {
				t.Errorf("%s %v = %v before any event, want 0", name, m.GetLabel(), v)
			}
		}
	}
	// Every counter hexcron exports is in the list above: a new one must start at zero too.
	for name, f := range fams {
		if strings.HasPrefix(name, "hexcron_") && f.GetType() == dto.MetricType_COUNTER {
			if _, ok := want[name]; !ok {
				t.Errorf("counter %s is not checked for zero series at the first scrape", name)
			}
		}
	}
	if v := value(sample(t, fams, "hexcron_build_info", map[string]string{"version": "v1.2.3", "goversion": runtime.Version()})); v != 1 {
		t.Errorf("hexcron_build_info = %v, want 1", v)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hexcron_budget_limit", map[string]string{"rule": "20/1m"}, 18},
		{"hexcron_budget_limit", map[string]string{"rule": "60/1h"}, 60},
		{"hexcron_budget_used", map[string]string{"rule": "20/1m"}, 0},
		{"hexcron_schedule_interval_seconds", map[string]string{"schedule": "daily-report"}, 86400},
		{"hexcron_schedule_interval_seconds", map[string]string{"schedule": "hourly-sync"}, 3600},
		{"hexcron_config_last_reload_successful", nil, 1},
		{"hexcron_paused_schedules", nil, 0},
	} {
		if got := value(sample(t, fams, c.name, c.labels)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if f, ok := fams["hexcron_last_success_timestamp_seconds"]; ok {
		t.Errorf("last success exported before any success: %v", f)
	}
}

func TestMetricsScrape(t *testing.T) {
	m := NewMetrics("dev")
	m.SetConfig(mustParse(t, twoSchedules), metricsT0)
	base := serveMetrics(t, m, nil)

	m.ObserveTrigger("hourly-sync", outcomeCreated)
	m.ObserveTrigger("hourly-sync", outcomeCreated)
	m.ObserveTrigger("daily-report", outcomeWindowClosed)
	m.ObserveSkip("daily-report", skipWindowClosed)
	m.ObserveSkip("hourly-sync", skipOverlap)
	m.ObserveRun("hourly-sync", "completed")
	m.ObserveRun("hourly-sync", "completed")
	m.ObserveRun("daily-report", "completed")
	m.ObserveRun("hourly-sync", "errored")
	m.SetBudget("20/1m", 7, 18)
	m.SetBudget("60/1h", 41, 60)
	m.SetBudget("20/1m", 9, 18) // a later value replaces the earlier one
	m.ObserveLateness(200 * time.Millisecond)
	m.ObserveLateness(3 * time.Second)
	m.ObserveLateness(90 * time.Second)
	next := time.Date(2026, 11, 30, 12, 0, 0, 250_000_000, time.UTC)
	m.SetNextFiring(next)
	m.SetLoop(metricsT0, 3)
	m.SetRunsInFlight(5)
	m.Observe429(true)
	m.Observe429(false)
	m.Observe429(false)
	m.ObserveReconcile("adopted")
	m.ObserveReconcile("none")
	m.ObserveReconcile("adopted")
	lastOK := time.Date(2026, 11, 30, 11, 30, 15, 500_000_000, time.UTC)
	m.SetLastSuccess("daily-report", lastOK)
	m.SetLastSuccess("daily-report", lastOK.Add(-time.Hour)) // an older success reported late
	m.ObserveReload(true)
	m.ObserveReload(false)
	m.ObserveReload(true)
	m.OnTrigger("ok")
	m.OnTrigger("ambiguous")
	m.OnTrigger("ok")
	m.OnTrigger("trigger_created") // counted by the daemon through ObserveTrigger, not here
	m.On429(false)
	m.OnReconcile("error")
	m.OnHold("kernel_cap", time.Time{})
	m.SetClientStats(func() hexclient.Stats {
		return hexclient.Stats{AuthPaused: true, ReadsUsed: 12, ReadsLimit: 60, StatusUsed: 7, StatusLimit: 30}
	})

	fams := scrape(t, base)
	if f := fams["hexcron_trigger_attempts_total"]; len(f.GetMetric()) != 9 {
		t.Errorf("hexcron_trigger_attempts_total has %d series, want the 9 classes: %v", len(f.GetMetric()), f)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hexcron_triggers_total", map[string]string{"schedule": "hourly-sync", "outcome": "created"}, 2},
		{"hexcron_triggers_total", map[string]string{"schedule": "daily-report", "outcome": "created"}, 0},
		{"hexcron_triggers_total", map[string]string{"schedule": "daily-report", "outcome": "window_closed"}, 1},
		{"hexcron_skips_total", map[string]string{"schedule": "daily-report", "reason": "window_closed"}, 1},
		{"hexcron_skips_total", map[string]string{"schedule": "hourly-sync", "reason": "overlap"}, 1},
		{"hexcron_runs_total", map[string]string{"schedule": "hourly-sync", "status": "completed"}, 2},
		{"hexcron_runs_total", map[string]string{"schedule": "daily-report", "status": "completed"}, 1},
		{"hexcron_runs_total", map[string]string{"schedule": "hourly-sync", "status": "errored"}, 1},
		{"hexcron_budget_used", map[string]string{"rule": "20/1m"}, 9},
		{"hexcron_budget_limit", map[string]string{"rule": "20/1m"}, 18},
		{"hexcron_budget_used", map[string]string{"rule": "60/1h"}, 41},
		{"hexcron_budget_limit", map[string]string{"rule": "60/1h"}, 60},
		{"hexcron_next_firing_timestamp_seconds", nil, float64(next.Unix()) + 0.25},
		{"hexcron_loop_last_run_timestamp_seconds", nil, float64(metricsT0.Unix())},
		{"hexcron_triggers_in_flight", nil, 3},
		{"hexcron_runs_in_flight", nil, 5},
		{"hexcron_rate_limited_total", map[string]string{"predicted": "true"}, 1},
		{"hexcron_rate_limited_total", map[string]string{"predicted": "false"}, 3},
		{"hexcron_trigger_attempts_total", map[string]string{"class": "ok"}, 2},
		{"hexcron_trigger_attempts_total", map[string]string{"class": "ambiguous"}, 1},
		{"hexcron_trigger_attempts_total", map[string]string{"class": "auth"}, 0},
		{"hexcron_reconciles_total", map[string]string{"result": "adopted"}, 2},
		{"hexcron_reconciles_total", map[string]string{"result": "none"}, 1},
		{"hexcron_reconciles_total", map[string]string{"result": "error"}, 1},
		{"hexcron_trigger_holds_total", map[string]string{"reason": "kernel_cap"}, 1},
		{"hexcron_last_success_timestamp_seconds", map[string]string{"schedule": "daily-report"}, float64(lastOK.Unix()) + 0.5},
		{"hexcron_config_reloads_total", map[string]string{"result": "success"}, 2},
		{"hexcron_config_reloads_total", map[string]string{"result": "failure"}, 1},
		{"hexcron_config_last_reload_successful", nil, 1},
		{"hexcron_auth_paused", nil, 1},
		{"hexcron_read_budget_used", map[string]string{"group": "all"}, 12},
		{"hexcron_read_budget_limit", map[string]string{"group": "all"}, 60},
		{"hexcron_read_budget_used", map[string]string{"group": "status"}, 7},
		{"hexcron_read_budget_limit", map[string]string{"group": "status"}, 30},
	}
	for _, tt := range tests {
		if got := value(sample(t, fams, tt.name, tt.labels)); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	h := sample(t, fams, "hexcron_trigger_lateness_seconds", nil).GetHistogram()
	if h.GetSampleCount() != 3 || h.GetSampleSum() != 93.2 {
		t.Errorf("lateness histogram: count %d sum %v, want 3 and 93.2", h.GetSampleCount(), h.GetSampleSum())
	}
	cum := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	for le, want := range map[float64]uint64{0.5: 1, 1: 1, 5: 2, 60: 2, 120: 3, 7200: 3} {
		if got, ok := cum[le]; !ok || got != want {
			t.Errorf("lateness bucket le=%v: %d (present %v), want %d", le, got, ok, want)
		}
	}

	// A failed reload shows until the next good config.
	m.ObserveReload(false)
	if v := value(sample(t, scrape(t, base), "hexcron_config_last_reload_successful", nil)); v != 0 {
		t.Errorf("hexcron_config_last_reload_successful = %v after a failed reload, want 0", v)
	}
	m.SetConfig(mustParse(t, twoSchedules), metricsT0)
	if v := value(sample(t, scrape(t, base), "hexcron_config_last_reload_successful", nil)); v != 1 {
		t.Errorf("hexcron_config_last_reload_successful = %v after a good reload, want 1", v)
	}
	m.SetNextFiring(time.Time{})
	if v := value(sample(t, scrape(t, base), "hexcron_next_firing_timestamp_seconds", nil)); v != 0 {
		t.Errorf("hexcron_next_firing_timestamp_seconds = %v with nothing planned, want 0", v)
	}

	// The Go and process collectors are registered in the same registry.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: Go/process collectors not registered", name)
		}
	}
}

// TestMetricsFollowConfig: a reload that removes a schedule deletes its series (the
// label values stay bounded by the config), keeps the others' counts, creates the new
// schedule's series at zero, and follows a changed budget rule. A run of the removed
// schedule that ends later is still counted, until the next reload.
func TestMetricsFollowConfig(t *testing.T) {
	m := NewMetrics("dev")
	m.SetConfig(mustParse(t, twoSchedules), metricsT0)
	m.ObserveTrigger("hourly-sync", outcomeCreated)
	m.ObserveTrigger("daily-report", outcomeCreated)
	m.SetLastSuccess("daily-report", metricsT0)
	m.SetLastSuccess("hourly-sync", metricsT0)
	m.SetBudget("20/1m", 4, 18)

	m.SetConfig(mustParse(t, `
budget:
  triggers: [{limit: 20, per: 1m}, {limit: 50, per: 1h}]
schedules:
  - {name: hourly-sync, project: 9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c, cron: "0 * * * *"}
  - {name: weekday-close, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "0 18 * * 1-5", timezone: UTC}
`), metricsT0)
	fams := gather(t, m)
	for _, name := range []string{"hexcron_triggers_total", "hexcron_skips_total", "hexcron_runs_total",
		"hexcron_last_success_timestamp_seconds", "hexcron_schedule_interval_seconds"} {
		for _, s := range series(fams, name) {
			if strings.Contains(s, "daily-report") {
				t.Errorf("%s{%s} still exported after its schedule was removed", name, s)
			}
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hexcron_triggers_total", map[string]string{"schedule": "hourly-sync", "outcome": "created"}, 1},
		{"hexcron_triggers_total", map[string]string{"schedule": "weekday-close", "outcome": "created"}, 0},
		{"hexcron_last_success_timestamp_seconds", map[string]string{"schedule": "hourly-sync"}, float64(metricsT0.Unix())},
		{"hexcron_schedule_interval_seconds", map[string]string{"schedule": "weekday-close"}, 3 * 86400}, // Friday to Monday
		{"hexcron_budget_limit", map[string]string{"rule": "20/1m"}, 20},
		{"hexcron_budget_used", map[string]string{"rule": "20/1m"}, 4},
		{"hexcron_budget_limit", map[string]string{"rule": "50/1h"}, 50},
	} {
		if got := value(sample(t, fams, c.name, c.labels)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := series(fams, "hexcron_budget_limit"); strings.Join(got, " ") != "rule=20/1m rule=50/1h" {
		t.Errorf("budget rules after the reload: %v, want 20/1m and 50/1h only", got)
	}

	// A run of the removed schedule ends after the reload: counted, not lost.
	m.ObserveRun("daily-report", "completed")
	fams = gather(t, m)
	if got := value(sample(t, fams, "hexcron_runs_total", map[string]string{"schedule": "daily-report", "status": "completed"})); got != 1 {
		t.Errorf("run of a removed schedule: counted %v, want 1", got)
	}
	// ... and gone at the next reload.
	m.SetConfig(mustParse(t, twoSchedules[:strings.Index(twoSchedules, "  - {name: daily-report")]+
		"  - {name: hourly-sync, project: 9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c, cron: \"0 * * * *\"}\n"), metricsT0)
	for _, s := range series(gather(t, m), "hexcron_runs_total") {
		if strings.Contains(s, "daily-report") {
			t.Errorf("hexcron_runs_total{%s} still exported at the reload after its schedule was removed", s)
		}
	}
}

// gather reads the registry directly (no HTTP), for tests inside synctest bubbles.
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fs {
		out[f.GetName()] = f
	}
	return out
}

func TestLongestGap(t *testing.T) {
	tests := []struct {
		cron string
		want time.Duration // 0: none
	}{
		{"*/10 * * * *", 10 * time.Minute},
		{"* * * * * *", time.Second},
		{"@every 90m", 90 * time.Minute},
		{"0 6 * * *", 24 * time.Hour},
		{"0 18 * * 1-5", 72 * time.Hour},                   // Friday to Monday
		{"*/5 9-17 * * 1-5", 63*time.Hour + 5*time.Minute}, // Friday 17:55 to Monday 09:00
		{"0 3 1 * *", 31 * 24 * time.Hour},                 // the longest month
		{"0 0 1 1 *", 365 * 24 * time.Hour},                // 2027 and 2028 (leap year) begin 365 days apart
		{"0 0 29 2 *", 0},                                  // one instant in two years: no interval
	}
	for _, tt := range tests {
		t.Run(tt.cron, func(t *testing.T) {
			conf := mustParse(t, "budget: {triggers: [{limit: 1000, per: 1s}]}\nschedules:\n  - {name: s, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: \""+tt.cron+"\", timezone: UTC}\n")
			got, ok := longestGap(&conf.Schedules[0], metricsT0)
			if ok != (tt.want > 0) || got != tt.want {
				t.Errorf("longestGap = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

func TestMetricsOwnRegistry(t *testing.T) {
	// Two instances in one process must not collide, which they would on the global registry.
	a, b := NewMetrics("dev"), NewMetrics("dev")
	a.ObserveRun("s", "completed")
	fams := scrape(t, serveMetrics(t, b, nil))
	if f, ok := fams["hexcron_runs_total"]; ok && len(f.GetMetric()) > 0 {
		t.Errorf("metrics of one instance leaked into another: %v", f)
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name     string
		health   func() error
		wantCode int
		wantBody string
	}{
		{"no health func", nil, http.StatusOK, "ok\n"},
		{"healthy", func() error { return nil }, http.StatusOK, "ok\n"},
		{"unhealthy", func() error { return errors.New("database locked") }, http.StatusServiceUnavailable, "unhealthy: database locked\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := serveMetrics(t, NewMetrics("dev"), tt.health)
			code, body, _ := get(t, base+"/healthz")
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("GET /healthz = %d %q, want %d %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestMetricsNilSafe(t *testing.T) {
	var m *Metrics
	// None of these may panic: the daemon passes a nil *Metrics when metrics are off.
	m.SetConfig(mustParse(t, twoSchedules), metricsT0)
	m.SetClientStats(func() hexclient.Stats { return hexclient.Stats{} })
	m.ObserveTrigger("s", outcomeCreated)
	m.ObserveSkip("s", skipOverlap)
	m.ObserveRun("s", "completed")
	m.SetBudget("20/1m", 1, 20)
	m.ObserveLateness(time.Second)
	m.SetNextFiring(metricsT0)
	m.SetLoop(metricsT0, 1)
	m.SetRunsInFlight(1)
	m.Observe429(true)
	m.ObserveReconcile("adopted")
	m.SetLastSuccess("s", time.Unix(0, 0))
	m.ObserveReload(true)
	m.OnTrigger("ok")
	m.On429(true)
	m.OnReconcile("none")
	m.OnHold("auth", time.Time{})
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	base := serveMetrics(t, m, nil)
	if code, _, _ := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Errorf("nil Metrics: GET /metrics = %d, want 404", code)
	}
	if code, body, _ := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("nil Metrics: GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewMetrics("dev").Serve(ctx, ln, nil) }()
	if code, _, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz = %d before cancel", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v after cancel, want nil", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("listener still accepts connections after Serve returned")
	}
}

// docRowRE is one row of the metrics table of docs/operations.md:
// | `name` | type | `label`, `label` | HELP text |
var docRowRE = regexp.MustCompile("^\\| `(hexcron_[a-z0-9_]+)` \\| ([a-z]+) \\| ([^|]*) \\| (.+) \\|$")

// TestMetricsDocumented: docs/operations.md has one row per metric hexcron exports, with
// its type, its labels and, as its meaning, exactly its HELP text; and no row for a
// metric that does not exist.
func TestMetricsDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ typ, labels, help string }
	doc := map[string]row{}
	for _, l := range strings.Split(string(b), "\n") {
		m := docRowRE.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		if _, dup := doc[m[1]]; dup {
			t.Errorf("docs/operations.md: two rows for %s", m[1])
		}
		doc[m[1]] = row{m[2], strings.TrimSpace(m[3]), m[4]}
	}

	m := NewMetrics("dev")
	m.SetConfig(mustParse(t, twoSchedules+gatewaySection), metricsT0)
	m.SetLastSuccess("hourly-sync", metricsT0)
	m.SetClientStats(func() hexclient.Stats { return hexclient.Stats{} })
	fams := gather(t, m)
	for name, f := range fams {
		if !strings.HasPrefix(name, "hexcron_") {
			continue
		}
		r, ok := doc[name]
		if !ok {
			t.Errorf("docs/operations.md has no row for %s (want: | `%s` | %s | %s | %s |)", name, name,
				strings.ToLower(f.GetType().String()), docLabels(f), f.GetHelp())
			continue
		}
		if want := strings.ToLower(f.GetType().String()); r.typ != want {
			t.Errorf("docs/operations.md: %s is a %s, the doc says %s", name, want, r.typ)
		}
		if want := docLabels(f); r.labels != want {
			t.Errorf("docs/operations.md: %s has labels %q, the doc says %q", name, want, r.labels)
		}
		if r.help != f.GetHelp() {
			t.Errorf("docs/operations.md: %s's meaning and its HELP differ:\n doc: %s\nHELP: %s", name, r.help, f.GetHelp())
		}
	}
	for name := range doc {
		if _, ok := fams[name]; !ok {
			t.Errorf("docs/operations.md documents %s, which hexcron does not export", name)
		}
	}
}

// docLabels is how the doc's table lists a family's label names: "`a`, `b`" sorted by
// name (as Prometheus prints them), or "" for none.
func docLabels(f *dto.MetricFamily) string {
	var names []string
	if ms := f.GetMetric(); len(ms) > 0 {
		for _, lp := range ms[0].GetLabel() {
			names = append(names, "`"+lp.GetName()+"`")
		}
	}
	return strings.Join(names, ", ")
}
