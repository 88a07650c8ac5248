package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMigrateV1ToOwners: a version-1 database with a slot left triggering is migrated:
// the slot keeps its row (owner unknown), the lease starts at epoch 0.
func TestMigrateV1ToOwners(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/hexcron.db"
	raw := rawDB(t, path)
	mustExec(t, raw, migrations()[0].SQL)
	mustExec(t, raw, "PRAGMA user_version = 1; PRAGMA application_id = 1751480419")
	mustExec(t, raw, `INSERT INTO slots (key, schedule, nominal_ms, kind, planned_ms, state, attempts, created_ms, updated_ms)
		VALUES ('report@2026-11-30T11:30:00Z', 'report', 1, 'scheduled', 1, 'triggering', 1, 1, 1)`)
	raw.Close()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(ctx); v != latestVersion() {
		t.Errorf("schema version %d after migration, want %d", v, latestVersion())
	}
	s, err := db.Slot(ctx, "report@2026-11-30T11:30:00Z")
	if err != nil || s.State != StateTriggering || s.Owner != "" {
		t.Errorf("slot after migration: %+v %v", s, err)
	}
	if l, err := db.CurrentLease(ctx); err != nil || l.Epoch != 0 || l.Owner != "" {
		t.Errorf("lease after migration: %+v %v", l, err)
	}
}

// TestEmptyFileMadePrivate: an existing empty file opened as a new database ends up
// 0600, as is the WAL SQLite creates beside it.
func TestEmptyFileMadePrivate(t *testing.T) {
	path := t.TempDir() + "/hexcron.db"
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetHeartbeat(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", p, fi.Mode().Perm(), err)
		}
	}
	db.Close()
}

// TestIsSimulation: only a regular file carrying hexcron's application id and the mark
// --simulate writes is a simulation database; nothing is written while checking.
func TestIsSimulation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sim := filepath.Join(dir, "sim.db")
	db, err := Open(ctx, sim, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkSimulation(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	plain := openT(t)
	plain.Close()
	text := filepath.Join(dir, "text.db")
	os.WriteFile(text, []byte("notes\n"), 0o600)
	foreign := filepath.Join(dir, "foreign.db")
	raw := rawDB(t, foreign)
	mustExec(t, raw, "CREATE TABLE meta (name TEXT, value TEXT); INSERT INTO meta VALUES ('simulation', '1')")
	raw.Close()
	link := filepath.Join(dir, "link.db")
	os.Symlink(sim, link)
	for path, want := range map[string]bool{sim: true, plain.Path(): false, text: false, foreign: false, link: false,
		filepath.Join(dir, "missing.db"): false} {
		before, _ := os.ReadFile(path)
		got, err := IsSimulation(ctx, path)
		if err != nil || got != want {
			t.Errorf("IsSimulation(%s) = %v, %v; want %v", filepath.Base(path), got, err, want)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("%s changed", path)
		}
	}
}

// TestFlockHolderTakesLeaseAtOnce: on SQLite, the handle holding the daemon flock takes
// the lease at once although another owner's lease is live (the flock proves that
// owner's daemon is dead), with the next epoch.
func TestFlockHolderTakesLeaseAtOnce(t *testing.T) {
	ctx := context.Background()
	a := openT(t)
	b, err := Open(ctx, a.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const ttl = 15 * time.Second
	ob, err := b.RegisterOwner(ctx, RoleDaemon, "host", 42, t0, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, ob.ID, t0, ttl); err != nil {
		t.Fatal(err)
	}
	oa, err := a.RegisterOwner(ctx, RoleDaemon, "host", 43, t0, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AcquireLease(ctx, oa.ID, t0.Add(time.Second), ttl); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("without the flock: %v, want ErrLeaseHeld", err)
	}
	if err := a.LockDaemon(); err != nil {
		t.Fatal(err)
	}
	la, err := a.AcquireLease(ctx, oa.ID, t0.Add(2*time.Second), ttl)
	if err != nil || la.Epoch != 2 || la.Owner != oa.ID {
		t.Fatalf("flock holder takes the lease: %+v %v", la, err)
	}
}
