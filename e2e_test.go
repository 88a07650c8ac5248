package main

// End-to-end tests of the real hexcron binary (built once in TestMain) against a
// standalone `hexcron sim` over loopback, with fast schedules (a seconds field) and
// short rule windows. Real processes, real signals, real SQLite files.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hexcron/internal/pgtest"
	"hexcron/state"
)

// binPath is the hexcron binary built by TestMain for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hexcron-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "hexcron")
	// Built as dist/build-deb builds the packaged binary (position-independent,
	// -trimpath), so that the tests run what is shipped and share its build cache.
	build := exec.Command("go", "build", "-buildmode=pie", "-trimpath", "-o", binPath, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hexcron for the end-to-end tests:", err)
		os.Exit(1)
	}
	code := pgtest.Main(m) // stops the PostgreSQL cluster of the e2e_postgres tests
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// simProc is a running `hexcron sim`.
type simProc struct {
	base string // API base URL
	root string // http://HOST:PORT
}

// startSimProc runs `hexcron sim` with the given YAML config and returns its URLs.
func startSimProc(t *testing.T, simYAML string) simProc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(cfg, []byte(simYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "sim", "--addr", "127.0.0.1:0", "--config", cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("sim printed no address: %v (stderr: %s)", err, stderr.String())
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("sim printed %q, want its URL", line)
	}
	base := strings.TrimSpace(line[i:])
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return simProc{base: base, root: strings.TrimSuffix(base, "/api/v1")}
}

// simRun is one run as `GET /_sim/runs` shows it.
type simRun struct {
	ID        string    `json:"runId"`
	ProjectID string    `json:"projectId"`
	Status    string    `json:"status"`
	Cancelled bool      `json:"cancelled"`
	StartTime time.Time `json:"startTime"`
	EndTime   time.Time `json:"endTime"`
}

// simRequest is one request as `GET /_sim/requests` shows it.
type simRequest struct {
	Time       time.Time `json:"time"`
	Method     string    `json:"method"`
	Op         string    `json:"op"`
	Status     int       `json:"status"`
	RunCreated string    `json:"runCreated"`
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func (s simProc) runs(t *testing.T) []simRun {
	var out []simRun
	getJSON(t, s.root+"/_sim/runs", &out)
	return out
}

func (s simProc) requests(t *testing.T) []simRequest {
	var out []simRequest
	getJSON(t, s.root+"/_sim/requests", &out)
	return out
}

// daemonProc is a running `hexcron run`.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// startDaemon runs `hexcron run` with args and extra environment variables.
func startDaemon(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"run", "--log-format", "json", "--log-level", "debug"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return launchDaemon(t, cmd)
}

// launchDaemon starts cmd (a `hexcron run`), capturing its stderr; the test's cleanup
// kills it and, when the test failed, prints its log.
func launchDaemon(t *testing.T, cmd *exec.Cmd) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.stderr.String())
		}
	})
	return d
}

// stop sends SIGTERM and returns the exit code.
func (d *daemonProc) stop(t *testing.T) int {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit within 30s of SIGTERM")
	}
	d.done <- nil // for the cleanup
	return d.cmd.ProcessState.ExitCode()
}

// logLines returns the daemon's JSON log records whose msg is msg.
func (d *daemonProc) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitFor polls cond every 100ms until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// e2eConfig writes a hexcron config pointing at sim with the given schedules YAML.
func e2eConfig(t *testing.T, dir string, sim simProc, schedules string) string {
	t.Helper()
	path := filepath.Join(dir, "schedules.yaml")
	writeConfig(t, path, sim, schedules)
	return path
}

