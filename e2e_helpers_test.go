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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hexcron/state"
)

// The end-to-end tests' shared helpers: the built binary, hexsim and daemon processes,
// config files, and the checks every end-to-end test makes. Command tests' helpers
// (testEnv, golden) are in cmd_helpers_test.go.

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
	code := m.Run()
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
