package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/state"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The label values of hexcron's counters are closed sets, listed here: NewMetrics and
// SetConfig create every series at zero, so that a rate() or an increase() alert works
// from the first scrape, before the first event. Adding a value is adding it here.
const (
	reloadSuccess = "success"
	reloadFailure = "failure"
)

// Trigger outcomes (hexcron_triggers_total{outcome}): how the trigger of one slot ended.
const (
	outcomeCreated      = "created"       // Hex answered 201
	outcomeAdopted      = "adopted"       // an ambiguous attempt's run was found at Hex
	outcomeFailed       = "failed"        // Hex refused it for good, or the trigger gave up
	outcomeWindowClosed = "window_closed" // the window closed before a trigger went through
	outcomeUnknown      = "unknown"       // an ambiguous attempt could not be resolved: Hex may have run it
)

var triggerOutcomes = []string{outcomeCreated, outcomeAdopted, outcomeFailed, outcomeWindowClosed, outcomeUnknown}

// skipReason classifies why a slot was recorded skipped (hexcron_skips_total{reason});
// the slot's row and log line carry the full reason.
type skipReason string

// The skip reasons.
const (
	skipOverlap      skipReason = "overlap"       // the overlap policy: the previous run is still going
	skipMaxRunning   skipReason = "max_running"   // held by budget.max_running until the window closed
	skipUnplaced     skipReason = "unplaced"      // no room under the caps in its window
	skipWindowClosed skipReason = "window_closed" // triggering (holds, retries) outlasted the window
	skipMissed       skipReason = "missed"        // its window closed while hexcron was down
	skipInterrupted  skipReason = "interrupted"   // a trigger interrupted by a stop or crash that Hex never saw, window closed
	skipRemoved      skipReason = "removed"       // a queued firing whose schedule or matrix value a reload removed
	skipForbidden    skipReason = "forbidden"     // its project is held after Hex answered 403
	skipPaused       skipReason = "paused"        // its schedule is paused (`hexcron pause`)
)

var skipReasons = []skipReason{skipOverlap, skipMaxRunning, skipUnplaced, skipWindowClosed, skipMissed, skipInterrupted, skipRemoved, skipForbidden, skipPaused}

// runStatuses are the final states of a run (hexcron_runs_total{status}).
var runStatuses = []state.State{state.StateCompleted, state.StateErrored, state.StateKilled,
	state.StateTimedOut, state.StateUnableToAllocate, state.StateUnknown}

// Label values the Hex client reports through hexclient.Observer.
var (
	holdReasons      = []string{"kernel_cap", "rate_limited", "auth", "forbidden"}
	reconcileResults = []string{"adopted", "none", "error"}
	readGroups       = []string{"all", "status"}
)

// latenessBuckets are the upper bounds, in seconds, of hexcron_trigger_lateness_seconds:
// a firing sent at its nominal instant lands in the first bucket; windows (and so
// shifts) run from minutes to hours, and catch-up firings come later still.
var latenessBuckets = []float64{0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600}

// Metrics holds the daemon's Prometheus metrics in a registry of its own (never the
// global default one). Every method is safe on a nil *Metrics, so the daemon runs with
// metrics off by passing nil; every method is safe for concurrent use.
//
// Series labelled by schedule are bounded by the config: SetConfig creates those of
// every schedule at zero and deletes those of schedules a reload removed. An event for
// a schedule no longer configured (a run it started ending later) is still counted; its
// series then lasts until the next reload.
type Metrics struct {
	reg *prometheus.Registry

	buildInfo        *prometheus.GaugeVec
	triggers         *prometheus.CounterVec
	skips            *prometheus.CounterVec
	attempts         *prometheus.CounterVec
	holds            *prometheus.CounterVec
	runs             *prometheus.CounterVec
	budgetUsed       *prometheus.GaugeVec
	budgetLimit      *prometheus.GaugeVec
	lateness         prometheus.Histogram
	nextFiring       prometheus.Gauge
	loopAlive        prometheus.Gauge
	triggersInFlight prometheus.Gauge
	runsInFlight     prometheus.Gauge
	rateLimited      *prometheus.CounterVec
	reconciles       *prometheus.CounterVec
	lastSuccess      *prometheus.GaugeVec
	interval         *prometheus.GaugeVec
	reloads          *prometheus.CounterVec
	reloadOK         prometheus.Gauge
	leader           prometheus.Gauge
	paused           prometheus.Gauge
	gatewayRequests  *prometheus.CounterVec
	gatewayQueued    prometheus.Gauge

	mu        sync.Mutex
	schedules map[string]bool      // the schedules with series: those of the config in force, and any an event named since
	rules     map[string]bool      // the budget rules of the config in force
	clients   map[string]bool      // the gateway clients with series
	lastOK    map[string]time.Time // latest success per schedule, to keep the gauge monotonic
	client    func() hexclient.Stats
}