func writeConfig(t *testing.T, path string, sim simProc, schedules string) {
	t.Helper()
	text := fmt.Sprintf(`hex:
  base_url: %s
budget:
  triggers:
    - {limit: 20, per: 10s}
    - {limit: 60, per: 1m}
  reads:
    - {limit: 600, per: 1m}
defaults:
  window: 1s
  timeout: 1m
  overlap: allow
%s`, sim.base, schedules)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

const (
	e2eToken   = "HEX_API_TOKEN=hxtp_e2e_token"
	e2eProject = "5a8591dd-4039-49df-9202-96385ba3eff8"
	fastSim    = `limits:
  trigger: [{limit: 20, per: 10s}, {limit: 60, per: 1m}]
  window: rolling
  status: [{limit: 6000, per: 1m}]
  all_calls: [{limit: 6000, per: 1m}]
runs:
  pending: 100ms
  running: 300ms
`
)

// slotsOf reads every slot of the database, newest first.
func slotsOf(t *testing.T, path string) []state.Slot {
	t.Helper()
	db, err := state.Open(context.Background(), path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	slots, err := db.History(context.Background(), state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return slots
}

// checkOneRunPerSlot asserts that every run hexsim created belongs to exactly one slot
// and that no slot claims a run hexsim does not have.
func checkOneRunPerSlot(t *testing.T, sim simProc, slots []state.Slot) {
	t.Helper()
	bySlot := map[string]string{}
	byRun := map[string]string{}
	for _, s := range slots {
		if s.RunID == "" {
			continue
		}
		if other, dup := byRun[s.RunID]; dup {
			t.Errorf("run %s recorded for two slots: %s and %s", s.RunID, other, s.Key)
		}
		byRun[s.RunID] = s.Key
		bySlot[s.Key] = s.RunID
	}
	for _, r := range sim.runs(t) {
		if _, ok := byRun[r.ID]; !ok {
			t.Errorf("hexsim has run %s that no slot recorded (a double trigger?)", r.ID)
		}
	}
}

func TestE2EFiresEverySlotOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - name: every-two-seconds
    project: `+e2eProject+`
    cron: "*/2 * * * * *"
  - name: fanout
    project: 0f1e2d3c-4b5a-4789-8abc-def012345678
    cron: "*/5 * * * * *"
    matrix:
      region: [emea, amer]
`)
	db := filepath.Join(dir, "hexcron.db")
	start := time.Now()
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waitFor(t, 30*time.Second, "8 completed slots", func() bool {
		n := 0
		for _, s := range d.logLines("completed") {
			_ = s
			n++
		}
		return n >= 8
	})
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	stop := time.Now()
	slots := slotsOf(t, db)
	checkOneRunPerSlot(t, sim, slots)
	// Every slot whose window closed while the daemon ran fully has a row, and none
	// is left live.
	seen := map[string]state.Slot{}
	for _, s := range slots {
		seen[s.Key] = s
		if s.State == state.StateTriggering || s.State == state.StatePlanned {
			t.Errorf("slot %s left in %s after a clean stop", s.Key, s.State)
		}
	}
	for n := start.Truncate(time.Second).Add(3 * time.Second); n.Add(2 * time.Second).Before(stop); n = n.Add(time.Second) {
		if n.Second()%2 == 0 {
			key := fmt.Sprintf("every-two-seconds@%s", n.UTC().Format(time.RFC3339))
			if _, ok := seen[key]; !ok {
				t.Errorf("slot %s has no row", key)
			}
		}
		if n.Second()%5 == 0 {
			for _, r := range []string{"amer", "emea"} {
				key := fmt.Sprintf("fanout@%s[region=%s]", n.UTC().Format(time.RFC3339), r)
				if _, ok := seen[key]; !ok {
					t.Errorf("slot %s has no row", key)
				}
			}
		}
	}
	for _, r := range sim.requests(t) {
		if r.Status == 429 {
			t.Errorf("hexsim answered 429 at %v to %s", r.Time, r.Op)
		}
	}
}

func TestE2EOverlapPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	// Runs last 6s; the schedules fire every 2s, so each slot after the first meets a
	// run still going.
	sim := startSimProc(t, `limits:
  trigger: [{limit: 20, per: 10s}, {limit: 60, per: 1m}]
  status: [{limit: 6000, per: 1m}]
  all_calls: [{limit: 6000, per: 1m}]
runs:
  pending: 100ms
  running: 6s
`)
	dir := t.TempDir()
	projects := map[string]string{
		"skip":    "11111111-1111-4111-8111-111111111111",
		"queue":   "22222222-2222-4222-8222-222222222222",
		"replace": "33333333-3333-4333-8333-333333333333",
	}
	var sched strings.Builder
	sched.WriteString("schedules:\n")
	for _, p := range []string{"skip", "queue", "replace"} {
		fmt.Fprintf(&sched, "  - {name: overlap-%s, project: %s, cron: \"*/2 * * * * *\", overlap: %s}\n", p, projects[p], p)
	}
	cfg := e2eConfig(t, dir, sim, sched.String())
	db := filepath.Join(dir, "hexcron.db")
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	runsOf := func(project string) int {
		n := 0
		for _, r := range sim.runs(t) {
			if r.ProjectID == project {
				n++
			}
		}
		return n
	}
	waitFor(t, 60*time.Second, "a replaced run, a dequeued firing, two runs each of skip and queue", func() bool {
		return len(d.logLines("killed")) > 0 && len(d.logLines("dequeued: previous run ended")) > 0 &&
			runsOf(projects["skip"]) >= 2 && runsOf(projects["queue"]) >= 2
	})
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	slots := slotsOf(t, db)
	checkOneRunPerSlot(t, sim, slots)
	count := map[string]map[state.State]int{}
	reasons := map[string][]string{}
	for _, s := range slots {
		if count[s.Schedule] == nil {
			count[s.Schedule] = map[state.State]int{}
		}
		count[s.Schedule][s.State]++
		reasons[s.Schedule] = append(reasons[s.Schedule], s.Reason)
	}
	has := func(schedule, substr string) bool {
		for _, r := range reasons[schedule] {
			if strings.Contains(r, substr) {
				return true
			}
		}
		return false
	}
	if count["overlap-skip"][state.StateSkipped] == 0 || !has("overlap-skip", "overlap skip") {
		t.Errorf("skip: no slot skipped for overlap: %v %q", count["overlap-skip"], reasons["overlap-skip"])
	}
	if !has("overlap-replace", "replaced by overlap-replace@") {
		t.Errorf("replace: no run killed for a newer slot: %v %q", count["overlap-replace"], reasons["overlap-replace"])
	}
	if !has("overlap-queue", "overlap queue: run") || count["overlap-queue"][state.StateSkipped] == 0 {
		t.Errorf("queue: want slots skipped because one already waits: %v %q", count["overlap-queue"], reasons["overlap-queue"])
	}
	// With skip and queue, the project never has two runs going at once in hexsim.
	for _, p := range []string{"skip", "queue"} {
		var runs []simRun
		for _, r := range sim.runs(t) {
			if r.ProjectID == projects[p] {
				runs = append(runs, r)
			}
		}
		if len(runs) < 2 {
			t.Errorf("%s: %d runs, want several", p, len(runs))
		}
		for i := 1; i < len(runs); i++ {
			prev := runs[i-1]
			if prev.EndTime.IsZero() || runs[i].StartTime.Before(prev.EndTime) {
				t.Errorf("%s: run %s started at %v while run %s was still going (ended %v)",
					p, runs[i].ID, runs[i].StartTime, prev.ID, prev.EndTime)
			}
		}
	}
	// replace cancels through Hex: hexsim saw DELETEs and marked the runs cancelled.
	cancelled := 0
	for _, r := range sim.runs(t) {
		if r.ProjectID == projects["replace"] && r.Cancelled {
			cancelled++
		}
	}
	if cancelled == 0 {
		t.Error("replace: hexsim has no cancelled run")
	}
}

func TestE2ETimeoutCancels(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, `limits:
  status: [{limit: 6000, per: 1m}]
  all_calls: [{limit: 6000, per: 1m}]
runs:
  pending: 100ms
  outcomes: {STUCK: 1}
`)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - name: stuck
    project: `+e2eProject+`
    cron: "*/30 * * * * *"
    window: 30s
    timeout: 2s
`)
	db := filepath.Join(dir, "hexcron.db")
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waitFor(t, 60*time.Second, "a timed out run", func() bool { return len(d.logLines("timed_out")) > 0 })
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	var timedOut []state.Slot
	for _, s := range slotsOf(t, db) {
		if s.State == state.StateTimedOut {
			timedOut = append(timedOut, s)
		}
	}
	if len(timedOut) == 0 {
		t.Fatal("no slot recorded timed_out")
	}
	s := timedOut[0]
	if !strings.Contains(s.Reason, "timeout 2s") {
		t.Errorf("reason = %q, want the timeout named", s.Reason)
	}
	var deleted bool
	for _, r := range sim.requests(t) {
		if r.Method == http.MethodDelete && r.Status == http.StatusNoContent {
			deleted = true
		}
	}
	if !deleted {
		t.Error("hexsim saw no CancelRun answered 204")
	}
	for _, r := range sim.runs(t) {
		if r.ID == s.RunID && (r.Status != "KILLED" || !r.Cancelled) {
			t.Errorf("run %s in hexsim: status %s cancelled %v, want KILLED by cancel", r.ID, r.Status, r.Cancelled)
		}
	}
}

func TestE2EReload(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - {name: first, project: `+e2eProject+`, cron: "*/2 * * * * *"}
`)
	db := filepath.Join(dir, "hexcron.db")
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waitFor(t, 20*time.Second, "a first trigger", func() bool { return len(d.logLines("triggered")) > 0 })

	// A broken file: the old config keeps running and the error names file and line.
	broken := fmt.Sprintf("hex:\n  base_url: %s\nschedules:\n  - {name: first, project: %s, cron: \"*/2 * * * * *\"}\n  - {name: second, project: not-a-uuid, cron: \"*/2 * * * * *\"}\n", sim.base, e2eProject)
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload failure", func() bool {
		return len(d.logLines("reload failed; the previous config keeps running")) > 0
	})
	rec := d.logLines("reload failed; the previous config keeps running")[0]
	if e, _ := rec["err"].(string); !strings.Contains(e, "schedules.yaml:5:") || !strings.Contains(e, "schedules[1].project") {
		t.Errorf("reload error %q does not name FILE:LINE and the field", e)
	}
	before := len(d.logLines("triggered"))
	waitFor(t, 10*time.Second, "triggers to go on after the broken reload", func() bool {
		return len(d.logLines("triggered")) > before+1
	})

	// A good file adds a schedule, which then fires.
	writeConfig(t, cfg, sim, `schedules:
  - {name: first, project: `+e2eProject+`, cron: "*/2 * * * * *"}
  - {name: second, project: 0f1e2d3c-4b5a-4789-8abc-def012345678, cron: "*/2 * * * * *"}
`)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the new schedule to fire", func() bool {
		for _, r := range d.logLines("triggered") {
			if r["schedule"] == "second" {
				return true
			}
		}
		return false
	})
	if len(d.logLines("reloaded")) != 1 {
		t.Errorf("want one reloaded line, log has %d", len(d.logLines("reloaded")))
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	checkOneRunPerSlot(t, sim, slotsOf(t, db))
}

func TestE2ERestartCatchesUpMostRecentSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - {name: ticker, project: `+e2eProject+`, cron: "*/4 * * * * *", catchup: 1m}
`)
	db := filepath.Join(dir, "hexcron.db")
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waitFor(t, 20*time.Second, "a first trigger", func() bool { return len(d.logLines("triggered")) > 0 })
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	down := time.Now()
	time.Sleep(9 * time.Second) // downtime: two slots' windows close
	// Restart 2-3 s after a slot, so that no slot's 1 s window is still open: an open
	// slot would fire instead of the catch-up (of one series only the newest fires).
	for time.Now().Unix()%4 != 2 {
		time.Sleep(50 * time.Millisecond)
	}
	d2 := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waitFor(t, 20*time.Second, "the catch-up", func() bool { return len(d2.logLines("catching up missed slot")) > 0 })
	up := time.Now()
	waitFor(t, 20*time.Second, "the catch-up trigger", func() bool {
		for _, r := range d2.logLines("triggered") {
			if r["slot"] == d2.logLines("catching up missed slot")[0]["slot"] {
				return true
			}
		}
		return false
	})
	if code := d2.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	if n := len(d2.logLines("catching up missed slot")); n != 1 {
		t.Fatalf("caught up %d slots, want exactly 1", n)
	}
	caught := d2.logLines("catching up missed slot")[0]["slot"].(string)
	var missed, skippedDown []string
	for _, s := range slotsOf(t, db) {
		if s.Nominal.After(down) && s.Nominal.Add(time.Second).Before(up.Add(-time.Second)) {
			missed = append(missed, s.Key)
			if s.State == state.StateSkipped && strings.Contains(s.Reason, "missed while down") {
				skippedDown = append(skippedDown, s.Key)
			}
		}
	}
	if len(skippedDown) == 0 {
		t.Errorf("no slot recorded skipped as missed while down (slots in the downtime: %v)", missed)
	}
	for _, k := range skippedDown {
		if k >= caught {
			t.Errorf("slot %s skipped as missed but is not older than the caught-up %s", k, caught)
		}
	}
	checkOneRunPerSlot(t, sim, slotsOf(t, db))
}

