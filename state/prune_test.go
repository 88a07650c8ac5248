package state

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCompactShrinksFile: a new database is incremental-auto-vacuum; after pruning, the
// pages Compact returns make the file smaller, in calls of at most maxPages pages.
func TestCompactShrinksFile(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	var mode int
	if err := db.sql.QueryRow("PRAGMA auto_vacuum").Scan(&mode); err != nil || mode != autoVacuumIncremental {
		t.Fatalf("auto_vacuum = %d, %v; want %d (incremental)", mode, err, autoVacuumIncremental)
	}
	fill(t, db, 3000)
	before := pages(t, db)
	if n, err := db.PruneHistory(ctx, t0.Add(time.Hour), 1<<20); err != nil || n != 3000 {
		t.Fatalf("PruneHistory = %d, %v", n, err)
	}
	r, err := db.Compact(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if r.Converted || r.Freed != 50 {
		t.Errorf("first Compact = %+v, want 50 pages freed and no conversion", r)
	}
	for r.Freed > 0 {
		if r, err = db.Compact(ctx, 50); err != nil {
			t.Fatal(err)
		}
	}
	after := pages(t, db)
	if after*4 > before {
		t.Errorf("file has %d pages after pruning and compacting, %d before: want it to shrink to a quarter or less", after, before)
	}
	t.Logf("%d pages with 3000 slots, %d after pruning them (page size %d)", before, after, r.PageSize)
}

// TestCompactConvertsOldFile: a file made before schema 7 (no auto-vacuum) is converted
// by its first Compact, once, and then shrinks like a new one.
func TestCompactConvertsOldFile(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA auto_vacuum = NONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "VACUUM"); err != nil {
		t.Fatal(err)
	}
	var mode int
	if err := conn.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil || mode != 0 {
		t.Fatalf("auto_vacuum = %d, %v; the test needs an old-style file", mode, err)
	}
	conn.Close()
	fill(t, db, 1000)
	if _, err := db.PruneHistory(ctx, t0.Add(time.Hour), 1<<20); err != nil {
		t.Fatal(err)
	}
	r, err := db.Compact(ctx, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Converted {
		t.Errorf("first Compact of an old file = %+v, want Converted", r)
	}
	if err := db.sql.QueryRow("PRAGMA auto_vacuum").Scan(&mode); err != nil || mode != autoVacuumIncremental {
		t.Errorf("auto_vacuum after Compact = %d, %v; want incremental", mode, err)
	}
	if r, err := db.Compact(ctx, 10); err != nil || r.Converted {
		t.Errorf("second Compact = %+v, %v; want no second conversion", r, err)
	}
}

// fill writes n errored slots with a few hundred bytes each, updated at t0.
func fill(t *testing.T, db *DB, n int) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reason := strings.Repeat("hex status COMPLETED ", 10)
	for i := range n {
		s := Slot{Key: fmt.Sprintf("s%04d@%s", i%300, t0.Add(-time.Duration(i)*time.Hour).Format(time.RFC3339)), State: StateErrored,
			Reason: reason, Planned: t0.Add(-time.Duration(i) * time.Hour)}
		s, err := complete(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := insertSlot(ctx, tx, s, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func pages(t *testing.T, db *DB) int64 {
	t.Helper()
	var n int64
	if err := db.sql.QueryRow("PRAGMA page_count").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