// NewMetrics builds the metrics and registers them, with the Go runtime and process
// collectors, in a new registry. version is what hexcron_build_info reports.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_build_info",
			Help: "Always 1; the labels say which hexcron version, built with which Go, is running.",
		}, []string{"version", "goversion"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_triggers_total",
			Help: "Slots whose trigger ended, by schedule and outcome: created, adopted (an ambiguous attempt's run found at Hex), failed, window_closed, unknown (an ambiguous attempt Hex's run list could not resolve).",
		}, []string{"schedule", "outcome"}),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_skips_total",
			Help: "Slots recorded skipped, by schedule and reason: overlap, max_running, unplaced, window_closed, missed, interrupted, removed, forbidden, paused.",
		}, []string{"schedule", "reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_trigger_attempts_total",
			Help: "RunProject HTTP attempts by outcome class: ok, rate_limited, kernel_cap, ambiguous, auth, permanent, unreachable, canceled, forbidden.",
		}, []string{"class"}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_trigger_holds_total",
			Help: "Times triggering was held, by reason: kernel_cap, rate_limited, auth, forbidden (one project held after a 403).",
		}, []string{"reason"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_runs_total",
			Help: "Runs that reached a final state, by schedule and state: completed, errored, killed, timed_out, unable_to_allocate, unknown.",
		}, []string{"schedule", "status"}),
		budgetUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_budget_used",
			Help: "Trigger attempts (of every process sharing the database) in the current window of each budget rule, e.g. rule=\"20/1m\".",
		}, []string{"rule"}),
		budgetLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_budget_limit",
			Help: "Trigger attempts hexcron allows itself per window of each budget rule (limit minus reserve).",
		}, []string{"rule"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hexcron_trigger_lateness_seconds",
			Help:    "Seconds from each triggered slot's nominal instant to the sending of the attempt that created its run.",
			Buckets: latenessBuckets,
		}),
		nextFiring: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_next_firing_timestamp_seconds",
			Help: "Unix time of the next planned firing; 0 when nothing is planned within the horizon.",
		}),
		loopAlive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_loop_last_run_timestamp_seconds",
			Help: "Unix time at which the scheduling loop last ran; it runs at least every 30s.",
		}),
		triggersInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_triggers_in_flight",
			Help: "Slots whose trigger is under way (admission, attempts, waits), not yet created, adopted or given up.",
		}),
		runsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_runs_in_flight",
			Help: "Runs Hex accepted that have not reached a final state (triggered or running), whoever started them.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_rate_limited_total",
			Help: "HTTP 429 responses from Hex; predicted=\"false\" means the budget had admitted the request, so another client likely shares the Hex user.",
		}, []string{"predicted"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_reconciles_total",
			Help: "Reconciliations of ambiguous or interrupted triggers, by result: adopted, none, error.",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_last_success_timestamp_seconds",
			Help: "Unix time at which the latest completed run of each schedule ended, restored from the database at start; absent for a schedule with none.",
		}, []string{"schedule"}),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hexcron_schedule_interval_seconds",
			Help: "Longest gap between consecutive nominal instants of each schedule over the coming week (two years for sparser schedules): the period stale alerts count in.",
		}, []string{"schedule"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_config_reloads_total",
			Help: "Configuration reloads (SIGHUP) by result: success, or failure (the old config kept running).",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_config_last_reload_successful",
			Help: "1 when the config in force is the file as it was last read, 0 after a reload failed (the old config kept running).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_leader",
			Help: "1 while this daemon holds the database's lease and triggers schedules; 0 while it stands by (another daemon leads) or was fenced.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_paused_schedules",
			Help: "Schedules of the config in force that are paused (hexcron pause) now; their firings are recorded skipped with reason paused.",
		}),
		gatewayRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hexcron_gateway_requests_total",
			Help: "Requests the trigger gateway answered, by client (anonymous: no known token) and HTTP status code.",
		}, []string{"client", "code"}),
		gatewayQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hexcron_gateway_queued",
			Help: "Gateway requests the daemon holds in its plan, waiting for room under the trigger caps (not yet being triggered).",
		}),
		schedules: map[string]bool{},
		rules:     map[string]bool{},
		clients:   map[string]bool{},
		lastOK:    map[string]time.Time{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.buildInfo, m.triggers, m.skips, m.attempts, m.holds, m.runs, m.budgetUsed, m.budgetLimit,
		m.lateness, m.nextFiring, m.loopAlive, m.triggersInFlight, m.runsInFlight,
		m.rateLimited, m.reconciles, m.lastSuccess, m.interval, m.reloads, m.reloadOK, m.leader, m.paused,
		m.gatewayRequests, m.gatewayQueued,
		clientCollector{m},
	)
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	for c := hexclient.ClassOK; c <= hexclient.ClassForbidden; c++ {
		m.attempts.WithLabelValues(c.String())
	}
	for _, r := range holdReasons {
		m.holds.WithLabelValues(r)
	}
	for _, r := range reconcileResults {
		m.reconciles.WithLabelValues(r)
	}
	m.rateLimited.WithLabelValues("true")
	m.rateLimited.WithLabelValues("false")
	m.reloads.WithLabelValues(reloadSuccess)
	m.reloads.WithLabelValues(reloadFailure)
	m.reloadOK.Set(1)
	return m
}

