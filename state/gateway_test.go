package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// The gateway's contract (Submit, QueuedRequests, PruneIdempotency, SlotOfRun) is
// tested in state/statetest, against SQLite and PostgreSQL.

// TestMigrateToGateway: a database of schema version 8 (the one before) gets the gateway columns and
// table; its slots read as not from the gateway.
func TestMigrateToGateway(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hexcron.db")
	raw := rawDB(t, path)
	for _, m := range migrations() {
		if m.Version > 8 {
			break
		}
		mustExec(t, raw, m.SQL)
	}
	mustExec(t, raw, fmt.Sprintf("PRAGMA user_version = 8; PRAGMA application_id = %d", applicationID))
	mustExec(t, raw, `INSERT INTO slots (key, schedule, nominal_ms, kind, planned_ms, state, created_ms, updated_ms)
		VALUES ('daily@2026-03-02T07:00:00Z+manual', 'daily', 1772434800000, 'manual', 1772434800000, 'planned', 1, 1)`)
	raw.Close()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Slot(ctx, "daily@2026-03-02T07:00:00Z+manual")
	if err != nil || s.Client != "" || s.IdemKey != "" || !s.Deadline.IsZero() {
		t.Fatalf("migrated slot %+v, %v", s, err)
	}
	if q, err := db.QueuedRequests(ctx); err != nil || len(q) != 0 {
		t.Fatalf("a `hexcron trigger` slot is not a queued request: %v, %v", q, err)
	}
}
