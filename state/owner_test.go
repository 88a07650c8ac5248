package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const ttl = 15 * time.Second

func openSecond(t *testing.T, db *DB) *DB {
	t.Helper()
	b, err := Open(context.Background(), db.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func register(t *testing.T, db *DB, role Role, now time.Time) Owner {
	t.Helper()
	o, err := db.RegisterOwner(context.Background(), role, "host", 42, now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestLeaseTakeover: the daemon holding the flock takes the lease at once, whatever the
// lease says; a handle without the flock waits for the leader to lapse; every take
// increments the epoch; renewals by a superseded leader are fenced.
func TestLeaseTakeover(t *testing.T) {
	ctx := context.Background()
	a := openT(t)
	b := openSecond(t, a)
	oa := register(t, a, RoleDaemon, t0)
	ob := register(t, b, RoleDaemon, t0)
	if len(oa.ID) != 16 || oa.ID == ob.ID {
		t.Fatalf("owner ids %q %q: want 16 random hex characters each", oa.ID, ob.ID)
	}
	la, err := a.AcquireLease(ctx, oa.ID, t0, ttl)
	if err != nil || la.Epoch != 1 || la.Owner != oa.ID {
		t.Fatalf("first lease: %+v %v", la, err)
	}
	// b has no flock and a is live: refused, naming a.
	_, err = b.AcquireLease(ctx, ob.ID, t0.Add(time.Second), ttl)
	var held *LeaseHeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrLeaseHeld) || held.Holder.ID != oa.ID || held.Holder.PID != 42 {
		t.Fatalf("lease held by a live leader: %v", err)
	}
	// a keeps it alive.
	if _, err := a.RenewLease(ctx, oa.ID, 1, t0.Add(10*time.Second), ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, ob.ID, t0.Add(20*time.Second), ttl); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("after a's renewal: %v", err)
	}
	// a stops renewing: once lapsed, b takes it with epoch 2.
	lb, err := b.AcquireLease(ctx, ob.ID, t0.Add(26*time.Second), ttl)
	if err != nil || lb.Epoch != 2 || lb.Owner != ob.ID {
		t.Fatalf("takeover after expiry: %+v %v", lb, err)
	}
	_, err = a.RenewLease(ctx, oa.ID, 1, t0.Add(27*time.Second), ttl)
	var fe *FencedError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFenced) || fe.Owner != oa.ID || fe.Epoch != 1 {
		t.Fatalf("superseded leader renews: %v", err)
	}
	// A handle holding the flock takes the lease at once, though b's is live.
	if err := a.LockDaemon(); err != nil {
		t.Fatal(err)
	}
	la, err = a.AcquireLease(ctx, oa.ID, t0.Add(28*time.Second), ttl)
	if err != nil || la.Epoch != 3 {
		t.Fatalf("flock holder takes the lease: %+v %v", la, err)
	}
	// A clean release leaves the epoch and frees the lease.
	if err := a.ReleaseLease(ctx, oa.ID, 3, t0.Add(29*time.Second)); err != nil {
		t.Fatal(err)
	}
	if l, err := b.CurrentLease(ctx); err != nil || l.Owner != "" || l.Epoch != 3 {
		t.Fatalf("after release: %+v %v", l, err)
	}
}

// TestTwoLeadersNeverBothTrigger: two handles that both reach one database (the flock
// did not keep the second out) admit the same slots; the one whose epoch was superseded
// gets ErrFenced and never claims a slot, even racing the leader.
func TestTwoLeadersNeverBothTrigger(t *testing.T) {
	ctx := context.Background()
	a := openT(t)
	b := openSecond(t, a)
	oa := register(t, a, RoleDaemon, t0)
	la, err := a.AcquireLease(ctx, oa.ID, t0, ttl)
	if err != nil {
		t.Fatal(err)
	}
	old := Holder{Owner: oa.ID, Epoch: la.Epoch}
	// a is paused past its lease; b takes over.
	later := t0.Add(time.Minute)
	ob := register(t, b, RoleDaemon, later)
	lb, err := b.AcquireLease(ctx, ob.ID, later, ttl)
	if err != nil {
		t.Fatal(err)
	}
	leader := Holder{Owner: ob.ID, Epoch: lb.Epoch}

	keys := []string{"report@2026-11-30T11:31:00Z", "report@2026-11-30T11:32:00Z", "report@2026-11-30T11:33:00Z"}
	var wg sync.WaitGroup
	results := make(chan error, 2*len(keys))
	for _, h := range []struct {
		db *DB
		by Holder
	}{{a, old}, {b, leader}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range keys {
				_, _, err := h.db.Admit(ctx, h.by, later, later.Add(-time.Hour), k, admitNow(later))
				if h.by == old {
					if !errors.Is(err, ErrFenced) {
						results <- errors.New("fenced holder admitted " + k + ": " + errText(err))
					}
				} else if err != nil {
					results <- err
				}
			}
		}()
	}
	wg.Wait()
	close(results)
	for err := range results {
		t.Error(err)
	}
	for _, k := range keys {
		s, err := b.Slot(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != StateTriggering || s.Attempts != 1 || s.Owner != ob.ID {
			t.Errorf("%s: state %s, attempts %d, owner %q; want triggering, 1, the leader %s", k, s.State, s.Attempts, s.Owner, ob.ID)
		}
	}
	as, err := a.Attempts(ctx, time.Time{})
	if err != nil || len(as) != len(keys) {
		t.Errorf("ledger: %d attempts (%v), want %d: the fenced admissions recorded nothing", len(as), err, len(keys))
	}
}

// TestOwnerAdmission: a process that does not lead (hexcron trigger) admits while its
// registration is live; once it lapsed it is fenced and cannot revive it; a released
// owner is gone; registering deletes rows expired for more than a day.
func TestOwnerAdmission(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	o := register(t, db, RoleTrigger, t0)
	by := Holder{Owner: o.ID}
	key := "report@2026-11-30T11:30:00Z+manual"
	if _, _, err := db.Admit(ctx, by, t0.Add(time.Second), t0.Add(-time.Hour), key, admitNow(t0.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, key); s.Owner != o.ID {
		t.Errorf("slot owner %q, want %q", s.Owner, o.ID)
	}
	if exp, err := db.RenewOwner(ctx, o.ID, t0.Add(10*time.Second), ttl); err != nil || !exp.Equal(t0.Add(25*time.Second)) {
		t.Fatalf("renew: %v %v", exp, err)
	}
	// Paused past its TTL: fenced, and the renewal does not revive it.
	late := t0.Add(time.Minute)
	if _, _, err := db.Admit(ctx, by, late, late.Add(-time.Hour), "", admitNow(late)); !errors.Is(err, ErrFenced) {
		t.Errorf("admission after the registration lapsed: %v, want ErrFenced", err)
	}
	if _, err := db.RenewOwner(ctx, o.ID, late, ttl); !errors.Is(err, ErrFenced) {
		t.Errorf("renewal after the registration lapsed: %v, want ErrFenced", err)
	}
	owners, err := db.Owners(ctx)
	if err != nil || len(owners) != 1 || owners[0].Live(late) {
		t.Fatalf("owners: %+v %v", owners, err)
	}
	// Released: gone.
	o2 := register(t, db, RoleTrigger, late)
	if err := db.ReleaseOwner(ctx, o2.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Admit(ctx, Holder{Owner: o2.ID}, late, late.Add(-time.Hour), "", admitNow(late)); !errors.Is(err, ErrFenced) {
		t.Errorf("admission of a released owner: %v, want ErrFenced", err)
	}
	// A day after o expired, the next registration deletes its row.
	register(t, db, RoleTrigger, t0.Add(25*time.Second+ownerRetention+time.Second))
	owners, _ = db.Owners(ctx)
	for _, x := range owners {
		if x.ID == o.ID {
			t.Errorf("owner expired more than a day ago is still there")
		}
	}
	if len(owners) != 1 {
		t.Errorf("%d owners, want 1", len(owners))
	}
}

// TestVoid: an attempt that never left is undone: no ledger row, the slot back to
// planned when it was its only attempt, one attempt fewer otherwise.
func TestVoid(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	key := "report@2026-11-30T11:30:00Z"
	id, _, err := db.Admit(ctx, Holder{}, t0, t0.Add(-time.Hour), key, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Void(ctx, id, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if as, _ := db.Attempts(ctx, time.Time{}); len(as) != 0 {
		t.Errorf("ledger after void: %d rows", len(as))
	}
	s, err := db.Slot(ctx, key)
	if err != nil || s.State != StatePlanned || s.Attempts != 0 || !s.LastAttempt.IsZero() {
		t.Errorf("slot after void: %+v %v; want planned, 0 attempts", s, err)
	}
	// Two attempts, the second voided: still triggering with one.
	t1 := t0.Add(2 * time.Second)
	if _, _, err := db.Admit(ctx, Holder{}, t1, t0.Add(-time.Hour), key, admitNow(t1)); err != nil {
		t.Fatal(err)
	}
	id2, _, err := db.Admit(ctx, Holder{}, t1.Add(time.Second), t0.Add(-time.Hour), key, admitNow(t1.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Void(ctx, id2, t1.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, key); s.State != StateTriggering || s.Attempts != 1 {
		t.Errorf("slot after voiding the second attempt: %s, %d attempts; want triggering, 1", s.State, s.Attempts)
	}
	if err := db.Void(ctx, 999, t1); err != nil {
		t.Errorf("void of an unknown id: %v", err)
	}
}

// TestMigrateV1ToOwners: a version-1 database with a slot left triggering is migrated:
// the slot keeps its row (owner unknown), the lease starts at epoch 0.
func TestMigrateV1ToOwners(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/hexcron.db"
	raw := rawDB(t, path)
	mustExec(t, raw, migrations()[0].sql)
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
