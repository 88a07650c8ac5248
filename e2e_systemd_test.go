package main

// End-to-end tests of the daemon as the systemd unit runs it: the token from
// $CREDENTIALS_DIRECTORY, the database under $STATE_DIRECTORY, the config under
// $CONFIGURATION_DIRECTORY, Prometheus metrics on --metrics-addr, and syslog priority
// prefixes when stderr is the journal ($JOURNAL_STREAM). They reuse the helpers of
// e2e_test.go (the binary built by TestMain, startSimProc, waitFor, writeConfig).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// systemdEnvKeys are the variables the daemon reads from its environment that the
// developer's shell might have set; startDaemonIn removes them so that each test says
// exactly what the daemon sees.
var systemdEnvKeys = []string{
	"HEX_API_TOKEN", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY",
	"JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
}

// startDaemonIn runs `hexcron run args...` with dir as its working directory and an
// environment of the test's own minus systemdEnvKeys, plus env. Unlike startDaemon it
// adds no flags of its own.
func startDaemonIn(t *testing.T, dir string, env []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"run"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, drop := range systemdEnvKeys {
			keep = keep && k != drop
		}
		if keep {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return launchDaemon(t, cmd)
}

// simTokenHash is how hexsim's request log shows a bearer token.
func simTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// simTokenRequest is one request of `GET /_sim/requests` with the token hash and user
// hexsim saw (simRequest of e2e_test.go has neither).
type simTokenRequest struct {
	simRequest
	Token string `json:"token"`
	User  string `json:"user"`
}

func (s simProc) tokenRequests(t *testing.T) []simTokenRequest {
	var out []simTokenRequest
	getJSON(t, s.root+"/_sim/requests", &out)
	return out
}

// systemdDirs lays out what systemd gives the unit: a credentials directory holding
// hex-token, an empty state directory, a configuration directory holding
// schedules.yaml, and an empty working directory.
type systemdDirs struct {
	creds, state, conf, work string
}

func newSystemdDirs(t *testing.T, sim simProc, token, schedules string) systemdDirs {
	t.Helper()
	root := t.TempDir()
	d := systemdDirs{
		creds: filepath.Join(root, "creds"),
		state: filepath.Join(root, "state"),
		conf:  filepath.Join(root, "conf"),
		work:  filepath.Join(root, "work"),
	}
	for _, dir := range []string{d.creds, d.state, d.conf, d.work} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// systemd's copy is read-only and ends with whatever the source file ended with.
	if err := os.WriteFile(filepath.Join(d.creds, "hex-token"), []byte(token+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(d.conf, "schedules.yaml"), sim, schedules)
	return d
}

func (d systemdDirs) env() []string {
	return []string{
		"CREDENTIALS_DIRECTORY=" + d.creds,
		"STATE_DIRECTORY=" + d.state,
		"CONFIGURATION_DIRECTORY=" + d.conf,
	}
}

// TestE2ESystemdEnvironment runs the daemon with no --config, --db or token flag and the
// directories systemd sets for the unit: the token must come from the credential (the
// only token hexsim accepts), the config from $CONFIGURATION_DIRECTORY and the database
// must be $STATE_DIRECTORY/hexcron.db, private to the service.
func TestE2ESystemdEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const credToken = "hxtp_systemd_credential_token"
	tests := []struct {
		name   string
		envTok string // HEX_API_TOKEN ("" = set but empty)
	}{
		{"credential only", ""},
		{"credential beats HEX_API_TOKEN", "hxtp_other_token_from_env"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSimProc(t, fastSim+"tokens: ["+credToken+"]\n")
			dirs := newSystemdDirs(t, sim, credToken, `schedules:
  - {name: from-systemd, project: `+e2eProject+`, cron: "*/2 * * * * *"}
`)
			env := append(dirs.env(), "HEX_API_TOKEN="+tc.envTok)
			d := startDaemonIn(t, dirs.work, env, "--log-format", "json")
			created := func() int {
				n := 0
				for _, r := range sim.requests(t) {
					if r.Op == "RunProject" && r.Status == http.StatusCreated {
						n++
					}
				}
				return n
			}
			waitFor(t, 20*time.Second, "two runs created in hexsim", func() bool {
				return len(d.logLines("triggered")) >= 2 && created() >= 2
			})
			if code := d.stop(t); code != 0 {
				t.Fatalf("exit code after SIGTERM = %d, want 0", code)
			}

			// Every request carried the credential's token, and hexsim refused none.
			want := simTokenHash(credToken)
			for _, r := range sim.tokenRequests(t) {
				if r.Status == http.StatusUnauthorized {
					t.Errorf("hexsim answered 401 to %s %s at %v", r.Method, r.Op, r.Time)
				}
				if r.Token != want {
					t.Errorf("%s %s carried token %s, want the credential's %s", r.Method, r.Op, r.Token, want)
				}
			}
			if strings.Contains(d.stderr.String(), credToken) || (tc.envTok != "" && strings.Contains(d.stderr.String(), tc.envTok)) {
				t.Error("the daemon's log contains a token")
			}

			// The database is $STATE_DIRECTORY/hexcron.db, 0600 like every file there,
			// and nothing was written to the working directory.
			db := filepath.Join(dirs.state, "hexcron.db")
			st, err := os.Stat(db)
			if err != nil {
				t.Fatalf("no database in $STATE_DIRECTORY: %v", err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", db, st.Mode().Perm())
			}
			files, err := os.ReadDir(dirs.state)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				info, err := f.Info()
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().IsRegular() && info.Mode().Perm() != 0o600 {
					t.Errorf("$STATE_DIRECTORY/%s has mode %v, want 0600", f.Name(), info.Mode().Perm())
				}
			}
			if left, err := os.ReadDir(dirs.work); err != nil || len(left) > 0 {
				var names []string
				for _, f := range left {
					names = append(names, f.Name())
				}
				t.Errorf("the working directory holds %v (err %v), want nothing", names, err)
			}
			slots := slotsOf(t, db)
			triggered := 0
			for _, s := range slots {
				if s.RunID != "" {
					triggered++
				}
			}
			if triggered < 2 {
				t.Errorf("the database in $STATE_DIRECTORY records %d triggered slots, want >= 2", triggered)
			}
			checkOneRunPerSlot(t, sim, slots)
		})
	}
}

