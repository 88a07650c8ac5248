package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

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
