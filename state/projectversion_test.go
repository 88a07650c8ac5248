package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestMigrateKeepsSlotsAndAddsProjectVersion: a database of schema version 1 (the
// first release) is migrated in place: its slots keep every field, have no project
// version yet, and take one on their next transition.
func TestMigrateKeepsSlotsAndAddsProjectVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hexcron.db")
	raw := rawDB(t, path)
	v1 := migrations()[0]
	if v1.Version != 1 {
		t.Fatalf("first migration is %s", v1.Name)
	}
	mustExec(t, raw, v1.SQL)
	mustExec(t, raw, fmt.Sprintf("PRAGMA user_version = 1; PRAGMA application_id = %d", applicationID))
	mustExec(t, raw, `INSERT INTO slots (key, schedule, nominal_ms, kind, planned_ms, state, run_id, run_url, created_ms, updated_ms)
		VALUES ('daily@2026-03-02T07:00:00Z', 'daily', 1772434800000, 'scheduled', 1772434800000, 'triggered', 'run-1', 'https://app.hex.tech/r', 1, 1)`)
	raw.Close()

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(ctx); v != latestVersion() {
		t.Fatalf("schema version %d after open, want %d", v, latestVersion())
	}
	s, err := db.Slot(ctx, "daily@2026-03-02T07:00:00Z")
	if err != nil || s.RunID != "run-1" || s.RunURL != "https://app.hex.tech/r" || s.ProjectVersion != "" {
		t.Fatalf("migrated slot %+v, %v", s, err)
	}
	at := time.UnixMilli(1772434900000)
	if err := db.Transition(ctx, s.Key, StateRunning, Update{At: at, ProjectVersion: "12"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Transition(ctx, s.Key, StateCompleted, Update{At: at.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if s, _ = db.Slot(ctx, s.Key); s.ProjectVersion != "12" || s.State != StateCompleted {
		t.Fatalf("after transitions: %+v (a later update without a version must keep it)", s)
	}
}
