package main

import (
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"hexcron/state"
)

// e2eQueueProject and e2eGoneProject are the projects of the reload tests' schedules.
const (
	e2eQueueProject = "22222222-2222-4222-8222-222222222222"
	e2eGoneProject  = "44444444-4444-4444-8444-444444444444"
)

// TestE2EQueueSurvivesReloads: the real binary, a schedule every 2 s with overlap queue
// and runs longer than that, and a SIGHUP each time a firing waits. Every queued firing
// runs when the run before it ends; none is re-planned and lost ("slot already
// triggered elsewhere"), and the project never has two runs going at once.
func TestE2EQueueSurvivesReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, `limits:
  trigger: [{limit: 20, per: 10s}, {limit: 60, per: 1m}]
  status: [{limit: 6000, per: 1m}]
  all_calls: [{limit: 6000, per: 1m}]
runs:
  pending: 100ms
  running: 3s
`)
	dir := t.TempDir()
	// A 30 s window keeps a waiting firing inside the plan's open windows at every
	// re-plan: what used to plan it again.
	schedules := `schedules:
  - {name: queued, project: ` + e2eQueueProject + `, cron: "*/2 * * * * *", overlap: queue, window: 30s}
`
	cfg := e2eConfig(t, dir, sim, schedules)
	db := dir + "/hexcron.db"
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waiting := func() bool {
		return len(d.logLines("queued")) > len(d.logLines("dequeued: previous run ended"))
	}
	const reloads = 2
	for i := range reloads {
		// A new waiting firing for each reload.
		waitFor(t, 30*time.Second, "a firing waiting", func() bool { return len(d.logLines("queued")) > i && waiting() })
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the reload", func() bool { return len(d.logLines("reloaded")) == i+1 })
	}
	// Every firing queued so far is dequeued.
	queuedAtLast := len(d.logLines("queued"))
	waitFor(t, 40*time.Second, "the firings queued before the last reload to be dequeued", func() bool {
		return len(d.logLines("dequeued: previous run ended")) >= queuedAtLast
	})
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}

	if n := len(d.logLines("slot already triggered elsewhere")); n > 0 {
		t.Errorf("%d firings lost as \"slot already triggered elsewhere\"", n)
	}
	// The reloads came while a firing waited: in the log (written by the one loop, in
	// order), between a "queued" line and that slot's "dequeued" line.
	during, open := 0, ""
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		switch {
		case strings.Contains(line, `"msg":"queued"`):
			open = line
		case strings.Contains(line, `"msg":"dequeued: previous run ended"`):
			open = ""
		case strings.Contains(line, `"msg":"reloaded"`) && open != "":
			during++
		}
	}
	if during == 0 {
		t.Fatal("no reload came while a firing waited: the test did not exercise the queue")
	}
	slots := slotsOf(t, db)
	checkOneRunPerSlot(t, sim, slots)
	byKey := map[string]state.Slot{}
	for _, s := range slots {
		byKey[s.Key] = s
	}
	left := map[string]bool{}
	for _, r := range d.logLines("queued firing left planned at stop") {
		left[r["slot"].(string)] = true
	}
	for _, r := range d.logLines("queued") {
		slot := r["slot"].(string)
		if s := byKey[slot]; s.RunID == "" && !left[slot] {
			t.Errorf("queued slot %s never ran: %s (%q)", slot, s.State, s.Reason)
		}
	}
	var runs []simRun
	for _, r := range sim.runs(t) {
		if r.ProjectID == e2eQueueProject {
			runs = append(runs, r)
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartTime.Before(runs[j].StartTime) })
	for i := 1; i < len(runs); i++ {
		if prev := runs[i-1]; prev.EndTime.IsZero() || runs[i].StartTime.Before(prev.EndTime) {
			t.Errorf("run %s started at %v while run %s was still going (ended %v)", runs[i].ID, runs[i].StartTime, prev.ID, prev.EndTime)
		}
	}
	t.Logf("%d reloads, %d while a firing waited; %d queued, %d dequeued, %d runs",
		reloads, during, len(d.logLines("queued")), len(d.logLines("dequeued: previous run ended")), len(runs))
}

// TestE2ERemovedScheduleRunCancelledAtTimeout: the real binary; a SIGHUP removes a
// schedule whose run is stuck at Hex; the daemon keeps tracking the run and cancels it
// at the timeout it was triggered with, and status lists it under the old name,
// marked removed.
func TestE2ERemovedScheduleRunCancelledAtTimeout(t *testing.T) {
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
	stays := `  - {name: stays, project: ` + e2eProject + `, cron: "0 0 1 1 *"}
`
	cfg := e2eConfig(t, dir, sim, "schedules:\n"+stays+
		`  - {name: gone, project: `+e2eGoneProject+`, cron: "*/2 * * * * *", window: 2s, timeout: 4s, overlap: skip}
`)
	db := dir + "/hexcron.db"
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	waitFor(t, 20*time.Second, "a run of gone", func() bool { return len(d.logLines("triggered")) > 0 })
	writeConfig(t, cfg, sim, "schedules:\n"+stays)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload", func() bool { return len(d.logLines("reloaded")) == 1 })

	// status, while the run is still going, names it under its old schedule.
	e, out, errb := testEnv(t, time.Now(), nil)
	if code := run([]string{"status", "--db", db, "--config", cfg, "--wide"}, e); code != exitOK { // --wide: the run URL names the run
		t.Fatalf("status: exit %d: %s", code, errb)
	}
	var removed []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "gone (removed) ") {
			removed = append(removed, l)
		}
	}

	waitFor(t, 20*time.Second, "the stuck run to be cancelled", func() bool { return len(d.logLines("timed_out")) > 0 })
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	if n := len(d.logLines("unknown")); n > 0 {
		t.Errorf("%d runs recorded unknown", n)
	}
	rec := d.logLines("timed_out")[0]
	var s state.Slot
	for _, x := range slotsOf(t, db) {
		if x.Key == rec["slot"] {
			s = x
		}
	}
	if s.Schedule != "gone" || s.State != state.StateTimedOut || !strings.Contains(s.Reason, "timeout 4s") {
		t.Errorf("slot %s: schedule %s state %s reason %q; want gone timed_out after 4s", s.Key, s.Schedule, s.State, s.Reason)
	}
	listed := false
	for _, l := range removed {
		listed = listed || (s.RunID != "" && strings.Contains(l, s.RunID) && (strings.Contains(l, " running ") || strings.Contains(l, " triggered ")))
	}
	if !listed {
		t.Errorf("status did not list run %s going under \"gone (removed)\":\n%s", s.RunID, out)
	}
	var cancelled bool
	for _, r := range sim.runs(t) {
		if r.ID == s.RunID {
			cancelled = r.Cancelled && r.Status == "KILLED"
		}
	}
	if !cancelled {
		t.Errorf("hexsim run %s was not cancelled", s.RunID)
	}
	var deletes int
	for _, r := range sim.requests(t) {
		if r.Method == http.MethodDelete && r.Status == http.StatusNoContent {
			deletes++
		}
	}
	if deletes == 0 {
		t.Error("hexsim saw no CancelRun answered 204")
	}
}
