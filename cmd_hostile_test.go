package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hexcron/state"
)

// TestHostileFlags: out-of-range flags are usage errors (exit 2), before anything runs.
func TestHostileFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		inStderr string
	}{
		{[]string{"version", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"run", "--horizon", "0"}, "--horizon must be positive and at most 168h0m0s (got 0s)"},
		{[]string{"run", "--horizon", "-5m"}, "--horizon must be positive"},
		{[]string{"run", "--horizon", "200h"}, "--horizon must be positive and at most 168h0m0s (got 200h0m0s)"},
		{[]string{"run", "--speed", "0"}, "--speed must be positive and at most 100000 (got 0)"},
		{[]string{"run", "--speed", "-5"}, "--speed must be positive"},
		{[]string{"run", "--speed", "NaN"}, "--speed must be positive"},
		{[]string{"plan", "--config", "x.yaml", "--horizon", "100000h"}, "--horizon must be positive and at most 8784h0m0s (366 days)"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			e, out, errb := testEnv(t, fixtureNow, nil)
			if code := run(tc.args, e); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, errb)
			}
			if !strings.Contains(errb.String(), tc.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inStderr, errb)
			}
			if out.Len() > 0 {
				t.Errorf("stdout: %s", out)
			}
		})
	}
	e, out, _ := testEnv(t, fixtureNow, nil)
	if code := run([]string{"version"}, e); code != exitOK || !strings.HasPrefix(out.String(), "hexcron ") {
		t.Errorf("version: %d %q", code, out)
	}
}

// TestPlanCutShort: a plan whose horizon holds more than MaxFirings firings prints what
// fits and exits 1 saying so, instead of running out of memory.
func TestPlanCutShort(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "busy.yaml")
	os.WriteFile(conf, []byte("budget:\n  triggers: [{limit: 100000, per: 1s}]\nschedules:\n  - name: busy\n    project: "+
		triggerProject+"\n    cron: \"* * * * * *\"\n    window: 1s\n"), 0o600)
	e, _, errb := testEnv(t, fixtureNow, nil)
	if code := run([]string{"plan", "--config", conf, "--horizon", "8000h", "--from", "2026-11-30T00:00:00Z"}, e); code != exitError {
		t.Errorf("exit %d, want 1; stderr:\n%s", code, errb)
	}
	if !strings.Contains(errb.String(), "the plan stops after 48h0m0s: the horizon holds more than 200000 firings; shorten --horizon") {
		t.Errorf("stderr:\n%s", errb)
	}
}

const simConfig = `schedules:
  - name: report
    project: 5a8591dd-4039-49df-9202-96385ba3eff8
    cron: "0 6 * * *"
`

// TestSimulateKeepsForeignFile: `run --simulate` without --db refuses a hexcron-sim.db
// it did not make (a text file, another program's SQLite database, a symlink, a real
// hexcron database), naming the file and --db; the file keeps its bytes.
func TestSimulateKeepsForeignFile(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"text", "foreign sqlite", "symlink", "hexcron database"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			conf := filepath.Join(dir, "schedules.yaml")
			os.WriteFile(conf, []byte(simConfig), 0o600)
			path := filepath.Join(dir, "hexcron-sim.db")
			check := path
			switch kind {
			case "text":
				os.WriteFile(path, []byte("my notes\n"), 0o600)
			case "foreign sqlite":
				db, err := sql.Open("sqlite3", path)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1)"); err != nil {
					t.Fatal(err)
				}
				db.Close()
			case "symlink":
				check = filepath.Join(dir, "target.txt")
				os.WriteFile(check, []byte("elsewhere\n"), 0o600)
				os.Symlink(check, path)
			case "hexcron database":
				db, err := state.Open(ctx, path, state.Options{})
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
			before, _ := os.ReadFile(check)
			e, _, errb := testEnv(t, fixtureNow, nil)
			// A demo that is not refused runs until the context ends it.
			runCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if code := runDaemon(runCtx, e, []string{"--simulate", "--config", conf, "--log-format", "text"}, nil); code != exitError {
				t.Fatalf("exit %d, want 1; stderr:\n%.2000s", code, errb)
			}
			if !strings.Contains(errb.String(), path+" exists and is not a database that `hexcron run --simulate` made") ||
				!strings.Contains(errb.String(), "--db FILE") {
				t.Errorf("stderr:\n%s", errb)
			}
			if after, _ := os.ReadFile(check); !bytes.Equal(before, after) {
				t.Errorf("%s changed", check)
			}
			if fi, err := os.Lstat(path); err != nil || (kind == "symlink") != (fi.Mode()&os.ModeSymlink != 0) {
				t.Errorf("%s replaced: %v %v", path, fi.Mode(), err)
			}
		})
	}
}

// TestSimulateReplacesItsOwnDatabase: a hexcron-sim.db that --simulate made is
// replaced by a fresh, marked one.
func TestSimulateReplacesItsOwnDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	db, err := state.Open(ctx, simDBName, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.MarkSimulation(ctx)
	db.SetHeartbeat(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	db.Close()
	if err := removeSimDB(ctx, simDBName); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(simDBName); !os.IsNotExist(err) {
		t.Errorf("the old demo database is still there: %v", err)
	}
}