// TestE2ESystemdWrongTokenPauses is the control of TestE2ESystemdEnvironment: without the
// credential, the HEX_API_TOKEN hexsim does not know is used, refused with 401, and the
// daemon pauses triggering with one ERROR instead of retrying into the refusal.
func TestE2ESystemdWrongTokenPauses(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim+"tokens: [hxtp_the_only_valid_token]\n")
	dirs := newSystemdDirs(t, sim, "unused", `schedules:
  - {name: refused, project: `+e2eProject+`, cron: "*/2 * * * * *"}
`)
	env := []string{"STATE_DIRECTORY=" + dirs.state, "CONFIGURATION_DIRECTORY=" + dirs.conf, "HEX_API_TOKEN=hxtp_not_known_to_hex"}
	d := startDaemonIn(t, dirs.work, env, "--log-format", "json")
	const paused = "Hex refused the API token; triggering is paused."
	refused := func() []string {
		var out []string
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			if strings.Contains(line, paused) {
				out = append(out, line)
			}
		}
		return out
	}
	waitFor(t, 20*time.Second, "the daemon to pause on 401", func() bool { return len(refused()) > 0 })
	if line := refused()[0]; !strings.Contains(line, `"level":"ERROR"`) {
		t.Errorf("the pause is not logged as an ERROR: %s", line)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	n401 := 0
	for _, r := range sim.requests(t) {
		if r.Status == http.StatusUnauthorized {
			n401++
		}
		if r.Op == "RunProject" && r.Status == http.StatusCreated {
			t.Errorf("hexsim created a run for a token it does not know")
		}
	}
	if n401 == 0 {
		t.Error("hexsim answered no 401")
	}
	if n := len(refused()); n != 1 {
		t.Errorf("the pause was logged %d times, want once per episode", n)
	}
}

// scrapeText GETs base/metrics in the Prometheus text format.
func scrapeText(base string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(b), nil
}

// scrapeMetrics GETs base/metrics and parses the Prometheus text format.
func scrapeMetrics(base string) (map[string]*dto.MetricFamily, error) {
	text, err := scrapeText(base)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(text))
}

// metricValue is the sum of the samples of family name whose labels include labels
// (counters, gauges, or histograms' counts), and whether there is any.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		default:
			continue
		}
		found = true
	}
	return sum, found
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