// SetConfig makes the per-schedule and per-rule series follow conf, the config now in
// force (at start and after each successful reload): every counter series of each
// schedule exists (at zero when new), those of schedules no longer in conf are deleted,
// as are the budget series of rules no longer in conf, and each schedule's interval is
// computed from now.
func (m *Metrics) SetConfig(conf *planner.Config, now time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reloadOK.Set(1)
	keep := map[string]bool{}
	for i := range conf.Schedules {
		keep[conf.Schedules[i].Name] = true
	}
	for name := range m.schedules {
		if keep[name] {
			continue
		}
		l := prometheus.Labels{"schedule": name}
		m.triggers.DeletePartialMatch(l)
		m.skips.DeletePartialMatch(l)
		m.runs.DeletePartialMatch(l)
		m.lastSuccess.DeletePartialMatch(l)
		m.interval.DeletePartialMatch(l)
		delete(m.lastOK, name)
	}
	m.schedules = maps.Clone(keep)
	for i := range conf.Schedules {
		s := &conf.Schedules[i]
		for _, o := range triggerOutcomes {
			m.triggers.WithLabelValues(s.Name, o)
		}
		for _, r := range skipReasons {
			m.skips.WithLabelValues(s.Name, string(r))
		}
		for _, st := range runStatuses {
			m.runs.WithLabelValues(s.Name, string(st))
		}
		if iv, ok := longestGap(s, now); ok {
			m.interval.WithLabelValues(s.Name).Set(iv.Seconds())
		} else {
			m.interval.DeleteLabelValues(s.Name)
		}
	}
	rules := map[string]bool{}
	for _, r := range conf.Budget.Triggers {
		name := RuleName(r)
		rules[name] = true
		m.budgetLimit.WithLabelValues(name).Set(float64(r.Effective()))
		m.budgetUsed.WithLabelValues(name)
	}
	for name := range m.rules {
		if !rules[name] {
			m.budgetLimit.DeleteLabelValues(name)
			m.budgetUsed.DeleteLabelValues(name)
		}
	}
	m.rules = rules
	m.setGatewayClients(conf.Gateway)
}

// GatewayCodes are the HTTP status codes the gateway answers with: its requests
// counter has a series at zero for each, per client, from the first scrape.
var GatewayCodes = []int{200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 502, 503}

// setGatewayClients makes hexcron_gateway_requests_total follow the gateway's clients:
// every client's series exist (at zero when new), anonymous's 401 among them; those of
// clients no longer configured are deleted. m.mu is held.
func (m *Metrics) setGatewayClients(g *planner.Gateway) {
	keep := map[string]bool{}
	if g != nil {
		keep[planner.AnonymousClient] = true
		m.gatewayRequests.WithLabelValues(planner.AnonymousClient, "401")
		for _, c := range g.Clients {
			keep[c.Name] = true
			for _, code := range GatewayCodes {
				m.gatewayRequests.WithLabelValues(c.Name, strconv.Itoa(code))
			}
		}
	}
	for name := range m.clients {
		if !keep[name] {
			m.gatewayRequests.DeletePartialMatch(prometheus.Labels{"client": name})
		}
	}
	m.clients = keep
}

// ruleLabel names a trigger rule as "LIMIT/PER", e.g. "20/1m".

// intervalSpans are the look-ahead spans longestGap tries in turn, until one holds at
// least three nominal instants: a week catches weekday-only schedules, two years a
// yearly one.
var intervalSpans = []time.Duration{8 * 24 * time.Hour, 62 * 24 * time.Hour, 732 * 24 * time.Hour}

