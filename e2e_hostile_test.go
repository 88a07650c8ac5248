package main

// End-to-end tests of what an adversarial pass found (issue 11): a second daemon
// reaching the database through another path, and others added below.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2ESecondDaemonThroughAnotherPath: while a daemon runs on real.db, a second
// `hexcron run` on the same file through a symlink, a hard link or a path through ".."
// exits 1 naming the first one's pid, and no slot is triggered twice.
func TestE2ESecondDaemonThroughAnotherPath(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - name: every-two-seconds
    project: `+e2eProject+`
    cron: "*/2 * * * * *"
`)
	real := filepath.Join(dir, "real.db")
	first := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", real)
	waitFor(t, 20*time.Second, "the first daemon to trigger", func() bool { return len(first.logLines("triggered")) > 0 })

	if err := os.Symlink(real, filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(real, filepath.Join(dir, "hard.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "link.db"), filepath.Join(dir, "hard.db"), dir + "/sub/../real.db"} {
		cmd := exec.Command(binPath, "run", "--log-format", "text", "--config", cfg, "--db", p)
		cmd.Env = append(os.Environ(), e2eToken)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("second daemon on %s: exit %d (%v), want 1; output:\n%s", p, code, err, out)
			continue
		}
		want := fmt.Sprintf("database is in use by another hexcron daemon (pid %d holds the lock on ", first.cmd.Process.Pid)
		if !strings.Contains(string(out), want) {
			t.Errorf("second daemon on %s says:\n%s\nwant it to contain %q", p, out, want)
		}
	}
	time.Sleep(3 * time.Second) // a few more slots while the refused daemons are gone
	if code := first.stop(t); code != 0 {
		t.Fatalf("first daemon exit %d", code)
	}
	checkOneRunPerSlot(t, sim, slotsOf(t, real))
}