// TestE2EMetrics scrapes a running daemon's --metrics-addr (port chosen by the kernel,
// read from the "serving metrics" log line) and checks the metrics the issue names
// against what the daemon's log and hexsim saw.
func TestE2EMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	schedules := []string{"metrics-a", "metrics-b"}
	cfg := e2eConfig(t, dir, sim, `schedules:
  - {name: metrics-a, project: `+e2eProject+`, cron: "*/2 * * * * *"}
  - {name: metrics-b, project: 0f1e2d3c-4b5a-4789-8abc-def012345678, cron: "*/3 * * * * *"}
`)
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", filepath.Join(dir, "hexcron.db"), "--metrics-addr", "127.0.0.1:0")
	waitFor(t, 10*time.Second, "the metrics address in the log", func() bool { return len(d.logLines("serving metrics")) > 0 })
	addr, _ := d.logLines("serving metrics")[0]["addr"].(string)
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("serving metrics addr=%q, want the bound loopback port", addr)
	}
	base := "http://" + addr

	// The first scrape already has every counter series of every schedule (at zero, or
	// counting what happened since the start) and the build info.
	first, err := scrapeMetrics(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schedules {
		for _, o := range []string{"created", "adopted", "failed", "window_closed"} {
			if _, ok := metricValue(first, "hexcron_triggers_total", map[string]string{"schedule": s, "outcome": o}); !ok {
				t.Errorf("first scrape: no hexcron_triggers_total{schedule=%q,outcome=%q}", s, o)
			}
		}
		for _, st := range []string{"completed", "errored", "killed", "timed_out", "unable_to_allocate", "unknown"} {
			if _, ok := metricValue(first, "hexcron_runs_total", map[string]string{"schedule": s, "status": st}); !ok {
				t.Errorf("first scrape: no hexcron_runs_total{schedule=%q,status=%q}", s, st)
			}
		}
		if _, ok := metricValue(first, "hexcron_skips_total", map[string]string{"schedule": s, "reason": "overlap"}); !ok {
			t.Errorf("first scrape: no hexcron_skips_total{schedule=%q,reason=\"overlap\"}", s)
		}
	}
	if v, ok := metricValue(first, "hexcron_build_info", map[string]string{"version": "dev"}); !ok || v != 1 {
		t.Errorf("first scrape: hexcron_build_info{version=\"dev\"} = %v (present %v), want 1", v, ok)
	}

	var fams map[string]*dto.MetricFamily
	waitFor(t, 30*time.Second, "completed runs of both schedules in the metrics", func() bool {
		f, err := scrapeMetrics(base)
		if err != nil {
			return false
		}
		for _, s := range schedules {
			if v, ok := metricValue(f, "hexcron_last_success_timestamp_seconds", map[string]string{"schedule": s}); !ok || v == 0 {
				return false
			}
		}
		v, _ := metricValue(f, "hexcron_runs_total", map[string]string{"status": "completed"})
		return v >= 2
	})
	triggeredBefore := len(d.logLines("triggered"))
	fams, err = scrapeMetrics(base)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, labels map[string]string) float64 {
		t.Helper()
		v, ok := metricValue(fams, name, labels)
		if !ok {
			t.Errorf("no sample %s%v", name, labels)
		}
		return v
	}
	created := get("hexcron_triggers_total", map[string]string{"outcome": "created"})
	if created < float64(triggeredBefore) || created == 0 {
		t.Errorf(`hexcron_triggers_total{outcome="created"} = %v, want >= %d (triggered lines logged before the scrape)`, created, triggeredBefore)
	}
	completed, _ := metricValue(fams, "hexcron_runs_total", map[string]string{"status": "completed"})
	lateness, _ := metricValue(fams, "hexcron_trigger_lateness_seconds", nil)
	t.Logf("scrape: %d triggered lines before it; created %v, completed %v, lateness observations %v", triggeredBefore, created, completed, lateness)
	if ok := get("hexcron_trigger_attempts_total", map[string]string{"class": "ok"}); ok < created {
		t.Errorf(`hexcron_trigger_attempts_total{class="ok"} = %v < created %v`, ok, created)
	}
	if v := get("hexcron_runs_total", map[string]string{"status": "completed"}); v < 2 {
		t.Errorf(`hexcron_runs_total{status="completed"} = %v, want >= 2`, v)
	}
	if v := get("hexcron_trigger_lateness_seconds", nil); v < float64(triggeredBefore) || v == 0 {
		t.Errorf("hexcron_trigger_lateness_seconds count = %v, want >= %d", v, triggeredBefore)
	}
	if h := fams["hexcron_trigger_lateness_seconds"]; h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("hexcron_trigger_lateness_seconds is not a histogram: %v", h.GetType())
	}
	// The config's rules (writeConfig): 20 per 10s and 60 per 1m, no reserve.
	for rule, limit := range map[string]float64{"20/10s": 20, "60/1m": 60} {
		if v := get("hexcron_budget_limit", map[string]string{"rule": rule}); v != limit {
			t.Errorf(`hexcron_budget_limit{rule=%q} = %v, want %v`, rule, v, limit)
		}
		if v := get("hexcron_budget_used", map[string]string{"rule": rule}); v < 0 || v > limit {
			t.Errorf(`hexcron_budget_used{rule=%q} = %v, want within [0, %v]`, rule, v, limit)
		}
	}
	now := float64(time.Now().Unix())
	for _, s := range schedules {
		if v := get("hexcron_last_success_timestamp_seconds", map[string]string{"schedule": s}); v < now-60 || v > now+5 {
			t.Errorf("hexcron_last_success_timestamp_seconds{schedule=%q} = %v, want within the last minute (now %v)", s, v, now)
		}
	}
	if v := get("hexcron_next_firing_timestamp_seconds", nil); v < now-1 || v > now+4 {
		t.Errorf("hexcron_next_firing_timestamp_seconds = %v, want within 3s of now %v (schedules every 2s and 3s)", v, now)
	}
	if v := get("hexcron_loop_last_run_timestamp_seconds", nil); v < now-35 || v > now+1 {
		t.Errorf("hexcron_loop_last_run_timestamp_seconds = %v, want within the last 30s (now %v)", v, now)
	}
	if v := get("hexcron_auth_paused", nil); v != 0 {
		t.Errorf("hexcron_auth_paused = %v with a valid token, want 0", v)
	}
	// The config's budget.reads (600 per 1m) is the status group; all calls keep Hex's 60.
	for group, limit := range map[string]float64{"all": 60, "status": 600} {
		if v := get("hexcron_read_budget_limit", map[string]string{"group": group}); v != limit {
			t.Errorf("hexcron_read_budget_limit{group=%q} = %v, want %v", group, v, limit)
		}
	}
	if v := get("hexcron_read_budget_used", map[string]string{"group": "status"}); v < 1 {
		t.Errorf("hexcron_read_budget_used{group=\"status\"} = %v after runs were polled to their end, want >= 1", v)
	}
	// 429s counted by the daemon agree with the ones hexsim sent.
	var sim429 int
	for _, r := range sim.requests(t) {
		if r.Status == http.StatusTooManyRequests {
			sim429++
		}
	}
	var got429 float64
	for _, p := range []string{"true", "false"} {
		got429 += get("hexcron_rate_limited_total", map[string]string{"predicted": p})
	}
	if got429 != float64(sim429) {
		t.Errorf("hexcron_rate_limited_total = %v, hexsim sent %d 429s", got429, sim429)
	}
	for _, res := range []string{"success", "failure"} {
		if v := get("hexcron_config_reloads_total", map[string]string{"result": res}); v != 0 {
			t.Errorf("hexcron_config_reloads_total{result=%q} = %v before any reload", res, v)
		}
	}
	if _, ok := fams["process_start_time_seconds"]; !ok {
		t.Error("no process_start_time_seconds (process collector)")
	}

	// A SIGHUP with a valid file counts one successful reload.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload", func() bool { return len(d.logLines("reloaded")) > 0 })
	if fams, err = scrapeMetrics(base); err != nil {
		t.Fatal(err)
	}
	if v := get("hexcron_config_reloads_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf(`hexcron_config_reloads_total{result="success"} = %v after one SIGHUP, want 1`, v)
	}
	if v := get("hexcron_config_reloads_total", map[string]string{"result": "failure"}); v != 0 {
		t.Errorf(`hexcron_config_reloads_total{result="failure"} = %v, want 0`, v)
	}

	// What Prometheus's own linter says of a real scrape (with every kind of series
	// populated by now): nothing.
	text, err := scrapeText(base)
	if err != nil {
		t.Fatal(err)
	}
	check := exec.Command(promtool(t), "check", "metrics")
	check.Stdin = strings.NewReader(text)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on a scrape of the daemon: err=%v\n%s", err, out)
	}

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz = %s %q, want 200 ok", resp.Status, body)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the metrics server still answers after the daemon exited")
	}
}

