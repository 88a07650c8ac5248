package main

// End-to-end tests of hexcron on PostgreSQL: the real binary, a throwaway PostgreSQL
// cluster (internal/pgtest), `hexcron sim` over loopback. An active daemon and its
// standbys, `hexcron trigger` from other processes, SIGKILL, SIGSTOP/SIGCONT (the
// fenced zombie) and a restart of PostgreSQL itself. Without PostgreSQL on the machine
// these tests skip with a message (except under CI=true, where they install it).

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

	"hexcron/internal/pgtest"
	"hexcron/state"
	"hexcron/state/postgres"
)

// pgOpen opens the database at url read-only, for the test's own checks.
func pgOpen(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// pgSlots reads every slot of the database at url, newest first.
func pgSlots(t *testing.T, url string) []state.Slot {
	t.Helper()
	db := pgOpen(t, url)
	defer db.Close()
	slots, err := db.History(context.Background(), state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return slots
}

// pgLeader is the pid of the daemon holding a live lease, and the lease's epoch; pid 0
// when nobody leads now.
func pgLeader(t *testing.T, url string) (pid int, epoch int64) {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{ReadOnly: true})
	if err != nil {
		return 0, 0 // the server restarting
	}
	defer db.Close()
	ctx := context.Background()
	l, err := db.CurrentLease(ctx)
	if err != nil || l.Owner == "" || !time.Now().Before(l.Expires) {
		return 0, l.Epoch
	}
	owners, err := db.Owners(ctx)
	if err != nil {
		return 0, l.Epoch
	}
	for _, o := range owners {
		if o.ID == l.Owner {
			return o.PID, l.Epoch
		}
	}
	return 0, l.Epoch
}

// records are the JSON log records of text (one per line) with their time.
type logRecord struct {
	Time time.Time
	Msg  string
	Rec  map[string]any
}

func parseLog(text string) []logRecord {
	var out []logRecord
	for _, line := range strings.Split(text, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		ts, _ := rec["time"].(string)
		at, _ := time.Parse(time.RFC3339Nano, ts)
		msg, _ := rec["msg"].(string)
		out = append(out, logRecord{Time: at, Msg: msg, Rec: rec})
	}
	return out
}

// firstAfter is the time of the first record with msg at or after t (zero: none).
func firstAfter(recs []logRecord, msg string, t time.Time) time.Time {
	for _, r := range recs {
		if r.Msg == msg && !r.Time.Before(t) {
			return r.Time
		}
	}
	return time.Time{}
}

// pgRun is `hexcron CMD args...` to completion: its exit code, stdout and stderr.
func pgRun(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestE2EPostgresExampleConfig: `hexcron run --db postgres://...` with the README's
// example config (pointed at hexsim) runs and leads; `hexcron trigger` from another
// process is admitted through the same ledger; `status` and `history` from other
// processes read the same database and name the leader.
func TestE2EPostgresExampleConfig(t *testing.T) {
	url := pgtest.NewURL(t)
	sim := startSimProc(t, fastSim)
	example, err := os.ReadFile("schedules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "schedules.yaml")
	text := strings.Replace(string(example), "https://app.hex.tech/api/v1", sim.base, 1)
	if text == string(example) {
		t.Fatal("the example config has no base_url to point at hexsim")
	}
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cleanEnv(e2eToken)
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", url)
	waitFor(t, 30*time.Second, "the daemon to run", func() bool { return len(d.logLines("hexcron running")) > 0 })
	if pid, epoch := pgLeader(t, url); pid != d.cmd.Process.Pid || epoch != 1 {
		t.Fatalf("leader pid %d epoch %d, want the daemon (%d) at epoch 1", pid, epoch, d.cmd.Process.Pid)
	}

	code, out, errb := pgRun(t, env, "trigger", "revenue-dashboard", "--config", cfg, "--db", url)
	if code != 0 {
		t.Fatalf("hexcron trigger: exit %d: %s%s", code, out, errb)
	}
	code, out, errb = pgRun(t, env, "status", "--config", cfg, "--db", url)
	if code != 0 {
		t.Fatalf("hexcron status: exit %d: %s", code, errb)
	}
	host, _ := os.Hostname()
	for _, want := range []string{"revenue-dashboard", "exec-summary", fmt.Sprintf("hexcron on %s (pid %d) since", host, d.cmd.Process.Pid), "(lease epoch 1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	code, out, errb = pgRun(t, env, "history", "--json", "--db", url, "--since", "0")
	if code != 0 {
		t.Fatalf("hexcron history: exit %d: %s", code, errb)
	}
	var slots []historyJSON
	if err := json.Unmarshal([]byte(out), &slots); err != nil {
		t.Fatal(err)
	}
	manual := 0
	for _, s := range slots {
		if strings.HasSuffix(s.Slot, "+manual") && s.RunID != "" {
			manual++
		}
	}
	if manual != 1 {
		t.Errorf("history = %+v, want the manual run among the slots", slots)
	}
	checkOneRunPerSlot(t, sim, pgSlots(t, url))
	// The URL in the config works as --db does.
	withURL := filepath.Join(t.TempDir(), "with-url.yaml")
	if err := os.WriteFile(withURL, []byte(strings.Replace(text, "budget:", "state:\n  url: "+url+"\n\nbudget:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errb := pgRun(t, env, "history", "--config", withURL); code != 0 || !strings.Contains(out, "revenue-dashboard") {
		t.Errorf("history with state.url in the config: exit %d: %s%s", code, out, errb)
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM", code)
	}
	if pid, _ := pgLeader(t, url); pid != 0 {
		t.Errorf("after a clean stop the lease is still held by pid %d", pid)
	}
}

// pgFastConfig is a config firing `tick` every 2 seconds against sim, on url.
func pgFastConfig(t *testing.T, dir string, sim simProc) string {
	t.Helper()
	return e2eConfig(t, dir, sim, `schedules:
  - {name: tick, project: `+e2eProject+`, cron: "*/2 * * * * *"}
`)
}

// TestE2EPostgresFailover: two daemons on one PostgreSQL. Killing the active one, the
// standby triggers the next due slot within TTL + 5 s. Pausing the new active one
// (SIGSTOP) past its TTL, a third takes over; resumed (SIGCONT), the paused one
// triggers nothing, says it lost the lease, and stands by. Every run hexsim created is
// recorded by exactly one slot.
func TestE2EPostgresFailover(t *testing.T) {
	const ttl = 4 * time.Second
	url := pgtest.NewURL(t)
	sim := startSimProc(t, fastSim)
	cfg := pgFastConfig(t, t.TempDir(), sim)
	args := []string{"--config", cfg, "--db", url, "--lease-ttl", ttl.String()}
	a := startDaemon(t, []string{e2eToken}, args...)
	waitFor(t, 30*time.Second, "a to lead and trigger", func() bool { return len(a.logLines("triggered")) > 0 })
	b := startDaemon(t, []string{e2eToken}, args...)
	waitFor(t, 30*time.Second, "b to stand by", func() bool { return strings.Contains(b.stderr.String(), `"msg":"standing by: hexcron on`) })
	if pid, _ := pgLeader(t, url); pid != a.cmd.Process.Pid {
		t.Fatalf("leader pid %d, want a (%d)", pid, a.cmd.Process.Pid)
	}

	// Kill the active one: b triggers the next due slot within TTL + 5 s.
	killed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ttl+15*time.Second, "b to trigger", func() bool {
		return !firstAfter(parseLog(b.stderr.String()), "triggered", killed).IsZero()
	})
	first := firstAfter(parseLog(b.stderr.String()), "triggered", killed)
	failover := first.Sub(killed)
	t.Logf("failover: SIGKILL of the leader to the standby's first trigger: %v (lease TTL %v)", failover.Round(time.Millisecond), ttl)
	if failover > ttl+5*time.Second {
		t.Errorf("failover took %v, want at most TTL + 5s = %v", failover, ttl+5*time.Second)
	}

	// Pause b (now the leader) past its TTL with c standing by; then resume it.
	c := startDaemon(t, []string{e2eToken}, args...)
	waitFor(t, 30*time.Second, "c to stand by", func() bool { return strings.Contains(c.stderr.String(), `"msg":"standing by: hexcron on`) })
	stopped := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ttl+15*time.Second, "c to take over", func() bool {
		return !firstAfter(parseLog(c.stderr.String()), "triggered", stopped).IsZero()
	})
	time.Sleep(2 * time.Second) // c triggers a slot or two more while b is still paused
	resumed := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "b to stand by again", func() bool {
		return slices.ContainsFunc(parseLog(b.stderr.String()), func(r logRecord) bool {
			return !r.Time.Before(resumed) && strings.HasPrefix(r.Msg, "standing by: hexcron on") &&
				strings.Contains(r.Msg, "(pid "+strconv.Itoa(c.cmd.Process.Pid)+")")
		})
	})
	for _, r := range parseLog(b.stderr.String()) {
		if r.Time.Before(stopped) {
			continue
		}
		switch r.Msg {
		case "triggered", "run triggered", "RunProject outcome is ambiguous; will list the project's runs before any retry", "skipped", "adopted after reconcile":
			t.Errorf("the paused daemon acted after it was resumed (fenced): %v", r.Rec)
		}
	}
	if !strings.Contains(b.stderr.String(), "this daemon lost the lease") {
		t.Error("the resumed daemon did not say it lost the lease")
	}
	if pid, _ := pgLeader(t, url); pid != c.cmd.Process.Pid {
		t.Errorf("leader pid %d, want c (%d)", pid, c.cmd.Process.Pid)
	}
	time.Sleep(3 * time.Second) // runs end and are polled
	checkOneRunPerSlot(t, sim, pgSlots(t, url))
}

// TestE2EPostgresCrashLoop: an active and a standby `hexcron run` and a `hexcron
// trigger` loop on one PostgreSQL against hexsim; the active daemon is SIGKILLed at
// seeded random instants (and a new standby started each time), paused past its TTL
// and resumed once (the fenced zombie), and PostgreSQL is restarted once. Then: no
// slot with two runs and no run without a slot, no rule of the budget exceeded in any
// window (brute force over hexsim's request ledger), every slot final, no ERROR but
// the expected ones; and the failover times (kill to the new leader's first trigger).
// HEXCRON_PG_CRASHLOOP_LONG=1 runs 60 kills instead of 6.
func TestE2EPostgresCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash loop: minutes of real time")
	}
	url := pgtest.NewURL(t)
	server := pgtest.Shared(t)
	seed := time.Now().UnixNano() % 1_000_000_000
	if v := os.Getenv("HEXCRON_CRASHLOOP_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("HEXCRON_CRASHLOOP_SEED=%q: %v", v, err)
		}
	}
	kills := 6
	if os.Getenv("HEXCRON_PG_CRASHLOOP_LONG") == "1" {
		kills = 60
	}
	const ttl = 3 * time.Second
	t.Logf("PostgreSQL crash loop seed %d (HEXCRON_CRASHLOOP_SEED=%d reproduces it), %d kills, lease TTL %v", seed, seed, kills, ttl)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e5))

	sim, dir, cfg := crashLoopSetup(t, seed)
	env := cleanEnv("HEX_API_TOKEN=" + clToken)
	args := []string{"--config", cfg, "--db", url, "--lease-ttl", ttl.String()}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		keep := filepath.Join(os.TempDir(), fmt.Sprintf("hexcron-pg-crashloop-%d", seed))
		_ = os.RemoveAll(keep)
		if err := os.CopyFS(keep, os.DirFS(dir)); err == nil {
			t.Logf("logs and config kept in %s", keep)
		}
	})

	// The daemons: every one logs to its own file; all are killed at the end.
	var (
		dmu     sync.Mutex
		daemons = map[int]*clDaemon{}
		logs    []string
	)
	start := func() *clDaemon {
		dmu.Lock()
		defer dmu.Unlock()
		logPath := filepath.Join(dir, fmt.Sprintf("daemon-%03d.log", len(logs)))
		logs = append(logs, logPath)
		d := startLoggedDaemon(t, logPath, env, args...)
		daemons[d.cmd.Process.Pid] = d
		return d
	}
	defer func() {
		for _, d := range daemons {
			_ = d.cmd.Process.Signal(syscall.SIGCONT)
			_ = d.cmd.Process.Kill()
		}
	}()
	leader := func(limit time.Duration) *clDaemon {
		t.Helper()
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			if pid, _ := pgLeader(t, url); pid != 0 {
				dmu.Lock()
				d := daemons[pid]
				dmu.Unlock()
				if d != nil {
					return d
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no daemon leads after %v", limit)
		return nil
	}

	// A `hexcron trigger` loop on the project the daemon's tick triggers too, through
	// the same ledger, throughout.
	stopManual := make(chan struct{})
	var manualWG sync.WaitGroup
	var manualFail int
	manualWG.Add(1)
	go func() {
		defer manualWG.Done()
		mrng := rand.New(rand.NewPCG(uint64(seed), 7))
		for {
			select {
			case <-stopManual:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			cmd := exec.CommandContext(ctx, binPath, "trigger", "tick", "--config", cfg, "--db", url)
			cmd.Env = env
			if err := cmd.Run(); err != nil {
				manualFail++
			}
			cancel()
			select {
			case <-stopManual:
				return
			case <-time.After(time.Duration(500+mrng.IntN(3500)) * time.Millisecond):
			}
		}
	}()

	begin := time.Now()
	start()
	start()
	var failovers []time.Duration
	// Event i: kill the leader; one event in the middle pauses it instead; PostgreSQL
	// restarts once, a third of the way through.
	pauseAt, restartAt := kills/2, kills/3
	for i := range kills {
		cur := leader(30 * time.Second)
		life := time.Duration(1000+rng.IntN(4000)) * time.Millisecond
		time.Sleep(life)
		if i == restartAt {
			t.Logf("restarting PostgreSQL")
			if err := server.Restart(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
			cur = leader(30 * time.Second)
		}
		if i == pauseAt {
			if err := cur.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(ttl + 2*time.Second + time.Duration(rng.IntN(2000))*time.Millisecond)
			if err := cur.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			continue
		}
		killed := time.Now()
		if err := cur.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-cur.done
		dmu.Lock()
		delete(daemons, cur.cmd.Process.Pid)
		dmu.Unlock()
		start() // the new standby
		next := leader(ttl + 15*time.Second)
		// The new leader's first trigger after the kill.
		deadline := time.Now().Add(ttl + 20*time.Second)
		for {
			b, _ := os.ReadFile(next.log)
			if at := firstAfter(parseLog(string(b)), "triggered", killed); !at.IsZero() {
				failovers = append(failovers, at.Sub(killed))
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("kill %d: the new leader triggered nothing within %v", i, ttl+20*time.Second)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	close(stopManual)
	manualWG.Wait()

	// Settle: the leader runs until no slot from before now is live; then every daemon
	// stops.
	finalStart := time.Now()
	unsettled := func() []string {
		var live []string
		for _, s := range pgSlots(t, url) {
			if !s.State.Terminal() && s.Nominal.Before(finalStart) {
				live = append(live, s.Key+" "+string(s.State))
			}
		}
		return live
	}
	deadline := time.Now().Add(150 * time.Second)
	for live := unsettled(); len(live) > 0; live = unsettled() {
		if time.Now().After(deadline) {
			t.Errorf("after %v, %d slots from before the end of the loop are still live: %v", time.Since(finalStart).Round(time.Second), len(live), live)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	dmu.Lock()
	for _, d := range daemons {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			t.Errorf("daemon %d did not exit within 30s of SIGTERM", d.cmd.Process.Pid)
		}
	}
	dmu.Unlock()

	slots := pgSlots(t, url)
	reqs := sim.ledger(t)
	runs := sim.runs(t)
	// 1. No slot with two runs, no run without a slot.
	byRun := map[string]string{}
	for _, s := range slots {
		if s.RunID == "" {
			continue
		}
		if other, dup := byRun[s.RunID]; dup {
			t.Errorf("run %s recorded for two slots: %s and %s", s.RunID, other, s.Key)
		}
		byRun[s.RunID] = s.Key
	}
	unexplained, _ := unexplainedRuns(slots, runs, map[string]string{"tick": clProjectTick, "fan": clProjectFan, "adhoc": clProjectAdhoc})
	for _, r := range unexplained {
		t.Errorf("hexsim has run %s (project %s, started %s) that no slot records: a double trigger or a lost run",
			r.ID, r.ProjectID, r.StartTime.Format("15:04:05.000"))
	}
	// 2. No rule exceeded in any window, and no 429.
	for _, v := range ruleViolations(reqs, "", clRules) {
		t.Error("rule violated: " + v)
	}
	posts := 0
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			t.Errorf("hexsim answered 429 at %s", r.Time.Format("15:04:05.000"))
		}
		if r.Op == "RunProject" {
			posts++
		}
	}
	// 3. Every slot final (or with a reason).
	states := map[string]int{}
	for _, s := range slots {
		states[string(s.State)]++
		switch {
		case !s.State.Terminal() && s.Nominal.Before(finalStart):
			t.Errorf("slot %s left %s (reason %q)", s.Key, s.State, s.Reason)
		case (s.State == state.StateSkipped || s.State == state.StateFailed || s.State == state.StateUnknown) && s.Reason == "":
			t.Errorf("slot %s is %s without a reason", s.Key, s.State)
		}
	}
	// 4. Nothing lost silently: every tick and fan instant between the first start and
	// the end of the loop (less a window) has a row.
	have := map[string]bool{}
	for _, s := range slots {
		have[s.Key] = true
	}
	missing := 0
	for n := begin.Truncate(time.Second).Add(time.Second); n.Add(20 * time.Second).Before(finalStart); n = n.Add(time.Second) {
		var keys []string
		if n.Second()%3 == 0 {
			keys = append(keys, "tick@"+n.UTC().Format(time.RFC3339))
		}
		if n.Second()%10 == 0 {
			keys = append(keys, "fan@"+n.UTC().Format(time.RFC3339)+"[region=amer]", "fan@"+n.UTC().Format(time.RFC3339)+"[region=emea]")
		}
		for _, k := range keys {
			if !have[k] {
				missing++
				if missing <= 10 {
					t.Errorf("slot %s has no row: lost silently", k)
				}
			}
		}
	}
	// 5. ERROR lines: only the expected ones (the outage, the zombie, a standby that
	// could not read the lease while PostgreSQL restarted).
	expected := []string{"the database is unreachable", "this daemon lost the lease", "standing by: cannot read the lease", "the database became unreachable while this daemon took over"}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, r := range parseLog(string(b)) {
			if r.Rec["level"] != "ERROR" {
				continue
			}
			if !slices.ContainsFunc(expected, func(p string) bool { return strings.HasPrefix(r.Msg, p) }) {
				t.Errorf("ERROR logged: %s: %v", filepath.Base(l), r.Rec)
			}
		}
	}
	slices.Sort(failovers)
	var median, worst time.Duration
	if n := len(failovers); n > 0 {
		median, worst = failovers[n/2], failovers[n-1]
	}
	t.Logf("seed %d: %d kills, 1 pause, 1 PostgreSQL restart in %v; %d slots %v; %d hexsim runs, %d RunProject requests; manual triggers failed %d",
		seed, kills-1, finalStart.Sub(begin).Round(time.Second), len(slots), states, len(runs), posts, manualFail)
	t.Logf("failover (SIGKILL of the leader to the new leader's first trigger, lease TTL %v) over %d kills: median %v, worst %v",
		ttl, len(failovers), median.Round(time.Millisecond), worst.Round(time.Millisecond))
}