func TestE2ESdNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var msgs []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), msgs...)
	}
	count := func(prefix string) int {
		n := 0
		for _, m := range got() {
			if strings.HasPrefix(m, prefix) {
				n++
			}
		}
		return n
	}

	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - {name: ticker, project: `+e2eProject+`, cron: "*/5 * * * * *"}
`)
	d := startDaemon(t, []string{e2eToken, "NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"},
		"--config", cfg, "--db", filepath.Join(dir, "hexcron.db"))
	waitFor(t, 20*time.Second, "READY=1 and three watchdog pings", func() bool {
		return count("READY=1") == 1 && count("WATCHDOG=1") >= 3
	})
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "READY=1 after the reload", func() bool { return count("READY=1") == 2 })
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	waitFor(t, 5*time.Second, "STOPPING=1", func() bool { return count("STOPPING=1") == 1 })

	// The sequence, ignoring STATUS= and WATCHDOG=1 in between.
	var seq []string
	var status string
	for _, m := range got() {
		switch {
		case strings.HasPrefix(m, "STATUS="):
			status = m
		case m == "WATCHDOG=1":
		default:
			seq = append(seq, m)
		}
	}
	want := []string{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}
	if strings.Join(seq, " ") != strings.Join(want, " ") {
		t.Errorf("sd_notify sequence = %q, want %q", seq, want)
	}
	if !strings.Contains(status, "next ticker at") || !strings.Contains(status, "budget") {
		t.Errorf("STATUS line %q does not name the next firing and the budget", status)
	}
}

// A first start (or a restart) never bursts one schedule: of the slots whose windows
// are still open, only the newest fires; the older ones are recorded skipped.
func TestE2EStartFiresOnlyNewestOpenSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - {name: wide, project: `+e2eProject+`, cron: "*/2 * * * * *", window: 9s}
`)
	db := filepath.Join(dir, "hexcron.db")
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waitFor(t, 20*time.Second, "a first trigger", func() bool { return len(d.logLines("triggered")) > 0 })
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	// In nominal order: the first slot with a run is the newest that was open at the
	// start; every slot before it was open too and must be skipped as older.
	slots := slotsOf(t, db)
	sort.Slice(slots, func(a, b int) bool { return slots[a].Nominal.Before(slots[b].Nominal) })
	var skipped []string
	for _, s := range slots {
		if s.RunID != "" {
			break
		}
		if s.State != state.StateSkipped || !strings.Contains(s.Reason, "a newer slot of the schedule") {
			t.Fatalf("slot %s before the first fired one is %s (%q), want skipped as older", s.Key, s.State, s.Reason)
		}
		skipped = append(skipped, s.Key)
	}
	if len(skipped) < 2 || len(skipped) == len(slots) {
		t.Fatalf("skipped as older: %v of %d slots; want at least 2, then a fired one", skipped, len(slots))
	}
}

