package main

// End-to-end tests of the real hexcron binary (built once in TestMain) against a
// standalone `hexcron sim` over loopback, with fast schedules (a seconds field) and
// short rule windows. Real processes, real signals, real SQLite files.

import (
	"fmt"
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

	"hexcron/state"
)

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
