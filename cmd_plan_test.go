package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hexcron/state"
)

// planFrom is the --from of the plan tests: Monday 2026-11-30 00:00 UTC.
const planFrom = "2026-11-30T00:00:00Z"

// runCLI runs hexcron with args and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" },
		now: func() time.Time { return time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) }})
	return code, out.String(), errb.String()
}

// manySchedules writes a config of n schedules (project ids differ, names sched-NNN)
// with the given cron and window, under Hex's default caps.
func manySchedules(t *testing.T, n int, cron, window string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("schedules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: sched-%03d\n    project: %08x-0000-4000-8000-%012x\n    cron: %q\n    window: %s\n", i, i, i, cron, window)
	}
	path := filepath.Join(t.TempDir(), "many.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func countLines(s string) int { return strings.Count(s, "\n") }

// TestValidateGroupsIdenticalWarnings: 300 schedules sharing one warning print at
// most 5 warning lines (one line naming the count and the first schedules); --verbose
// prints all 300.
func TestValidateGroupsIdenticalWarnings(t *testing.T) {
	path := manySchedules(t, 300, "* * * * *", "1m") // window not shorter than the interval
	code, out, errOut := runCLI(t, "validate", "--config", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := countLines(errOut); n > 5 || n == 0 {
		t.Fatalf("%d lines of warnings, want 1..5:\n%s", n, errOut)
	}
	for _, want := range []string{"300 schedules", "sched-000 at line 5", "and 297 more", "--verbose"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("warnings lack %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "300 warnings") {
		t.Errorf("summary line: %s", out)
	}
	_, _, verbose := runCLI(t, "validate", "--config", path, "--verbose")
	if n := strings.Count(verbose, "warning: "); n != 300 {
		t.Fatalf("--verbose printed %d warnings, want 300", n)
	}
}

// TestPlanOversubscribedIsReadable: 500 hourly schedules under 60 triggers an hour
// leave thousands of firings unplaced; the report stays under 100 lines (the hourly
// table, one line per schedule for at most 50 schedules), exit 3; --verbose and --json
// list every firing.
func TestPlanOversubscribedIsReadable(t *testing.T) {
	path := manySchedules(t, 500, "0 * * * *", "10m")
	code, out, errOut := runCLI(t, "plan", "--config", path, "--from", planFrom)
	if code != exitUnplaced {
		t.Fatalf("exit %d, want %d: %s", code, exitUnplaced, errOut)
	}
	if n := countLines(out) + countLines(errOut); n > 100 {
		t.Fatalf("%d lines, want at most 100:\n%s%s", n, errOut, out)
	}

	code, js, _ := runCLI(t, "plan", "--config", path, "--from", planFrom, "--json")
	var plan struct {
		Unplaced []struct{ Schedule string } `json:"unplaced"`
	}
	if err := json.Unmarshal([]byte(js), &plan); err != nil || code != exitUnplaced {
		t.Fatalf("exit %d, %v", code, err)
	}
	if len(plan.Unplaced) < 5000 {
		t.Fatalf("--json lists %d unplaced firings, want every one (about 10,000)", len(plan.Unplaced))
	}
	scheds := map[string]bool{}
	for _, u := range plan.Unplaced {
		scheds[u.Schedule] = true
	}
	for _, want := range []string{fmt.Sprintf("cannot fit: %d firings of %d schedules", len(plan.Unplaced), len(scheds)),
		fmt.Sprintf("... and %d more schedules", len(scheds)-50), "FAIL:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	_, verbose, _ := runCLI(t, "plan", "--config", path, "--from", planFrom, "--verbose")
	if n := strings.Count(verbose, ": no free trigger in its window"); n != len(plan.Unplaced) {
		t.Fatalf("--verbose lists %d unplaced firings, --json %d", n, len(plan.Unplaced))
	}
}

// TestPlanCountsTheLedger: with --db the attempts already in the database's ledger
// count as admission counts them (read-only: the database is not changed); a missing
// database is an error, and no file is created.
func TestPlanCountsTheLedger(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "two.yaml")
	if err := os.WriteFile(config, []byte(`budget:
  triggers:
    - {limit: 3, per: 1h}
schedules:
  - {name: a, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "0 * * * *", window: 10m}
  - {name: b, project: 9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c, cron: "0 * * * *", window: 10m}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "plan", "--config", config, "--from", planFrom, "--horizon", "1h"); code != exitOK {
		t.Fatalf("empty ledger: exit %d\n%s%s", code, out, errOut)
	}

	missing := filepath.Join(dir, "none.db")
	code, _, errOut := runCLI(t, "plan", "--config", config, "--from", planFrom, "--db", missing)
	if code != exitError || !strings.Contains(errOut, "no database at "+missing) {
		t.Fatalf("missing db: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("plan created %s: %v", missing, err)
	}

	ctx := context.Background()
	dbPath := filepath.Join(dir, "hexcron.db")
	db, err := state.Open(ctx, dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	from, _ := time.Parse(time.RFC3339, planFrom)
	for _, sent := range []time.Time{from.Add(-30 * time.Minute), from.Add(-20 * time.Minute)} {
		id, _, err := db.Admit(ctx, state.Holder{}, sent, sent.Add(-2*time.Hour), "", func([]state.Attempt) time.Duration { return 0 })
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Complete(ctx, id, sent.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	before, _ := os.ReadFile(dbPath)

	code, out, errOut := runCLI(t, "plan", "--config", config, "--from", planFrom, "--horizon", "1h", "--db", dbPath)
	if code != exitUnplaced {
		t.Fatalf("two of three in the ledger: exit %d, want %d\n%s%s", code, exitUnplaced, out, errOut)
	}
	for _, want := range []string{"ledger: 2 earlier trigger attempts count", "1 firing, first 2026-11-30 00:00:00", "3 per 1h used up", "FAIL: 1 of 2 firings"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if after, _ := os.ReadFile(dbPath); !bytes.Equal(before, after) {
		t.Error("plan --db changed the database")
	}
}

// TestPlanCountsQueuedGatewayRequests: with --db the trigger gateway's requests queued
// in the database are planned like the daemon plans them; those past their deadline
// are not.
func TestPlanCountsQueuedGatewayRequests(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(config, []byte(`budget:
  triggers:
    - {limit: 3, per: 1h}
schedules:
  - {name: a, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "0 * * * *", window: 10m}
  - {name: b, project: 9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c, cron: "0 * * * *", window: 10m}
gateway:
  listen: 127.0.0.1:8470
  clients:
    - {name: ci, token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, projects: [0f1e2d3c-4b5a-4789-8abc-def012345678], priority: -1}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dbPath := filepath.Join(dir, "hexcron.db")
	db, err := state.Open(ctx, dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	from, _ := time.Parse(time.RFC3339, planFrom)
	const project = "0f1e2d3c-4b5a-4789-8abc-def012345678"
	for i, deadline := range []time.Duration{30 * time.Minute, 40 * time.Minute, -time.Minute} {
		at := from.Add(-5*time.Minute + time.Duration(i)*time.Second)
		sub := state.Submission{Slot: state.Slot{Key: fmt.Sprintf("project:%s@%s+manual", project, at.Format("2006-01-02T15:04:05.000Z")),
			Schedule: "project:" + project, Nominal: at, Kind: state.KindManual, Project: project, Client: "ci", Deadline: from.Add(deadline)},
			Key: fmt.Sprint("k", i), Hash: "h", Body: "{}", Expires: at.Add(24 * time.Hour)}
		if _, err := db.Submit(ctx, sub, at, at.Add(-time.Hour), func([]time.Time) time.Duration { return 0 }); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	code, out, errOut := runCLI(t, "plan", "--config", config, "--from", planFrom, "--horizon", "1h", "--db", dbPath)
	if code != exitUnplaced {
		t.Fatalf("two queued requests and two schedules under 3/1h: exit %d, want %d\n%s%s", code, exitUnplaced, out, errOut)
	}
	if !strings.Contains(out, "FAIL: 1 of 4 firings") || !strings.Contains(out, "project:"+project) {
		t.Errorf("the plan does not count the two queued requests (the third is past its deadline):\n%s", out)
	}
}
