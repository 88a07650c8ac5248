package state

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAdmitRecordsAndWaits(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	rules := []rule{{Limit: 2, Per: time.Minute}}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	id1, wait, err := db.Admit(ctx, Holder{}, at(0), at(-time.Hour), "", slidingDecide(at(0), rules))
	if err != nil || wait != 0 || id1 == 0 {
		t.Fatalf("first Admit = %d, %v, %v", id1, wait, err)
	}
	// Sub-second precision survives the round trip.
	id2, _, err := db.Admit(ctx, Holder{}, at(1500*time.Millisecond), at(-time.Hour), "", slidingDecide(at(1500*time.Millisecond), rules))
	if err != nil || id2 <= id1 {
		t.Fatalf("second Admit = %d, %v", id2, err)
	}
	var seen []Attempt
	id3, wait, err := db.Admit(ctx, Holder{}, at(2*time.Second), at(-time.Hour), "", func(as []Attempt) time.Duration {
		seen = as
		return slidingDecide(at(2*time.Second), rules)(as)
	})
	if err != nil || id3 != 0 || wait != 58*time.Second+time.Millisecond {
		t.Errorf("third Admit = %d, %v, %v; want 0, 58.001s (the first attempt leaves the window)", id3, wait, err)
	}
	want := []Attempt{{ID: id1, Sent: at(0)}, {ID: id2, Sent: at(1500 * time.Millisecond)}}
	if !equalAttempts(seen, want) {
		t.Errorf("decide saw %+v, want %+v", seen, want)
	}
	if err := db.Complete(ctx, id1, at(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := db.Complete(ctx, id1, at(time.Hour)); err != nil { // first completion wins
		t.Fatal(err)
	}
	if err := db.Complete(ctx, 999, at(0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Complete(999) = %v, want ErrNotFound", err)
	}
	got, err := db.Attempts(ctx, at(-time.Hour))
	want[0].Done = at(300 * time.Millisecond)
	if err != nil || !equalAttempts(got, want) {
		t.Errorf("Attempts = %+v, %v\nwant %+v", got, err, want)
	}
	// since excludes older rows.
	if got, _ := db.Attempts(ctx, at(time.Second)); len(got) != 1 || got[0].ID != id2 {
		t.Errorf("Attempts(since 1s) = %+v, want only %d", got, id2)
	}
}

func equalAttempts(a, b []Attempt) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Slot != b[i].Slot || !a[i].Sent.Equal(b[i].Sent) || !a[i].Done.Equal(b[i].Done) {
			return false
		}
	}
	return true
}

func admitNow(at time.Time) func([]Attempt) time.Duration {
	return func([]Attempt) time.Duration { return 0 }
}

func TestAdmitClaimsSlot(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	const key = "regional-report@2026-11-30T11:30:00Z[region=emea]"

	// No row yet: Admit creates it from the key, in triggering.
	id, _, err := db.Admit(ctx, Holder{}, t0, t0.Add(-time.Hour), key, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Slot(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != StateTriggering || s.Attempts != 1 || !s.LastAttempt.Equal(t0) || s.Schedule != "regional-report" ||
		s.Matrix["region"] != "emea" || !s.Nominal.Equal(t0) || s.Kind != KindScheduled {
		t.Errorf("slot after Admit = %+v", s)
	}
	as, _ := db.Attempts(ctx, t0.Add(-time.Hour))
	if len(as) != 1 || as[0].ID != id || as[0].Slot != key {
		t.Errorf("ledger = %+v, want one row for %s", as, key)
	}

	// A retry while triggering counts another attempt.
	t1 := t0.Add(10 * time.Second)
	if _, _, err := db.Admit(ctx, Holder{}, t1, t0.Add(-time.Hour), key, admitNow(t1)); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, key); s.Attempts != 2 || !s.LastAttempt.Equal(t1) {
		t.Errorf("after retry: attempts %d last %v", s.Attempts, s.LastAttempt)
	}

	// A decide that says wait changes nothing.
	if _, wait, err := db.Admit(ctx, Holder{}, t1, t0, key, func([]Attempt) time.Duration { return time.Second }); err != nil || wait != time.Second {
		t.Errorf("waiting Admit = %v, %v", wait, err)
	}
	if s, _ := db.Slot(ctx, key); s.Attempts != 2 {
		t.Errorf("a refused admission counted an attempt: %d", s.Attempts)
	}

	// Once triggered, the slot is taken: nothing recorded, decide not even asked.
	if err := db.Transition(ctx, key, StateTriggered, Update{At: t1, RunID: "run-1"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.Admit(ctx, Holder{}, t1, t0, key, func([]Attempt) time.Duration { t.Error("decide called for a taken slot"); return 0 })
	var st *SlotTakenError
	if !errors.As(err, &st) || !errors.Is(err, ErrSlotTaken) || st.State != StateTriggered || st.RunID != "run-1" {
		t.Errorf("Admit on a triggered slot: %v", err)
	}
	if want := "admit: slot " + key + " already triggered (state triggered, run run-1)"; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if as, _ := db.Attempts(ctx, t0.Add(-time.Hour)); len(as) != 2 {
		t.Errorf("ledger has %d rows, want 2", len(as))
	}

	// A planned slot goes to triggering through Admit.
	const planned = "nightly@2026-12-01T02:00:00Z"
	if _, err := db.PlanSlot(ctx, Slot{Key: planned, Planned: t0.Add(time.Hour)}, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Admit(ctx, Holder{}, t1, t0, planned, admitNow(t1)); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, planned); s.State != StateTriggering || s.Attempts != 1 || !s.Planned.Equal(t0.Add(time.Hour)) {
		t.Errorf("planned slot after Admit: %+v", s)
	}

	// A key that cannot be parsed is refused without a row.
	if _, _, err := db.Admit(ctx, Holder{}, t1, t0, "no-at-sign", admitNow(t1)); !errors.Is(err, ErrBadSlotKey) {
		t.Errorf("Admit with a bad key: %v", err)
	}
}

func TestPruneLedgerAndBudgetUsed(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	// sent, done offsets from t0 (done < 0: in flight).
	rows := []struct{ sent, done time.Duration }{
		{-2 * time.Hour, -2*time.Hour + time.Second},
		{-61 * time.Second, -59 * time.Second}, // sent before the 1m window, answered inside it
		{-30 * time.Second, -29 * time.Second},
		{-10 * time.Second, -1}, // in flight
		{-70 * time.Minute, -70*time.Minute + time.Second},
	}
	for _, r := range rows {
		sent := t0.Add(r.sent)
		id, _, err := db.Admit(ctx, Holder{}, sent, time.Time{}, "", admitNow(sent))
		if err != nil {
			t.Fatal(err)
		}
		if r.done != -1 {
			db.Complete(ctx, id, t0.Add(r.done))
		}
	}
	got, err := db.BudgetUsed(ctx, t0, []time.Duration{time.Second, time.Minute, time.Hour, 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 3, 3, 5}; !equalInts(got, want) {
		t.Errorf("BudgetUsed = %v, want %v", got, want)
	}
	n, err := db.PruneLedger(ctx, t0.Add(-time.Hour), 10)
	if err != nil || n != 2 {
		t.Errorf("PruneLedger = %d, %v; want 2", n, err)
	}
	if as, _ := db.Attempts(ctx, time.Time{}); len(as) != 3 {
		t.Errorf("%d rows left, want 3", len(as))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

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

// TestAdmitConcurrentHandles: many goroutines on several handles of one file admit
// under a rule; no error, and no window breaks the rule.
func TestAdmitConcurrentHandles(t *testing.T) {
	ctx := context.Background()
	first := openT(t)
	rules := []rule{{Limit: 5, Per: 50 * time.Millisecond}, {Limit: 12, Per: 200 * time.Millisecond}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		db, err := Open(ctx, first.Path(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for range 2 {
			wg.Go(func() {
				for admitted := 0; admitted < 15; {
					now := time.Now().Truncate(time.Millisecond)
					_, wait, err := db.Admit(ctx, Holder{}, now, now.Add(-time.Second), "", slidingDecide(now, rules))
					if err != nil {
						errs <- err
						return
					}
					if wait == 0 {
						admitted++
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	as, _ := first.Attempts(ctx, time.Time{})
	if len(as) != 120 {
		t.Errorf("%d attempts, want 120", len(as))
	}
	for _, v := range violations(as, rules) {
		t.Error(v)
	}
}
