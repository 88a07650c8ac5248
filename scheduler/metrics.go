package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values of the metrics whose label sets are closed; they are created at zero when
// Metrics is built so that a rate() or an absent() alert works before the first event.
const (
	reloadSuccess = "success"
	reloadFailure = "failure"
)

// delayBuckets are the upper bounds, in seconds, of hexcron_trigger_delay_seconds: a
// firing placed at its nominal instant lands in the 0 bucket; windows are minutes to hours.
var delayBuckets = []float64{0, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200}

// Metrics holds the daemon's Prometheus metrics in a registry of its own (never the
// global default one). Every method is safe on a nil *Metrics, so the daemon runs with
// metrics off by passing nil; every method is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	triggers    *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	holds       *prometheus.CounterVec
	runs        *prometheus.CounterVec
	budgetUsed  *prometheus.GaugeVec
	budgetLimit *prometheus.GaugeVec
	delay       prometheus.Histogram
	nextFiring  prometheus.Gauge
	rateLimited *prometheus.CounterVec
	reconciles  *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	reloads     *prometheus.CounterVec
}

// NewMetrics builds the metrics and registers them, with the Go runtime and process
// collectors, in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_triggers_total",
			Help: "RunProject attempts by outcome (created, rate_limited, ambiguous, ...).",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_trigger_attempts_total",
			Help: "RunProject HTTP attempts by outcome class (ok, rate_limited, kernel_cap, ambiguous, auth, permanent, unreachable, canceled).",
		}, []string{"class"}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_trigger_holds_total",
			Help: "Times triggering was held, by reason (kernel_cap, rate_limited, auth).",
		}, []string{"reason"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_runs_total",
			Help: "Runs that reached a final status, by that status.",
		}, []string{"status"}),
		budgetUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_budget_used",
			Help: "Trigger attempts counted in the current window of each budget rule (e.g. rule=\"20/1m\").",
		}, []string{"rule"}),
		budgetLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_budget_limit",
			Help: "Attempts hexcron allows itself per window of each budget rule (limit minus reserve).",
		}, []string{"rule"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hexcron_trigger_delay_seconds",
			Help:    "Planned instant minus nominal instant of each firing, in seconds.",
			Buckets: delayBuckets,
		}),
		nextFiring: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_next_firing_seconds",
			Help: "Seconds from the last re-plan until the next planned firing.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_rate_limited_total",
			Help: "HTTP 429 responses from Hex; predicted=\"false\" means the ledger believed there was room (another client shares the user).",
		}, []string{"predicted"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_reconciles_total",
			Help: "Reconciliations of ambiguous triggers, by result (adopted, retriggered, gave_up, ...).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful run of each schedule completed.",
		}, []string{"schedule"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_config_reloads_total",
			Help: "Configuration reloads (SIGHUP) by result: success or failure (the old config kept running).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.triggers, m.attempts, m.holds, m.runs, m.budgetUsed, m.budgetLimit, m.delay, m.nextFiring,
		m.rateLimited, m.reconciles, m.lastSuccess, m.reloads,
	)
	m.rateLimited.WithLabelValues("true")
	m.rateLimited.WithLabelValues("false")
	m.reloads.WithLabelValues(reloadSuccess)
	m.reloads.WithLabelValues(reloadFailure)
	return m
}