// maxIntervalInstants bounds the instants longestGap looks at: a schedule that fires
// every few seconds has its longest gap in its first few thousand.
const maxIntervalInstants = 10000

// longestGap is the longest gap between consecutive nominal instants of s after now,
// over the first span of intervalSpans that holds at least three of them (two for the
// last); ok is false for a schedule that fires less often (or never).
func longestGap(s *planner.Schedule, now time.Time) (gap time.Duration, ok bool) {
	for i, span := range intervalSpans {
		var prev time.Time
		n := 0
		gap = 0
		// In chunks that grow while they hold few instants, so that a dense schedule
		// stops early and a sparse one takes few steps.
		end := now.Add(span)
		for from, chunk := now, time.Hour; from.Before(end) && n < maxIntervalInstants; {
			to := minTime(from.Add(chunk), end)
			ts := s.Between(from, to)
			for _, t := range ts {
				if n > 0 {
					gap = max(gap, t.Sub(prev))
				}
				prev = t
				n++
			}
			if len(ts) < 1000 {
				chunk = min(2*chunk, 32*24*time.Hour)
			}
			from = to
		}
		if n >= 3 || (n == 2 && i == len(intervalSpans)-1) {
			return gap, true
		}
	}
	return 0, false
}

// SetClientStats makes every scrape read hexcron_auth_paused and the read budget's
// gauges from stats (the Hex client's Stats method). Until it is called they are absent.
func (m *Metrics) SetClientStats(stats func() hexclient.Stats) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.client = stats
}

// clientCollector exports the Hex client's state, read at scrape time.
type clientCollector struct{ m *Metrics }

var (
	authPausedDesc = prometheus.NewDesc("hexcron_auth_paused",
		"1 while triggering is paused because Hex refused the API token (401/403), until a read with the current token succeeds.", nil, nil)
	readUsedDesc = prometheus.NewDesc("hexcron_read_budget_used",
		"Calls in the current window of the read budget, by group: all (every call, triggers included) or status (run status and run list reads).", []string{"group"}, nil)
	readLimitDesc = prometheus.NewDesc("hexcron_read_budget_limit",
		"Calls hexcron allows itself per window of the read budget, by group: all or status.", []string{"group"}, nil)
)

// Describe implements prometheus.Collector.
func (c clientCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- authPausedDesc
	ch <- readUsedDesc
	ch <- readLimitDesc
}