// The README's first command: `hexcron run --simulate` needs no token and no network,
// and a second demo in the same directory starts afresh (its virtual clock restarts at
// the next hour, so the first demo's slots must not count as handled).
func TestE2ESimulateTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	cfg, err := filepath.Abs("schedules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	demo := func(until func(d *daemonProc) bool) *daemonProc {
		cmd := exec.Command(binPath, "run", "--simulate", "--speed", "300", "--config", cfg, "--log-format", "json")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HEX_API_TOKEN=")
		d := launchDaemon(t, cmd)
		waitFor(t, 30*time.Second, "the demo to trigger", func() bool { return until(d) })
		if code := d.stop(t); code != 0 {
			t.Fatalf("demo: exit code %d", code)
		}
		return d
	}
	triggered := func(d *daemonProc, slot any) bool {
		for _, r := range d.logLines("triggered") {
			if slot == nil || r["slot"] == slot {
				return true
			}
		}
		return false
	}
	first := demo(func(d *daemonProc) bool { return triggered(d, nil) })
	slot := first.logLines("triggered")[0]["slot"]
	startsAt := first.logLines("simulation: built-in Hex, virtual clock")[0]["starts_at"]
	// The second demo starts at the same simulated instant (unless a real hour turned
	// in between) and fires that slot again: the first demo's rows do not count.
	demo(func(d *daemonProc) bool {
		start := d.logLines("simulation: built-in Hex, virtual clock")
		if len(start) > 0 && start[0]["starts_at"] != startsAt {
			return triggered(d, nil)
		}
		return triggered(d, slot)
	})
	if _, err := os.Stat(filepath.Join(dir, "hexcron-sim.db")); err != nil {
		t.Fatalf("the demo's database is not ./hexcron-sim.db: %v", err)
	}
}