// Registry returns the registry holding every metric, for tests and for callers that
// want to register collectors of their own (e.g. collectors.NewDBStatsCollector).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves GET /metrics (the Prometheus text format, or what the scraper
// negotiates) and GET /healthz, which answers 200 "ok" when health returns nil (or
// health is nil) and 503 "unhealthy: <err>" otherwise. health must not put secrets in
// its error. On a nil *Metrics, /metrics answers 404 and /healthz still works.
func (m *Metrics) Handler(health func() error) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(m.reg,
			promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if health != nil {
			if err := health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "unhealthy: %s\n", err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve serves Handler(health) on ln until ctx is done, then shuts the server down
// (waiting up to 5s for scrapes in progress) and returns nil. It closes ln. Any other
// error is returned wrapped.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, health func() error) error {
	srv := &http.Server{
		Handler:           m.Handler(health),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down metrics server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// ObserveTrigger counts one RunProject attempt with its outcome class.
func (m *Metrics) ObserveTrigger(outcome string) {
	if m == nil {
		return
	}
	m.triggers.WithLabelValues(outcome).Inc()
}

// ObserveRun counts one run that reached a final status (e.g. COMPLETED, ERRORED,
// KILLED, timed_out).
func (m *Metrics) ObserveRun(status string) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(status).Inc()
}

// SetBudget records, for one budget rule named like "20/1m", how many attempts its
// current window holds and how many hexcron allows itself in it.
func (m *Metrics) SetBudget(rule string, used, limit int) {
	if m == nil {
		return
	}
	m.budgetUsed.WithLabelValues(rule).Set(float64(used))
	m.budgetLimit.WithLabelValues(rule).Set(float64(limit))
}

// ObserveDelay records one firing's planned instant minus its nominal instant.
func (m *Metrics) ObserveDelay(d time.Duration) {
	if m == nil {
		return
	}
	m.delay.Observe(d.Seconds())
}

// SetNextFiring records the time from now until the next planned firing; the daemon
// calls it whenever it re-arms its timer.
func (m *Metrics) SetNextFiring(d time.Duration) {
	if m == nil {
		return
	}
	m.nextFiring.Set(d.Seconds())
}

// Observe429 counts one 429 from Hex; predicted tells whether the ledger expected it
// (false: the ledger believed there was room, so another client shares this Hex user).
func (m *Metrics) Observe429(predicted bool) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(strconv.FormatBool(predicted)).Inc()
}

// ObserveReconcile counts one reconciliation of an ambiguous trigger with its result.
func (m *Metrics) ObserveReconcile(result string) {
	if m == nil {
		return
	}
	m.reconciles.WithLabelValues(result).Inc()
}

// SetLastSuccess records when the last successful run of schedule completed, for
// staleness alerts (time() - hexcron_last_success_timestamp_seconds > ...).
func (m *Metrics) SetLastSuccess(schedule string, t time.Time) {
	if m == nil {
		return
	}
	m.lastSuccess.WithLabelValues(schedule).Set(float64(t.UnixNano()) / 1e9)
}

// ObserveReload counts one configuration reload: ok is false when the new config was
// rejected and the old one kept running.
func (m *Metrics) ObserveReload(ok bool) {
	if m == nil {
		return
	}
	r := reloadFailure
	if ok {
		r = reloadSuccess
	}
	m.reloads.WithLabelValues(r).Inc()
}

// The methods below make *Metrics satisfy hexclient.Observer, so the daemon can pass
// its Metrics to the Hex client as they are.

// OnTrigger counts one RunProject attempt by its class name in
// hexcron_trigger_attempts_total. The client's end-of-Trigger outcomes (prefixed
// "trigger_") are ignored: the daemon counts those per slot with ObserveTrigger.
func (m *Metrics) OnTrigger(outcome string) {
	if m == nil || strings.HasPrefix(outcome, "trigger_") {
		return
	}
	m.attempts.WithLabelValues(outcome).Inc()
}

// On429 is Observe429.
func (m *Metrics) On429(predicted bool) { m.Observe429(predicted) }

// OnReconcile is ObserveReconcile.
func (m *Metrics) OnReconcile(result string) { m.ObserveReconcile(result) }

// OnHold counts one hold of triggering by its reason; until is not exported (a hold
// "until a probe succeeds" has none).
func (m *Metrics) OnHold(reason string, _ time.Time) {
	if m == nil {
		return
	}
	m.holds.WithLabelValues(reason).Inc()
}
