package state

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAdmitIsImmediate: transactions take the write lock at BEGIN (BEGIN IMMEDIATE), so
// a transaction that has not written anything yet already excludes other writers; and a
// writer with a busy_timeout waits for the lock instead of failing.
func TestAdmitIsImmediate(t *testing.T) {
	ctx := context.Background()
	a := openT(t)
	impatient, err := Open(ctx, a.Path(), Options{BusyTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()
	patient, err := Open(ctx, a.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()

	tx, err := a.sql.BeginTx(ctx, nil) // no statement yet
	if err != nil {
		t.Fatal(err)
	}
	if tx2, err := impatient.sql.BeginTx(ctx, nil); err == nil || !isBusy(err) || !strings.Contains(err.Error(), "database is locked") {
		if tx2 != nil {
			tx2.Rollback()
		}
		t.Fatalf("BEGIN while another transaction merely began: %v, want SQLITE_BUSY (the lock is taken at BEGIN)", err)
	}

	if _, err := tx.Exec("INSERT INTO ledger (sent_ms) VALUES (?)", t0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	seen := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		_, _, err := patient.Admit(ctx, Holder{}, t0, time.Time{}, "", func(as []Attempt) time.Duration { seen <- len(as); return 0 })
		done <- err
	}()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("patient Admit: %v", err)
	}
	if n := <-seen; n != 1 {
		t.Errorf("patient Admit saw %d rows, want the 1 committed before it", n)
	}
}