// Collect implements prometheus.Collector.
func (c clientCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	fn := c.m.client
	c.m.mu.Unlock()
	if fn == nil {
		return
	}
	s := fn()
	paused := 0.0
	if s.AuthPaused {
		paused = 1
	}
	ch <- prometheus.MustNewConstMetric(authPausedDesc, prometheus.GaugeValue, paused)
	used := []int{s.ReadsUsed, s.StatusUsed}
	limit := []int{s.ReadsLimit, s.StatusLimit}
	for i, g := range readGroups {
		ch <- prometheus.MustNewConstMetric(readUsedDesc, prometheus.GaugeValue, float64(used[i]), g)
		ch <- prometheus.MustNewConstMetric(readLimitDesc, prometheus.GaugeValue, float64(limit[i]), g)
	}
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

// ObserveGatewayRequest counts one request the gateway answered: client is the
// client's name (planner.AnonymousClient without a known token), code the HTTP status.
// A code outside GatewayCodes, or a client not configured, still counts.
func (m *Metrics) ObserveGatewayRequest(client string, code int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.clients[client] = true
	m.mu.Unlock()
	m.gatewayRequests.WithLabelValues(client, strconv.Itoa(code)).Inc()
}

// SetGatewayQueued records how many gateway requests wait in the daemon's plan.
func (m *Metrics) SetGatewayQueued(n int) {
	if m == nil {
		return
	}
	m.gatewayQueued.Set(float64(n))
}

// ObserveTrigger counts one slot whose trigger ended, with its outcome (one of
// triggerOutcomes).
func (m *Metrics) ObserveTrigger(schedule, outcome string) {
	if m == nil {
		return
	}
	m.seen(schedule)
	m.triggers.WithLabelValues(schedule, outcome).Inc()
}

// ObserveSkip counts one slot recorded skipped.
func (m *Metrics) ObserveSkip(schedule string, reason skipReason) {
	if m == nil {
		return
	}
	m.seen(schedule)
	m.skips.WithLabelValues(schedule, string(reason)).Inc()
}

// ObserveRun counts one run that reached a final state (one of runStatuses).
func (m *Metrics) ObserveRun(schedule, status string) {
	if m == nil {
		return
	}
	m.seen(schedule)
	m.runs.WithLabelValues(schedule, status).Inc()
}

// seen notes that schedule has series, so that the next SetConfig deletes them when
// the schedule is not in its config.
func (m *Metrics) seen(schedule string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.schedules[schedule] = true
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

// ObserveLateness records one triggered slot's lateness: when the attempt that created
// its run was sent, minus its nominal instant.
func (m *Metrics) ObserveLateness(d time.Duration) {
	if m == nil {
		return
	}
	m.lateness.Observe(d.Seconds())
}

// SetNextFiring records the planned instant of the next firing (zero: none planned).
func (m *Metrics) SetNextFiring(t time.Time) {
	if m == nil {
		return
	}
	m.nextFiring.Set(unixSeconds(t))
}

// SetLoop records that the scheduling loop ran at now with n triggers in flight.
func (m *Metrics) SetLoop(now time.Time, n int) {
	if m == nil {
		return
	}
	m.loopAlive.Set(unixSeconds(now))
	m.triggersInFlight.Set(float64(n))
}

// SetLeader records whether this daemon leads (holds the lease) or stands by.
func (m *Metrics) SetLeader(leads bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leads {
		v = 1
	}
	m.leader.Set(v)
}

// SetRunsInFlight records how many runs Hex accepted that have not ended.
func (m *Metrics) SetRunsInFlight(n int) {
	if m == nil {
		return
	}
	m.runsInFlight.Set(float64(n))
}

// Observe429 counts one 429 from Hex; predicted tells whether the budget expected it
// (false: the budget had admitted the request, so another client likely shares the user).
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

// SetLastSuccess records that a successful run of schedule ended at t, for staleness
// alerts (time() - hexcron_last_success_timestamp_seconds > ...). The gauge only moves
// forward: an older success reported late leaves it alone.
func (m *Metrics) SetLastSuccess(schedule string, t time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.lastOK[schedule]; ok && !t.After(prev) {
		return
	}
	m.lastOK[schedule] = t
	m.schedules[schedule] = true
	m.lastSuccess.WithLabelValues(schedule).Set(unixSeconds(t))
}

// SetPaused records how many schedules of the config in force are paused now.
func (m *Metrics) SetPaused(n int) {
	if m == nil {
		return
	}
	m.paused.Set(float64(n))
}

// ObserveReload counts one configuration reload: ok is false when the new config was
// rejected and the old one kept running.
func (m *Metrics) ObserveReload(ok bool) {
	if m == nil {
		return
	}
	r, v := reloadFailure, 0.0
	if ok {
		r, v = reloadSuccess, 1
	}
	m.reloadOK.Set(v)
	m.reloads.WithLabelValues(r).Inc()
}

// unixSeconds is t as fractional Unix seconds, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// The methods below tie the daemon to its metrics; each is one call at its site in the
// loop, so that the metric logic stays in this file.

// SuccessStore is what FollowConfig reads from the database (*state.DB).
type SuccessStore interface {
	LastSuccess(ctx context.Context) (map[string]time.Time, error)
}

// FollowConfig is SetConfig, then the last success of each of conf's schedules as st
// remembers it, so that a restart neither resets nor hides a stale schedule. The
// daemon calls it at start and after each reload; `hexcron run` calls it once more
// before it serves the first scrape.
func (m *Metrics) FollowConfig(ctx context.Context, conf *planner.Config, st SuccessStore, now time.Time) error {
	if m == nil {
		return nil
	}
	m.SetConfig(conf, now)
	last, err := st.LastSuccess(ctx)
	if err != nil {
		return fmt.Errorf("metrics: read last successes: %w", err)
	}
	for name, t := range last {
		if conf.Schedule(name) != nil {
			m.SetLastSuccess(name, t)
		}
	}
	return nil
}

// metricsConfig is FollowConfig for a config now in force (at start, after a reload).
func (d *Daemon) metricsConfig(ctx context.Context, conf *planner.Config, now time.Time) {
	if err := d.cfg.Metrics.FollowConfig(ctx, conf, d.cfg.Store, now); err != nil {
		d.log.Error("metrics: follow the config", keyErr, err)
	}
}

// observeLoop records one pass of the loop: its time, the next planned firing, and the
// triggers in flight. It runs on the loop goroutine, which owns d.plan and d.inflight.
func (d *Daemon) observeLoop(now time.Time) {
	m := d.cfg.Metrics
	if m == nil {
		return
	}
	m.SetLoop(now, len(d.inflight))
	var next time.Time
	if len(d.plan) > 0 {
		next = d.plan[0].Planned
	}
	m.SetNextFiring(next)
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