// journalLine is one text log line with its syslog priority prefix.
var journalLine = regexp.MustCompile(`^<([0-7])>time=\S+ level=([A-Z]+) `)

// TestE2EJournalPriorities checks that with $JOURNAL_STREAM set (stderr is the journal)
// every text log line starts with the syslog priority of its level, which journald
// strips and stores (journalctl -p), and that without it there is no prefix.
func TestE2EJournalPriorities(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	wantPrio := map[string]string{"DEBUG": "7", "INFO": "6", "WARN": "4", "ERROR": "3"}
	sim := startSimProc(t, fastSim)
	// window 2s on a 2s schedule: valid, with a config warning.
	schedules := `schedules:
  - {name: journal, project: ` + e2eProject + `, cron: "*/2 * * * * *", window: 2s}
`

	t.Run("journal", func(t *testing.T) {
		dir := t.TempDir()
		cfg := e2eConfig(t, dir, sim, schedules)
		d := startDaemonIn(t, dir, []string{e2eToken, "JOURNAL_STREAM=8:123456"},
			"--config", cfg, "--db", filepath.Join(dir, "hexcron.db"), "--log-format", "text", "--log-level", "debug")
		waitFor(t, 20*time.Second, "a trigger", func() bool { return strings.Contains(d.stderr.String(), " msg=triggered ") })
		// A broken file makes the reload fail: an ERROR.
		if err := os.WriteFile(cfg, []byte("schedules: [\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the failed reload", func() bool {
			return strings.Contains(d.stderr.String(), `msg="reload failed`)
		})
		if code := d.stop(t); code != 0 {
			t.Fatalf("exit code after SIGTERM = %d, want 0", code)
		}
		seen := map[string]int{}
		lines := strings.Split(strings.TrimSuffix(d.stderr.String(), "\n"), "\n")
		for _, line := range lines {
			m := journalLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line without a syslog priority prefix: %q", line)
				continue
			}
			if wantPrio[m[2]] != m[1] {
				t.Errorf("level %s has prefix <%s>, want <%s>: %q", m[2], m[1], wantPrio[m[2]], line)
			}
			seen[m[2]]++
		}
		for _, level := range []string{"INFO", "WARN", "ERROR"} { // debug lines are rare
			if seen[level] == 0 {
				t.Errorf("no %s line in the log (levels seen: %v)", level, seen)
			}
		}
		for _, line := range lines {
			if strings.Contains(line, "msg=\"config warning\"") && !strings.HasPrefix(line, "<4>") {
				t.Errorf("config warning not at priority 4: %q", line)
			}
			if strings.Contains(line, "msg=\"reload failed") && !strings.HasPrefix(line, "<3>") {
				t.Errorf("reload failure not at priority 3: %q", line)
			}
		}
		t.Logf("%d lines, by level: %v", len(lines), seen)
	})

	t.Run("no journal", func(t *testing.T) {
		dir := t.TempDir()
		cfg := e2eConfig(t, dir, sim, schedules)
		d := startDaemonIn(t, dir, []string{e2eToken},
			"--config", cfg, "--db", filepath.Join(dir, "hexcron.db"), "--log-format", "text")
		waitFor(t, 20*time.Second, "the daemon to run", func() bool {
			return strings.Contains(d.stderr.String(), `msg="hexcron running"`)
		})
		if code := d.stop(t); code != 0 {
			t.Fatalf("exit code after SIGTERM = %d, want 0", code)
		}
		for _, line := range strings.Split(strings.TrimSuffix(d.stderr.String(), "\n"), "\n") {
			if !strings.HasPrefix(line, "time=") {
				t.Errorf("without $JOURNAL_STREAM a line does not start with time=: %q", line)
			}
		}
	})
}

