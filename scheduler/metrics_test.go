package scheduler

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

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

func TestMetricsScrape(t *testing.T) {
	m := NewMetrics()
	base := serveMetrics(t, m, nil)

	// Before any event the closed label sets are already exported at zero.
	fams := scrape(t, base)
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"hexcron_rate_limited_total", map[string]string{"predicted": "true"}},
		{"hexcron_rate_limited_total", map[string]string{"predicted": "false"}},
		{"hexcron_config_reloads_total", map[string]string{"result": "success"}},
		{"hexcron_config_reloads_total", map[string]string{"result": "failure"}},
	} {
		if v := value(sample(t, fams, c.name, c.labels)); v != 0 {
			t.Errorf("before events: %s%v = %v, want 0", c.name, c.labels, v)
		}
	}

	m.ObserveTrigger("created")
	m.ObserveTrigger("created")
	m.ObserveTrigger("rate_limited")
	m.ObserveRun("COMPLETED")
	m.ObserveRun("COMPLETED")
	m.ObserveRun("COMPLETED")
	m.ObserveRun("ERRORED")
	m.SetBudget("20/1m", 7, 18)
	m.SetBudget("60/1h", 41, 60)
	m.SetBudget("20/1m", 9, 18) // a later value replaces the earlier one
	m.ObserveDelay(0)
	m.ObserveDelay(3 * time.Second)
	m.ObserveDelay(90 * time.Second)
	m.SetNextFiring(42500 * time.Millisecond)
	m.Observe429(true)
	m.Observe429(false)
	m.Observe429(false)
	m.ObserveReconcile("adopted")
	m.ObserveReconcile("retriggered")
	m.ObserveReconcile("adopted")
	lastOK := time.Date(2026, 11, 30, 11, 30, 15, 500_000_000, time.UTC)
	m.SetLastSuccess("daily-report", lastOK)
	m.ObserveReload(true)
	m.ObserveReload(false)
	m.ObserveReload(true)
	m.OnTrigger("ok")
	m.OnTrigger("ambiguous")
	m.OnTrigger("ok")
	m.OnTrigger("trigger_created") // counted by the daemon through ObserveTrigger, not here
	m.On429(false)
	m.OnReconcile("none")
	m.OnHold("kernel_cap", time.Time{})

	fams = scrape(t, base)
	if f := fams["hexcron_triggers_total"]; len(f.GetMetric()) != 2 {
		t.Errorf("hexcron_triggers_total has %d series, want 2 (created, rate_limited): %v", len(f.GetMetric()), f)
	}
	if f := fams["hexcron_trigger_attempts_total"]; len(f.GetMetric()) != 2 {
		t.Errorf("hexcron_trigger_attempts_total has %d series, want 2 (ok, ambiguous): %v", len(f.GetMetric()), f)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hexcron_triggers_total", map[string]string{"outcome": "created"}, 2},
		{"hexcron_triggers_total", map[string]string{"outcome": "rate_limited"}, 1},
		{"hexcron_runs_total", map[string]string{"status": "COMPLETED"}, 3},
		{"hexcron_runs_total", map[string]string{"status": "ERRORED"}, 1},
		{"hexcron_budget_used", map[string]string{"rule": "20/1m"}, 9},
		{"hexcron_budget_limit", map[string]string{"rule": "20/1m"}, 18},
		{"hexcron_budget_used", map[string]string{"rule": "60/1h"}, 41},
		{"hexcron_budget_limit", map[string]string{"rule": "60/1h"}, 60},
		{"hexcron_next_firing_seconds", nil, 42.5},
		{"hexcron_rate_limited_total", map[string]string{"predicted": "true"}, 1},
		{"hexcron_rate_limited_total", map[string]string{"predicted": "false"}, 3},
		{"hexcron_trigger_attempts_total", map[string]string{"class": "ok"}, 2},
		{"hexcron_trigger_attempts_total", map[string]string{"class": "ambiguous"}, 1},
		{"hexcron_reconciles_total", map[string]string{"result": "none"}, 1},
		{"hexcron_trigger_holds_total", map[string]string{"reason": "kernel_cap"}, 1},
		{"hexcron_reconciles_total", map[string]string{"result": "adopted"}, 2},
		{"hexcron_reconciles_total", map[string]string{"result": "retriggered"}, 1},
		{"hexcron_last_success_timestamp_seconds", map[string]string{"schedule": "daily-report"}, float64(lastOK.Unix()) + 0.5},
		{"hexcron_config_reloads_total", map[string]string{"result": "success"}, 2},
		{"hexcron_config_reloads_total", map[string]string{"result": "failure"}, 1},
	}
	for _, tt := range tests {
		if got := value(sample(t, fams, tt.name, tt.labels)); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	// Types follow the naming conventions: _total are counters, the rest gauges.
	for name, want := range map[string]dto.MetricType{
		"hexcron_triggers_total":                 dto.MetricType_COUNTER,
		"hexcron_runs_total":                     dto.MetricType_COUNTER,
		"hexcron_rate_limited_total":             dto.MetricType_COUNTER,
		"hexcron_reconciles_total":               dto.MetricType_COUNTER,
		"hexcron_config_reloads_total":           dto.MetricType_COUNTER,
		"hexcron_budget_used":                    dto.MetricType_GAUGE,
		"hexcron_budget_limit":                   dto.MetricType_GAUGE,
		"hexcron_next_firing_seconds":            dto.MetricType_GAUGE,
		"hexcron_last_success_timestamp_seconds": dto.MetricType_GAUGE,
		"hexcron_trigger_delay_seconds":          dto.MetricType_HISTOGRAM,
	} {
		if got := fams[name].GetType(); got != want {
			t.Errorf("%s has type %v, want %v", name, got, want)
		}
	}

	h := sample(t, fams, "hexcron_trigger_delay_seconds", nil).GetHistogram()
	if h.GetSampleCount() != 3 || h.GetSampleSum() != 93 {
		t.Errorf("delay histogram: count %d sum %v, want 3 and 93", h.GetSampleCount(), h.GetSampleSum())
	}
	cum := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	for le, want := range map[float64]uint64{0: 1, 1: 1, 5: 2, 60: 2, 120: 3, 7200: 3} {
		if got, ok := cum[le]; !ok || got != want {
			t.Errorf("delay bucket le=%v: %d (present %v), want %d", le, got, ok, want)
		}
	}

	// The Go and process collectors are registered in the same registry.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: Go/process collectors not registered", name)
		}
	}
}

func TestMetricsOwnRegistry(t *testing.T) {
	// Two instances in one process must not collide, which they would on the global registry.
	a, b := NewMetrics(), NewMetrics()
	a.ObserveRun("COMPLETED")
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
			base := serveMetrics(t, NewMetrics(), tt.health)
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
	m.ObserveTrigger("created")
	m.ObserveRun("COMPLETED")
	m.SetBudget("20/1m", 1, 20)
	m.ObserveDelay(time.Second)
	m.SetNextFiring(time.Second)
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
	go func() { done <- NewMetrics().Serve(ctx, ln, nil) }()
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
