package state

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPruneHistoryRules: only terminal slots older than the cut go (planned and last
// changed before it), live slots never do whatever their age, a schedule's latest
// completed slot stays while the schedule has newer rows, and each call deletes at
// most its limit.
func TestPruneHistoryRules(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	day := 24 * time.Hour
	old := t0.Add(-100 * day)
	put := func(key string, st State, at time.Time) {
		t.Helper()
		if _, err := db.PlanSlot(ctx, Slot{Key: key}, at); err != nil {
			t.Fatal(err)
		}
		if _, err := db.sql.Exec("UPDATE slots SET state = ?, updated_ms = ?, ended_ms = ? WHERE key = ?", string(st), at.UnixMilli(), at.UnixMilli(), key); err != nil {
			t.Fatal(err)
		}
	}
	key := func(schedule string, at time.Time) string { return schedule + "@" + at.UTC().Format(time.RFC3339) }
	// Every live state, ancient: never pruned.
	for i, st := range []State{StatePlanned, StateTriggering, StateTriggered, StateRunning} {
		put(key("live", old.Add(time.Duration(i)*time.Hour)), st, old.Add(time.Duration(i)*time.Hour))
	}
	// Every terminal state, ancient: pruned, except a's latest completed (a runs on).
	var terminal []State
	for _, st := range States {
		if st.Terminal() {
			terminal = append(terminal, st)
		}
	}
	for i, st := range terminal {
		put(key("a", old.Add(time.Duration(i)*time.Hour)), st, old.Add(time.Duration(i)*time.Hour))
	}
	lastSuccess := key("a", old.Add(-time.Hour))
	put(lastSuccess, StateCompleted, old.Add(-time.Hour)) // older than a's other completed one
	put(key("a", t0), StateErrored, t0)                   // recent: a is still configured and firing
	// b left the config long ago: its last success goes with the rest.
	put(key("b", old), StateCompleted, old)

	cut := t0.Add(-90 * day)
	var total int64
	for {
		n, err := db.PruneHistory(ctx, cut, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n > 3 {
			t.Fatalf("one call deleted %d rows, limit 3", n)
		}
		if n == 0 {
			break
		}
		total += n
	}
	rest, err := db.History(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]State{}
	for _, s := range rest {
		got[s.Key] = s.State
	}
	want := []string{key("live", old), key("live", old.Add(time.Hour)), key("live", old.Add(2*time.Hour)), key("live", old.Add(3*time.Hour)),
		key("a", t0)}
	// a's latest completed slot among the ancient ones is the terminal-states row.
	for i, st := range terminal {
		if st == StateCompleted {
			want = append(want, key("a", old.Add(time.Duration(i)*time.Hour)))
		}
	}
	if len(got) != len(want) {
		t.Errorf("left %d slots %v, want %d: %v", len(got), got, len(want), want)
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("slot %s was pruned; want it kept", k)
		}
	}
	if _, ok := got[lastSuccess]; ok {
		t.Errorf("an older completed slot of a was kept: only the latest is")
	}
	if want := int64(len(terminal) - 1 + 1 + 1); total != want {
		t.Errorf("pruned %d slots, want %d", total, want)
	}
	// The kept last success is what LastSuccess reads.
	ls, err := db.LastSuccess(ctx)
	if _, hasB := ls["b"]; err != nil || hasB || ls["a"].IsZero() {
		t.Errorf("LastSuccess = %v, %v; want a's kept and b's gone with its rows", ls, err)
	}
}

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

func TestPruneLedgerInBatches(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	for i := range 25 {
		sent := t0.Add(time.Duration(i) * time.Minute)
		if _, _, err := db.Admit(ctx, Holder{}, sent, time.Time{}, "", admitNow(sent)); err != nil {
			t.Fatal(err)
		}
	}
	cut := t0.Add(20 * time.Minute)
	for _, want := range []int64{8, 8, 4, 0} {
		if n, err := db.PruneLedger(ctx, cut, 8); err != nil || n != want {
			t.Fatalf("PruneLedger = %d, %v; want %d", n, err, want)
		}
	}
	if as, _ := db.Attempts(ctx, time.Time{}); len(as) != 5 || !as[0].Sent.Equal(cut) {
		t.Errorf("ledger after pruning = %d rows from %v, want 5 from %v", len(as), as[0].Sent, cut)
	}
}

func TestPruneOwners(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	dead, err := db.RegisterOwner(ctx, RoleTrigger, "h", 1, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	live, err := db.RegisterOwner(ctx, RoleTrigger, "h", 2, t0.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneOwners(ctx, t0.Add(30*time.Minute)); n != 1 || err != nil {
		t.Fatalf("PruneOwners = %d, %v; want 1", n, err)
	}
	os, _ := db.Owners(ctx)
	if len(os) != 1 || os[0].ID != live.ID || os[0].ID == dead.ID {
		t.Errorf("owners left = %+v, want only %s", os, live.ID)
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

// TestSlotStory: the fields `history --slot` tells a slot's story from: the plan and
// wait reasons, the adopted flag, and the slot's ledger rows.
func TestSlotStory(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	const k = "nightly@2026-11-30T11:30:00Z"
	if _, err := db.PlanSlot(ctx, Slot{Key: k, Planned: t0.Add(40 * time.Second), PlanReason: "rule 60/1h full"}, t0); err != nil {
		t.Fatal(err)
	}
	id, _, err := db.Admit(ctx, Holder{}, t0.Add(time.Minute), time.Time{}, k, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	db.Complete(ctx, id, t0.Add(61*time.Second))
	if _, _, err := db.Admit(ctx, Holder{}, t0, time.Time{}, "other@2026-11-30T11:30:00Z", admitNow(t0)); err != nil {
		t.Fatal(err)
	}
	if err := db.Transition(ctx, k, StateTriggered, Update{At: t0.Add(2 * time.Minute), RunID: "r1", Adopted: true,
		WaitReason: "the trigger budget (rule 20/1m full)"}); err != nil {
		t.Fatal(err)
	}
	// A later update without them leaves them.
	if err := db.Transition(ctx, k, StateCompleted, Update{At: t0.Add(5 * time.Minute), Reason: "hex status COMPLETED"}); err != nil {
		t.Fatal(err)
	}
	s, err := db.Slot(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if s.PlanReason != "rule 60/1h full" || s.WaitReason != "the trigger budget (rule 20/1m full)" || !s.Adopted {
		t.Errorf("slot story = plan %q, wait %q, adopted %v", s.PlanReason, s.WaitReason, s.Adopted)
	}
	as, err := db.SlotAttempts(ctx, k)
	if err != nil || len(as) != 1 || as[0].ID != id || !as[0].Done.Equal(t0.Add(61*time.Second)) {
		t.Errorf("SlotAttempts = %+v, %v; want the one attempt of the slot", as, err)
	}
}
