package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestSlotProjectAndTimeout: the project and timeout a slot's run is tracked with are
// written by PlanSlot and Transition, kept when a later write leaves them zero, and a
// planned slot's reason follows PlanSlot.
func TestSlotProjectAndTimeout(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	const key = "nightly@2026-11-30T11:30:00Z"
	const p1, p2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	check := func(what, project string, timeout time.Duration, reason string) {
		t.Helper()
		got, err := db.Slot(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got.Project != project || got.Timeout != timeout || got.Reason != reason {
			t.Errorf("%s: project %q timeout %s reason %q; want %q %s %q", what, got.Project, got.Timeout, got.Reason, project, timeout, reason)
		}
	}
	if _, err := db.PlanSlot(ctx, Slot{Key: key, Reason: "overlap queue: waits for run r1 to end"}, t0); err != nil {
		t.Fatal(err)
	}
	check("planned without them", "", 0, "overlap queue: waits for run r1 to end")
	if _, err := db.PlanSlot(ctx, Slot{Key: key, Project: p1, Timeout: 30 * time.Minute}, t0); err != nil {
		t.Fatal(err)
	}
	check("re-planned with them", p1, 30*time.Minute, "")
	if _, err := db.PlanSlot(ctx, Slot{Key: key}, t0); err != nil {
		t.Fatal(err)
	}
	check("re-planned without them", p1, 30*time.Minute, "")
	if err := db.Transition(ctx, key, StateTriggering, Update{At: t0}); err != nil {
		t.Fatal(err)
	}
	// Past planned, PlanSlot changes nothing.
	if _, err := db.PlanSlot(ctx, Slot{Key: key, Project: p2, Reason: "x"}, t0); err != nil {
		t.Fatal(err)
	}
	check("PlanSlot of a triggering slot", p1, 30*time.Minute, "")
	if err := db.Transition(ctx, key, StateTriggered, Update{At: t0, RunID: "r2", Project: p2, Timeout: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	check("triggered with them", p2, 2*time.Hour, "")
	if err := db.Transition(ctx, key, StateRunning, Update{At: t0}); err != nil {
		t.Fatal(err)
	}
	check("running without them", p2, 2*time.Hour, "")
	runs, err := db.ActiveRuns(ctx)
	if err != nil || len(runs) != 1 || runs[0].Project != p2 || runs[0].Timeout != 2*time.Hour {
		t.Errorf("ActiveRuns = %+v, %v", runs, err)
	}
	// A slot inserted directly (skipped, or by Admit) carries what it is given.
	if err := db.SkipSlot(ctx, Slot{Key: "nightly@2026-12-01T11:30:00Z", Project: p1, Timeout: time.Minute}, "why", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Slot(ctx, "nightly@2026-12-01T11:30:00Z"); got.Project != p1 || got.Timeout != time.Minute {
		t.Errorf("skipped slot = %+v", got)
	}
}

// TestMigrateVersion1KeepsSlots: a database written by a hexcron of schema version 1
// opens migrated to the latest version, its slots intact, with no project and no
// timeout (the daemon falls back to the config for them), and takes them afterwards.
func TestMigrateVersion1KeepsSlots(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hexcron.db")
	raw := rawDB(t, path)
	init, err := migrationFS.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, raw, string(init))
	mustExec(t, raw, fmt.Sprintf("PRAGMA user_version = 1; PRAGMA application_id = %d", applicationID))
	mustExec(t, raw, `INSERT INTO slots (key, schedule, nominal_ms, kind, planned_ms, state, run_id, triggered_ms, created_ms, updated_ms)
		VALUES ('old@2026-11-30T11:30:00Z', 'old', 1796031000000, 'scheduled', 1796031000000, 'running', 'run-1', 1796031001000, 1796031000000, 1796031001000)`)
	raw.Close()

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(ctx); err != nil || v != latestVersion() {
		t.Fatalf("schema version %d (%v), want %d", v, err, latestVersion())
	}
	runs, err := db.ActiveRuns(ctx)
	if err != nil || len(runs) != 1 {
		t.Fatalf("ActiveRuns = %+v, %v", runs, err)
	}
	if r := runs[0]; r.Key != "old@2026-11-30T11:30:00Z" || r.RunID != "run-1" || r.State != StateRunning || r.Project != "" || r.Timeout != 0 {
		t.Errorf("migrated slot = %+v", r)
	}
	if err := db.Transition(ctx, runs[0].Key, StateRunning, Update{At: t0, Project: "p", Timeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Slot(ctx, runs[0].Key); got.Project != "p" || got.Timeout != time.Hour {
		t.Errorf("after filling: %+v", got)
	}
}