// TestE2ETokenFileRotationWithoutRestart is the no-restart rotation of the operator's
// guide: with hex.token_file, Hex revoking the token pauses triggering (one ERROR), and
// replacing the file (write a new name, rename) resumes it with the new token, without
// a restart or a reload.
func TestE2ETokenFileRotationWithoutRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const oldToken, newToken = "hxtp_rotation_old_token", "hxtp_rotation_new_token"
	sim := startSimProc(t, fastSim+"tokens: ["+oldToken+"]\n")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "hex-token")
	if err := os.WriteFile(tokenFile, []byte(oldToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "schedules.yaml")
	text := fmt.Sprintf(`hex:
  base_url: %s
  token_file: %s
budget:
  triggers:
    - {limit: 20, per: 10s}
    - {limit: 60, per: 1m}
defaults:
  window: 1s
  overlap: allow # with skip, a run whose status polls get 401 blocks the next triggers
schedules:
  - {name: rotating, project: %s, cron: "*/2 * * * * *"}
`, sim.base, tokenFile, e2eProject)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemonIn(t, dir, nil, "--config", cfg, "--db", filepath.Join(dir, "hexcron.db"), "--log-format", "json")
	waitFor(t, 20*time.Second, "a first trigger with the old token", func() bool { return len(d.logLines("triggered")) > 0 })

	// Hex's "regenerate": the old token is revoked at once.
	resp, err := http.Post(sim.root+"/_sim/rotate", "application/json",
		strings.NewReader(fmt.Sprintf(`{"old":%q,"new":%q}`, oldToken, newToken)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /_sim/rotate: %s", resp.Status)
	}
	const paused = "Hex refused the API token; triggering is paused."
	waitFor(t, 20*time.Second, "the pause on 401", func() bool { return strings.Contains(d.stderr.String(), paused) })

	tmp := tokenFile + ".new"
	if err := os.WriteFile(tmp, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, tokenFile); err != nil {
		t.Fatal(err)
	}
	replaced := time.Now()
	newHash := simTokenHash(newToken)
	var resumed time.Time
	waitFor(t, 30*time.Second, "a run created with the new token", func() bool {
		for _, r := range sim.tokenRequests(t) {
			if r.Op == "RunProject" && r.Status == http.StatusCreated && r.Token == newHash {
				resumed = r.Time
				return true
			}
		}
		return false
	})
	t.Logf("first run with the new token %v after the file was replaced", resumed.Sub(replaced).Round(10*time.Millisecond))
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	if n := strings.Count(d.stderr.String(), paused); n != 1 {
		t.Errorf("the pause was logged %d times, want once", n)
	}
	if len(d.logLines("reloaded")) != 0 {
		t.Error("the daemon reloaded; the rotation should not need it")
	}
}

// notifySocket is a stand-in for systemd's $NOTIFY_SOCKET: it collects every datagram
// the daemon sends.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "hxn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

// messages returns the datagrams received so far.
func (n *notifySocket) messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// count is how many datagrams equal msg (or, for a msg ending in "=", start with it).
func (n *notifySocket) count(msg string) int {
	c := 0
	for _, m := range n.messages() {
		if m == msg || (strings.HasSuffix(msg, "=") && strings.HasPrefix(m, msg)) {
			c++
		}
	}
	return c
}

// TestE2ESystemdNotify checks the sd_notify protocol Type=notify and WatchdogSec= rely
// on: READY=1 once running, STATUS= lines, WATCHDOG=1 at half of $WATCHDOG_USEC even
// with nothing to fire, RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM.
func TestE2ESystemdNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	// Once a day: nothing fires during the test, so only the watchdog wakes the loop.
	cfg := e2eConfig(t, dir, sim, `schedules:
  - {name: daily, project: `+e2eProject+`, cron: "0 3 * * *", window: 15m}
`)
	n := listenNotify(t)
	d := startDaemonIn(t, dir, []string{e2eToken, "NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=1000000"},
		"--config", cfg, "--db", filepath.Join(dir, "hexcron.db"), "--log-format", "json")
	waitFor(t, 10*time.Second, "READY=1", func() bool { return n.count("READY=1") == 1 })
	// STATUS= follows READY=1 (the daemon sends it right after, on its own datagram).
	waitFor(t, 10*time.Second, "a STATUS= line after READY=1", func() bool { return n.count("STATUS=") > 0 })
	// WATCHDOG_USEC=1s: a ping every 0.5s; wait for four more.
	pings := n.count("WATCHDOG=1")
	waitFor(t, 10*time.Second, "four watchdog pings", func() bool { return n.count("WATCHDOG=1") >= pings+4 })
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "RELOADING=1 then READY=1", func() bool {
		return n.count("RELOADING=1") == 1 && n.count("READY=1") == 2
	})
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	waitFor(t, 5*time.Second, "STOPPING=1", func() bool { return n.count("STOPPING=1") == 1 })
	var order []string
	for _, m := range n.messages() {
		if m == "READY=1" || m == "RELOADING=1" || m == "STOPPING=1" {
			order = append(order, m)
		}
	}
	if got := strings.Join(order, ","); got != "READY=1,RELOADING=1,READY=1,STOPPING=1" {
		t.Errorf("lifecycle messages %s, want READY=1,RELOADING=1,READY=1,STOPPING=1", got)
	}
}
