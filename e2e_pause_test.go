package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hexcron/internal/pgtest"
	"hexcron/state"
)

// TestE2EPauseResume: `hexcron pause` against a running daemon (real binaries, no
// reload): no run of the paused schedule after the command returns, its firings
// recorded skipped with who, until and why; the other schedule untouched; `status`
// shows the pause; after `hexcron resume` it runs again.
func TestE2EPauseResume(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	testE2EPauseResume(t, dir, filepath.Join(dir, "hexcron.db"))
}

// TestE2EPostgresPauseResume: the same on PostgreSQL: `hexcron pause`, `status` and
// `resume` from other processes reach the running daemon through the shared database.
func TestE2EPostgresPauseResume(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	testE2EPauseResume(t, t.TempDir(), pgtest.NewURL(t))
}

// testE2EPauseResume runs the pause/resume scenario on the database at db (a SQLite
// file or a postgres:// URL), the config written in dir.
func testE2EPauseResume(t *testing.T, dir, db string) {
	sim := startSimProc(t, fastSim)
	const pausedProject = "0f1e2d3c-4b5a-4789-8abc-def012345678"
	cfg := e2eConfig(t, dir, sim, `schedules:
  - {name: kept, project: `+e2eProject+`, cron: "*/3 * * * * *"}
  - {name: reports, project: `+pausedProject+`, cron: "1/3 * * * * *"}
`)
	d := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", db)
	triggered := func(schedule string, after time.Time) int {
		n := 0
		for _, s := range slotsOf(t, db) {
			if s.Schedule == schedule && s.RunID != "" && s.Triggered.After(after) {
				n++
			}
		}
		return n
	}
	start := time.Now()
	waitFor(t, 20*time.Second, "the daemon to start", func() bool { return len(d.logLines("hexcron running")) > 0 })
	waitFor(t, 20*time.Second, "runs of both schedules", func() bool { return triggered("kept", start) > 0 && triggered("reports", start) > 0 })

	hexcron := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "USER=tester", "SUDO_USER=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("hexcron %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := hexcron("pause", "reports", "--db", db, "--config", cfg, "--for", "1h", "--reason", "e2e backfill")
	pausedAt := time.Now()
	if !strings.HasPrefix(out, "reports: paused since ") || !strings.Contains(out, " by tester, until ") {
		t.Errorf("pause printed:\n%s", out)
	}
	waitFor(t, 10*time.Second, "the daemon to log the pause", func() bool {
		return len(d.logLines("schedule paused: its firings are skipped until it is resumed")) == 1
	})
	time.Sleep(6 * time.Second) // two more firings of each schedule
	if status := hexcron("status", "--db", db, "--config", cfg); !strings.Contains(status, "reports (paused)") ||
		!strings.Contains(status, "paused since") || !strings.Contains(status, ": e2e backfill") {
		t.Errorf("status does not show the pause:\n%s", status)
	}
	out = hexcron("resume", "reports", "--db", db, "--config", cfg)
	resumedAt := time.Now()
	if !strings.HasPrefix(out, "reports: resumed (it was paused since ") {
		t.Errorf("resume printed:\n%s", out)
	}
	waitFor(t, 15*time.Second, "a run of the resumed schedule", func() bool { return triggered("reports", resumedAt) > 0 })
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code = %d", code)
	}

	// A trigger already under way when the command returned may end just after it.
	slack := pausedAt.Add(time.Second)
	var during, skipped int
	for _, s := range slotsOf(t, db) {
		if s.Schedule != "reports" || !s.Nominal.After(slack) || !s.Nominal.Before(resumedAt) {
			continue
		}
		if s.RunID != "" {
			during++
		}
		if s.State == state.StateSkipped {
			skipped++
			if !strings.HasPrefix(s.Reason, "paused since ") || !strings.Contains(s.Reason, " by tester until ") || !strings.HasSuffix(s.Reason, ": e2e backfill") {
				t.Errorf("skipped %s: reason %q", s.Key, s.Reason)
			}
		}
	}
	if during != 0 {
		t.Errorf("%d runs of the paused schedule were created while it was paused", during)
	}
	if skipped < 2 {
		t.Errorf("%d firings of the paused schedule recorded skipped, want 2 or more", skipped)
	}
	if n := triggered("kept", slack); n < 3 {
		t.Errorf("the other schedule ran %d times since the pause, want 3 or more", n)
	}
	if len(d.logLines("schedule resumed: it fires again")) != 1 {
		t.Errorf("the resume was not logged once")
	}
	if len(d.logLines("reloaded")) != 0 {
		t.Error("the daemon reloaded; a pause must not need it")
	}
	checkOneRunPerSlot(t, sim, slotsOf(t, db))
}
