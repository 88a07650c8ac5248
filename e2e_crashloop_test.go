package main

// The crash loop: the real `hexcron run` killed with SIGKILL at random instants, again
// and again, against a standalone `hexcron sim` with fast schedules and short rule
// windows, while two `hexcron trigger` loops use the same database. At the end, from
// hexsim's request ledger and runs and from `hexcron history --json`: no slot with two
// runs and no run without a slot (but for one whose trigger the final SIGTERM
// interrupted, left triggering for the next start: unexplainedRuns), no rule of the
// budget exceeded in any window, and every slot in a final state (or with a reason).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// clRequest is one request of hexsim's ledger with every field the checks need.
type clRequest struct {
	Time       time.Time `json:"time"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Op         string    `json:"op"`
	Status     int       `json:"status"`
	Token      string    `json:"token"`
	User       string    `json:"user"`
	RunCreated string    `json:"runCreated"`
	Fault      string    `json:"fault"`
	TraceID    string    `json:"traceId"`
}

func (s simProc) ledger(t *testing.T) []clRequest {
	var out []clRequest
	getJSON(t, s.root+"/_sim/requests", &out)
	return out
}

// post sends a JSON body to one of the sim's /_sim endpoints and wants 204.
func (s simProc) post(t *testing.T, path, body string) {
	t.Helper()
	resp, err := http.Post(s.root+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s %s: %s", path, body, resp.Status)
	}
}

// clRule is a trigger rule as the sim and the config both state it.
type clRule struct {
	limit int
	per   time.Duration
}

// ruleViolations brute-forces every sliding window of each rule over the RunProject
// requests hexsim counted (everything but 401s and 429s, which it does not count), by
// arrival time: for each request, the requests that arrived in the `per` ending at it.
func ruleViolations(reqs []clRequest, user string, rules []clRule) []string {
	var at []time.Time
	for _, r := range reqs {
		if r.Op == "RunProject" && r.Status != http.StatusUnauthorized && r.Status != http.StatusTooManyRequests &&
			(user == "" || r.User == user) {
			at = append(at, r.Time)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var bad []string
	for _, rule := range rules {
		lo := 0
		worst, worstAt := 0, time.Time{}
		for hi := range at {
			for !at[lo].After(at[hi].Add(-rule.per)) { // at[lo] <= at[hi]-per: outside (at[hi]-per, at[hi]]
				lo++
			}
			if n := hi - lo + 1; n > worst {
				worst, worstAt = n, at[hi]
			}
		}
		if worst > rule.limit {
			bad = append(bad, fmt.Sprintf("%d RunProject requests in the %s ending %s (rule %d per %s)",
				worst, rule.per, worstAt.Format("15:04:05.000"), rule.limit, rule.per))
		}
	}
	return bad
}

// history runs `hexcron history --json --since 0` on db.
func history(t *testing.T, db string) []historyJSON {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binPath, "history", "--json", "--db", db, "--since", "0")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("hexcron history: %v: %s", err, errb.String())
	}
	var slots []historyJSON
	if err := json.Unmarshal(out.Bytes(), &slots); err != nil {
		t.Fatalf("hexcron history --json: %v", err)
	}
	return slots
}

// cleanEnv is this process's environment without any Hex token source, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HEX_API_TOKEN=") || strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") ||
			strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "WATCHDOG_USEC=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// clDaemon is one incarnation of `hexcron run` logging to a file.
type clDaemon struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startLoggedDaemon(t *testing.T, logPath string, env []string, args ...string) *clDaemon {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, append([]string{"run", "--log-format", "json", "--log-level", "debug"}, args...)...)
	cmd.Env = env
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	d := &clDaemon{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait(); f.Close() }()
	return d
}

// logRecords reads the JSON log records of a daemon's log file.
func logRecords(path string) []map[string]any {
	b, _ := os.ReadFile(path)
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

const (
	clProjectTick  = "a1a1a1a1-0000-4000-8000-000000000001"
	clProjectFan   = "a1a1a1a1-0000-4000-8000-000000000002"
	clProjectAdhoc = "a1a1a1a1-0000-4000-8000-000000000003"
	clToken        = "hxtp_crashloop"
)

// Both the sim and the config state these rules: the config must keep hexsim from
// ever answering 429.
var clRules = []clRule{{5, 5 * time.Second}, {20, 30 * time.Second}}

func TestE2ECrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash loop: minutes of real time")
	}
	seed := time.Now().UnixNano() % 1_000_000_000
	if v := os.Getenv("HEXCRON_CRASHLOOP_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("HEXCRON_CRASHLOOP_SEED=%q: %v", v, err)
		}
	}
	kills := 50
	if os.Getenv("HEXCRON_CRASHLOOP_LONG") == "1" {
		kills = 500
	}
	t.Logf("crash loop seed %d (HEXCRON_CRASHLOOP_SEED=%d reproduces the kill instants, trigger pacing and hexsim's draws), %d kills", seed, seed, kills)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))

	sim, dir, cfg := crashLoopSetup(t, seed)
	db := filepath.Join(dir, "hexcron.db")
	env := cleanEnv("HEX_API_TOKEN=" + clToken)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// Keep the evidence: every incarnation's log, the database and the ledger.
		keep := filepath.Join(os.TempDir(), fmt.Sprintf("hexcron-crashloop-%d", seed))
		_ = os.RemoveAll(keep)
		if err := os.CopyFS(keep, os.DirFS(dir)); err == nil {
			t.Logf("logs, database and config kept in %s", keep)
		}
	})
	args := []string{"--config", cfg, "--db", db}

	// Two `hexcron trigger` loops on the same database throughout: one on a schedule of
	// its own, one on the project the daemon's `tick` triggers too.
	type manualResult struct {
		name string
		code int
		out  string
	}
	var (
		mmu     sync.Mutex
		manuals []manualResult
	)
	stopManual := make(chan struct{})
	var manualWG sync.WaitGroup
	for i, name := range []string{"adhoc", "tick"} {
		mrng := rand.New(rand.NewPCG(uint64(seed), uint64(i+1)))
		manualWG.Add(1)
		go func() {
			defer manualWG.Done()
			for {
				select {
				case <-stopManual:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				cmd := exec.CommandContext(ctx, binPath, "trigger", name, "--config", cfg, "--db", db)
				cmd.Env = env
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				_ = cmd.Run() // the exit code says it
				code := cmd.ProcessState.ExitCode()
				if ctx.Err() != nil {
					code = -1 // killed by the 90s bound
				}
				cancel()
				mmu.Lock()
				manuals = append(manuals, manualResult{name: name, code: code, out: out.String()})
				mmu.Unlock()
				pause := time.Duration(500+mrng.IntN(3500)) * time.Millisecond
				select {
				case <-stopManual:
					return
				case <-time.After(pause):
				}
			}
		}()
	}

	start := time.Now()
	var logs []string
	var lived []time.Duration
	for i := range kills {
		// Most kills land in the first three seconds of a life (triggers, waits,
		// polls); one in five during start-up and recovery.
		var life time.Duration
		if rng.IntN(5) == 0 {
			life = time.Duration(rng.IntN(300)) * time.Millisecond
		} else {
			life = time.Duration(300+rng.IntN(2700)) * time.Millisecond
		}
		logPath := filepath.Join(dir, fmt.Sprintf("daemon-%03d.log", i))
		logs = append(logs, logPath)
		d := startLoggedDaemon(t, logPath, env, args...)
		select {
		case err := <-d.done:
			b, _ := os.ReadFile(logPath)
			close(stopManual)
			t.Fatalf("incarnation %d exited by itself after less than %v: %v\n%s", i, life, err, b)
		case <-time.After(life):
		}
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-d.done
		lived = append(lived, life)
	}
	loopEnd := time.Now()
	close(stopManual)
	waited := make(chan struct{})
	go func() { manualWG.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(2 * time.Minute):
		t.Fatal("the hexcron trigger loops did not finish within 2m of being asked to stop")
	}

	// The final, clean start settles everything the kills left: it runs until no slot
	// from before it is live, then stops with SIGTERM.
	finalStart := time.Now()
	finalLog := filepath.Join(dir, "daemon-final.log")
	logs = append(logs, finalLog)
	final := startLoggedDaemon(t, finalLog, env, args...)
	defer func() {
		_ = final.cmd.Process.Kill()
	}()
	unsettled := func() []string {
		var live []string
		for _, s := range slotsOf(t, db) {
			if !s.State.Terminal() && s.Nominal.Before(finalStart) {
				live = append(live, s.Key+" "+string(s.State))
			}
		}
		return live
	}
	deadline := time.Now().Add(150 * time.Second)
	for live := unsettled(); len(live) > 0; live = unsettled() {
		if time.Now().After(deadline) {
			t.Errorf("after %v of a clean run, %d slots from before it are still live: %v", time.Since(finalStart).Round(time.Second), len(live), live)
			break
		}
		select {
		case err := <-final.done:
			b, _ := os.ReadFile(finalLog)
			t.Fatalf("the final daemon exited by itself: %v\n%s", err, b)
		case <-time.After(250 * time.Millisecond):
		}
	}
	settled := time.Now()
	if err := final.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-final.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the final daemon did not exit within 30s of SIGTERM")
	}
	if code := final.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("final daemon exit code after SIGTERM = %d, want 0", code)
	}

	// The evidence.
	slots := history(t, db)
	reqs := sim.ledger(t)
	runs := sim.runs(t)
	for name, v := range map[string]any{"requests.json": reqs, "runs.json": runs} {
		if b, err := json.MarshalIndent(v, "", " "); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name), b, 0o600)
		}
	}

	// 1. No slot with two runs, no run without a slot: every run hexsim created is
	// recorded by exactly one slot, and no two slots record the same run. One
	// exception, exact: the final SIGTERM may interrupt a trigger of the final daemon
	// before it learns its run (an ambiguous answer still waiting to list the runs when
	// the grace period ends); its slot is left triggering for the next start to
	// reconcile, so its run is not a double trigger (unexplainedRuns).
	bySlot := map[string]historyJSON{}
	byRun := map[string]string{}
	for _, s := range slots {
		if _, dup := bySlot[s.Slot]; dup {
			t.Errorf("slot %s listed twice", s.Slot)
		}
		bySlot[s.Slot] = s
		if s.RunID == "" {
			continue
		}
		if other, dup := byRun[s.RunID]; dup {
			t.Errorf("run %s recorded for two slots: %s and %s", s.RunID, other, s.Slot)
		}
		byRun[s.RunID] = s.Slot
	}
	runByID := map[string]simRun{}
	for _, r := range runs {
		runByID[r.ID] = r
	}
	unexplained, awaiting := unexplainedRuns(slotsOf(t, db), runs,
		map[string]string{"tick": clProjectTick, "fan": clProjectFan, "adhoc": clProjectAdhoc})
	for _, r := range unexplained {
		t.Errorf("hexsim has run %s (project %s, started %s) that no slot records and no trigger interrupted by the final stop explains: a double trigger or a lost run",
			r.ID, r.ProjectID, r.StartTime.Format("15:04:05.000"))
	}
	for run, slot := range byRun {
		if _, ok := runByID[run]; !ok {
			t.Errorf("slot %s records run %s that hexsim never created", slot, run)
		}
	}

	// 2. No rule exceeded in any window, and no 429.
	for _, v := range ruleViolations(reqs, "", clRules) {
		t.Error("rule violated: " + v)
	}
	posts, answered := 0, map[int]int{}
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			t.Errorf("hexsim answered 429 at %s to %s %s", r.Time.Format("15:04:05.000"), r.Method, r.Path)
		}
		if r.Op == "RunProject" {
			posts++
			answered[r.Status]++
		}
	}

	// 3. Every slot final, or a reason; final states agree with hexsim.
	states := map[string]int{}
	for _, s := range slots {
		states[s.State]++
		nominal, _ := time.Parse(time.RFC3339, deref(s.Nominal))
		switch s.State {
		case "planned", "triggering", "triggered", "running":
			if nominal.Before(finalStart) {
				t.Errorf("slot %s left %s (reason %q)", s.Slot, s.State, s.Reason)
			}
		case "skipped", "failed", "unknown":
			if s.Reason == "" {
				t.Errorf("slot %s is %s without a reason", s.Slot, s.State)
			}
		default:
			if s.RunID == "" {
				t.Errorf("slot %s is %s without a run id", s.Slot, s.State)
				continue
			}
			want := map[string]string{"completed": "COMPLETED", "errored": "ERRORED", "killed": "KILLED", "timed_out": "KILLED"}[s.State]
			if r, ok := runByID[s.RunID]; ok && want != "" && r.Status != want {
				t.Errorf("slot %s is %s but hexsim says run %s is %s", s.Slot, s.State, s.RunID, r.Status)
			}
		}
	}

	// 4. Nothing lost silently: every scheduled instant between the first start and
	// the final start (less a window) has a row.
	missing := 0
	for n := start.Truncate(time.Second).Add(time.Second); n.Add(20 * time.Second).Before(finalStart); n = n.Add(time.Second) {
		var keys []string
		if n.Second()%3 == 0 {
			keys = append(keys, fmt.Sprintf("tick@%s", n.UTC().Format(time.RFC3339)))
		}
		if n.Second()%10 == 0 {
			for _, r := range []string{"amer", "emea"} {
				keys = append(keys, fmt.Sprintf("fan@%s[region=%s]", n.UTC().Format(time.RFC3339), r))
			}
		}
		for _, k := range keys {
			if _, ok := bySlot[k]; !ok {
				missing++
				if missing <= 20 {
					t.Errorf("slot %s has no row: lost silently", k)
				}
			}
		}
	}
	if missing > 20 {
		t.Errorf("... %d slots without a row in all", missing)
	}

	// The numbers, and what the logs say went wrong.
	mmu.Lock()
	manualOK, manualFail := 0, 0
	for _, m := range manuals {
		if m.code == 0 {
			manualOK++
		} else {
			manualFail++
			if m.code < 0 {
				t.Errorf("hexcron trigger %s hung for 90s: %s", m.name, m.out)
			}
		}
	}
	mmu.Unlock()
	msgs := map[string]int{}
	var errorsLogged []string
	for _, l := range logs {
		for _, rec := range logRecords(l) {
			msg, _ := rec["msg"].(string)
			msgs[msg]++
			if rec["level"] == "ERROR" {
				errorsLogged = append(errorsLogged, fmt.Sprintf("%s: %s %v", filepath.Base(l), msg, rec))
			}
		}
	}
	var total time.Duration
	for _, l := range lived {
		total += l
	}
	kinds := map[string]int{}
	for _, s := range slots {
		kinds[s.Kind]++
	}
	t.Logf("seed %d: %d kills in %v (mean life %v), final settle %v; %d slots %v by kind %v; %d hexsim runs; %d RunProject requests %v; manual triggers %d ok, %d not",
		seed, len(lived), loopEnd.Sub(start).Round(time.Second), (total / time.Duration(max(1, len(lived)))).Round(time.Millisecond),
		settled.Sub(finalStart).Round(time.Second), len(slots), states, kinds, len(runs), posts, answered, manualOK, manualFail)
	t.Logf("the final stop left %d run(s) awaiting their reconcile by the next start", awaiting)
	t.Logf("log lines: recovering %d, adopted %d, re-triggering %d, catching up %d, skipped %d, ambiguous %d",
		msgs["recovering interrupted trigger"], msgs["adopted after reconcile"], msgs["re-triggering: Hex has no run for the interrupted attempt"],
		msgs["catching up missed slot"], msgs["skipped"], msgs["RunProject outcome is ambiguous; will list the project's runs before any retry"])
	// Nothing in this setup deserves an ERROR (no permanent failure, no bad token): one
	// is a bug's trace (a record that failed, a run claimed twice, ...).
	for i, e := range errorsLogged {
		if i == 30 {
			t.Errorf("... %d ERROR lines in all", len(errorsLogged))
			break
		}
		t.Errorf("ERROR logged: %s", e)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// crashLoopSetup starts the crash loops' hexsim (seeded faults, rules clRules) and
// writes their config (a 3-second, a fanned-out 10-second and an ad-hoc schedule) in a
// fresh directory.
func crashLoopSetup(t *testing.T, seed int64) (simProc, string, string) {
	t.Helper()
	sim := startSimProc(t, fmt.Sprintf(`seed: %d
tokens: [%s]
limits:
  trigger: [{limit: %d, per: %s}, {limit: %d, per: %s}]
  window: rolling
  status: [{limit: 6000, per: 1m}]
  all_calls: [{limit: 6000, per: 1m}]
runs:
  pending: 200ms
  running: 500ms
  running_jitter: 2s
  outcomes: {COMPLETED: 85, ERRORED: 10, KILLED: 5}
faults:
  probabilities: {5xx-after-create: 0.03, drop-after-create: 0.02, 5xx-before-create: 0.02}
`, seed, clToken, clRules[0].limit, clRules[0].per, clRules[1].limit, clRules[1].per))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "schedules.yaml")
	conf := fmt.Sprintf(`hex:
  base_url: %s
budget:
  triggers:
    - {limit: %d, per: %s}
    - {limit: %d, per: %s}
  reads:
    - {limit: 600, per: 1m}
defaults:
  window: 10s
  timeout: 1m
  overlap: allow
schedules:
  - {name: tick, project: %s, cron: "*/3 * * * * *", window: 6s}
  - {name: fan, project: %s, cron: "*/10 * * * * *", window: 15s, matrix: {region: [emea, amer]}}
  - {name: adhoc, project: %s, cron: "0 0 0 1 1 *", window: 20s}
`, sim.base, clRules[0].limit, clRules[0].per, clRules[1].limit, clRules[1].per, clProjectTick, clProjectFan, clProjectAdhoc)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return sim, dir, cfg
}
