package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseSlotKey(t *testing.T) {
	tests := []struct {
		key     string
		want    Slot
		wantErr string
	}{
		{key: "nightly@2026-11-30T11:30:00Z", want: Slot{Schedule: "nightly", Nominal: t0, Kind: KindScheduled}},
		{key: "regional-report@2026-11-30T11:30:00Z[region=emea]",
			want: Slot{Schedule: "regional-report", Nominal: t0, Kind: KindScheduled, Matrix: map[string]string{"region": "emea"}}},
		{key: "r@2026-11-30T11:30:00Z[a=1,b=x=y]",
			want: Slot{Schedule: "r", Nominal: t0, Kind: KindScheduled, Matrix: map[string]string{"a": "1", "b": "x=y"}}},
		{key: "nightly@2026-11-30T11:30:00Z+manual", want: Slot{Schedule: "nightly", Nominal: t0, Kind: KindManual}},
		{key: "nightly", wantErr: `parse slot key "nightly": malformed slot key: want <schedule>@<RFC3339 time>`},
		{key: "@2026-11-30T11:30:00Z", wantErr: "want <schedule>@<RFC3339 time>"},
		{key: "nightly@yesterday", wantErr: `time "yesterday" is not RFC3339`},
		{key: "r@2026-11-30T11:30:00Z[region]", wantErr: `matrix entry "region" is not k=v`},
		{key: "r@2026-11-30T11:30:00Zregion]", wantErr: "']' without '['"},
	}
	for _, tt := range tests {
		got, err := ParseSlotKey(tt.key)
		if tt.wantErr != "" {
			if !errors.Is(err, ErrBadSlotKey) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSlotKey(%q) error = %v, want ErrBadSlotKey with %q", tt.key, err, tt.wantErr)
			}
			continue
		}
		tt.want.Key = tt.key
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseSlotKey(%q) = %+v, %v\nwant %+v", tt.key, got, err, tt.want)
		}
	}
	if got := MatrixSuffix(map[string]string{"region": "emea", "env": "prod"}); got != "[env=prod,region=emea]" {
		t.Errorf("MatrixSuffix = %q", got)
	}
	if got := MatrixSuffix(nil); got != "" {
		t.Errorf("MatrixSuffix(nil) = %q", got)
	}
}

// TestTransitionTable checks every (from, to) pair of states against the documented
// table, through the database.
func TestTransitionTable(t *testing.T) {
	live := map[State]bool{StatePlanned: true, StateTriggering: true, StateTriggered: true, StateRunning: true}
	ends := []State{StateCompleted, StateErrored, StateKilled, StateTimedOut, StateUnableToAllocate, StateUnknown}
	want := map[[2]State]bool{}
	allow := func(from State, tos ...State) {
		for _, to := range tos {
			want[[2]State{from, to}] = true
		}
	}
	allow(StatePlanned, StateTriggering, StateSkipped, StateFailed)
	allow(StateTriggering, StateTriggering, StateTriggered, StateRunning, StateSkipped, StateFailed)
	allow(StateTriggering, ends...)
	allow(StateTriggered, StateTriggered, StateRunning)
	allow(StateTriggered, ends...)
	allow(StateRunning, StateRunning)
	allow(StateRunning, ends...)

	ctx := context.Background()
	db := openT(t)
	n := 0
	for _, from := range States {
		if from.Terminal() == live[from] {
			t.Errorf("%s.Terminal() = %v", from, from.Terminal())
		}
		for _, to := range States {
			n++
			key := fmt.Sprintf("s@%s", t0.Add(time.Duration(n)*time.Minute).Format(time.RFC3339))
			if _, err := db.PlanSlot(ctx, Slot{Key: key}, t0); err != nil {
				t.Fatal(err)
			}
			// Bring the slot to from, directly (the path there is not under test).
			if _, err := db.sql.Exec("UPDATE slots SET state = ? WHERE key = ?", string(from), key); err != nil {
				t.Fatal(err)
			}
			err := db.Transition(ctx, key, to, Update{At: t0.Add(time.Hour), Reason: "test"})
			if CanTransition(from, to) != want[[2]State{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, !want[[2]State{from, to}])
			}
			got, _ := db.Slot(ctx, key)
			if want[[2]State{from, to}] {
				if err != nil || got.State != to {
					t.Errorf("%s -> %s: %v, state %s; want allowed", from, to, err, got.State)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) || !errors.Is(err, ErrIllegalTransition) || te.From != from || te.To != to {
				t.Errorf("%s -> %s: %v; want *TransitionError", from, to, err)
			}
			if got.State != from {
				t.Errorf("%s -> %s refused but state became %s", from, to, got.State)
			}
		}
	}
}

func TestTransitionErrorsAndFields(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	const a, b = "nightly@2026-11-30T11:30:00Z", "nightly@2026-12-01T11:30:00Z"
	for _, k := range []string{a, b} {
		if _, err := db.PlanSlot(ctx, Slot{Key: k}, t0); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(time.Hour)
	steps := []struct {
		to State
		u  Update
	}{
		{StateTriggering, Update{At: t1}},
		{StateTriggered, Update{At: t2, RunID: "run-1", RunURL: "https://app.hex.tech/r/1", TraceID: "tr-1", Triggered: t2}},
		{StateRunning, Update{At: t2, Started: t2}},
		{StateErrored, Update{At: t3, Ended: t3, Elapsed: time.Hour - 2*time.Second, Error: "cell 3 failed"}},
	}
	for _, st := range steps {
		if err := db.Transition(ctx, a, st.to, st.u); err != nil {
			t.Fatalf("-> %s: %v", st.to, err)
		}
	}
	got, _ := db.Slot(ctx, a)
	if got.State != StateErrored || got.RunID != "run-1" || got.RunURL != "https://app.hex.tech/r/1" || got.TraceID != "tr-1" ||
		!got.Triggered.Equal(t2) || !got.Started.Equal(t2) || !got.Ended.Equal(t3) || got.Elapsed != time.Hour-2*time.Second ||
		got.LastError != "cell 3 failed" || !got.Updated.Equal(t3) || !got.Created.Equal(t0) {
		t.Errorf("slot after its life = %+v", got)
	}

	err := db.Transition(ctx, a, StateRunning, Update{At: t3})
	if want := "transition slot: slot " + a + ": illegal slot state transition errored -> running"; err == nil || err.Error() != want {
		t.Errorf("out of a terminal state: %v\nwant %s", err, want)
	}
	if err := db.Transition(ctx, "x@2026-11-30T11:30:00Z", StateRunning, Update{At: t3}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing slot: %v", err)
	}
	if err := db.Transition(ctx, b, StateTriggering, Update{}); err == nil || !strings.Contains(err.Error(), "(At) is required") {
		t.Errorf("no At: %v", err)
	}
	if err := db.Transition(ctx, b, State("exploded"), Update{At: t1}); err == nil || !strings.Contains(err.Error(), `unknown state "exploded"`) {
		t.Errorf("bad state: %v", err)
	}

	// One run belongs to one slot.
	db.Transition(ctx, b, StateTriggering, Update{At: t1})
	err = db.Transition(ctx, b, StateTriggered, Update{At: t2, RunID: "run-1"})
	if !errors.Is(err, ErrRunClaimed) || err.Error() != "transition slot "+b+": run already recorded for another slot" {
		t.Errorf("adopting another slot's run: %v", err)
	}
	if key, ok, err := db.ClaimedRun(ctx, "run-1"); key != a || !ok || err != nil {
		t.Errorf("ClaimedRun(run-1) = %q %v %v", key, ok, err)
	}
	if _, ok, err := db.ClaimedRun(ctx, "run-2"); ok || err != nil {
		t.Errorf("ClaimedRun(run-2) = %v %v", ok, err)
	}
	// One slot has one run: a second run id is refused.
	if err := db.Transition(ctx, b, StateTriggered, Update{At: t2, RunID: "run-2"}); err != nil {
		t.Fatal(err)
	}
	err = db.Transition(ctx, b, StateTriggered, Update{At: t2, RunID: "run-3"})
	if !errors.Is(err, ErrSlotTaken) || err.Error() != "transition slot: slot "+b+" already triggered (state triggered, run run-2)" {
		t.Errorf("second run id: %v", err)
	}
	if err := db.Transition(ctx, b, StateRunning, Update{At: t2, RunID: "run-2"}); err != nil {
		t.Errorf("same run id again: %v", err)
	}
}

func TestPlanSlot(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	s := Slot{Key: "r@2026-11-30T11:30:00Z[region=emea]", Planned: t0.Add(5 * time.Minute)}
	created, err := db.PlanSlot(ctx, s, t0)
	if err != nil || !created {
		t.Fatalf("PlanSlot = %v, %v", created, err)
	}
	got, _ := db.Slot(ctx, s.Key)
	if got.State != StatePlanned || got.Schedule != "r" || !got.Nominal.Equal(t0) || got.Matrix["region"] != "emea" ||
		!got.Planned.Equal(t0.Add(5*time.Minute)) || got.Kind != KindScheduled {
		t.Errorf("planned slot = %+v", got)
	}
	// Re-planning moves a planned slot.
	s.Planned = t0.Add(7 * time.Minute)
	if created, err := db.PlanSlot(ctx, s, t0.Add(time.Second)); err != nil || created {
		t.Errorf("re-plan = %v, %v", created, err)
	}
	if got, _ := db.Slot(ctx, s.Key); !got.Planned.Equal(t0.Add(7*time.Minute)) || !got.Updated.Equal(t0.Add(time.Second)) {
		t.Errorf("re-planned slot = %+v", got)
	}
	// ... but not one already fired.
	db.Transition(ctx, s.Key, StateTriggering, Update{At: t0.Add(7 * time.Minute)})
	s.Planned = t0.Add(9 * time.Minute)
	db.PlanSlot(ctx, s, t0.Add(8*time.Minute))
	if got, _ := db.Slot(ctx, s.Key); !got.Planned.Equal(t0.Add(7*time.Minute)) || got.State != StateTriggering {
		t.Errorf("a fired slot was re-planned: %+v", got)
	}
	// Same (schedule, nominal, matrix) under another key is refused; manual runs are exempt.
	_, err = db.PlanSlot(ctx, Slot{Key: "other-key", Schedule: "r", Nominal: t0, Matrix: map[string]string{"region": "emea"}}, t0)
	if err == nil || !strings.Contains(err.Error(), "another slot has the same schedule, nominal time and matrix") {
		t.Errorf("duplicate instant: %v", err)
	}
	if _, err := db.PlanSlot(ctx, Slot{Key: "r@2026-11-30T11:30:00Z+manual", Matrix: map[string]string{"region": "emea"}}, t0); err != nil {
		t.Errorf("manual run at a slot's instant: %v", err)
	}
	if got, _ := db.Slot(ctx, "r@2026-11-30T11:30:00Z+manual"); got.Kind != KindManual {
		t.Errorf("manual kind = %s", got.Kind)
	}
	if _, err := db.Slot(ctx, "nope@2026-11-30T11:30:00Z"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Slot(missing) = %v", err)
	}
}

func TestSkipSlot(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	// Never planned: recorded directly as skipped.
	const k1 = "nightly@2026-11-30T11:30:00Z"
	if err := db.SkipSlot(ctx, Slot{Key: k1, Kind: KindCatchup}, "no room in window", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Slot(ctx, k1); got.State != StateSkipped || got.Reason != "no room in window" || got.Kind != KindCatchup {
		t.Errorf("skipped = %+v", got)
	}
	// Planned, then skipped.
	const k2 = "nightly@2026-12-01T11:30:00Z"
	db.PlanSlot(ctx, Slot{Key: k2}, t0)
	if err := db.SkipSlot(ctx, Slot{Key: k2}, "overlap: previous run still running", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Slot(ctx, k2); got.State != StateSkipped || got.Reason != "overlap: previous run still running" {
		t.Errorf("skipped = %+v", got)
	}
	// Not out of a terminal state.
	if err := db.SkipSlot(ctx, Slot{Key: k2}, "again", t0); !errors.Is(err, ErrIllegalTransition) {
		t.Errorf("skip a skipped slot: %v", err)
	}
}

// seed writes a small history: schedule -> (nominal offset, state).
func seed(t *testing.T, db *DB, rows []struct {
	key   string
	state State
}) {
	t.Helper()
	ctx := context.Background()
	for _, r := range rows {
		s, err := ParseSlotKey(r.key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.PlanSlot(ctx, Slot{Key: r.key, Planned: s.Nominal.Add(time.Minute)}, s.Nominal.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if r.state != StatePlanned {
			if _, err := db.sql.Exec("UPDATE slots SET state = ?, updated_ms = ? WHERE key = ?",
				string(r.state), s.Nominal.Add(time.Hour).UnixMilli(), r.key); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func keysOf(ss []Slot) string {
	var ks []string
	for _, s := range ss {
		ks = append(ks, s.Key)
	}
	return strings.Join(ks, " ")
}

func TestQueries(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	seed(t, db, []struct {
		key   string
		state State
	}{
		{"a@2026-11-30T09:00:00Z", StateCompleted},
		{"a@2026-11-30T10:00:00Z", StateErrored},
		{"a@2026-11-30T11:00:00Z", StateRunning},
		{"a@2026-11-30T12:00:00Z", StatePlanned},
		{"a@2026-11-30T13:00:00Z", StatePlanned},
		{"b@2026-11-30T10:30:00Z", StateSkipped},
		{"b@2026-11-30T11:30:00Z", StateTriggering},
		{"b@2026-11-30T11:45:00Z", StateTriggered},
		{"c@2026-11-30T08:00:00Z", StatePlanned}, // planned in the past: not "next"
	})
	tests := []struct {
		name string
		got  func() ([]Slot, error)
		want string
	}{
		{"triggering", func() ([]Slot, error) { return db.SlotsInState(ctx, StateTriggering) }, "b@2026-11-30T11:30:00Z"},
		{"active runs", db.activeRunsT(ctx), "a@2026-11-30T11:00:00Z b@2026-11-30T11:45:00Z"},
		{"history all", func() ([]Slot, error) { return db.History(ctx, Filter{}) }, "a@2026-11-30T13:00:00Z a@2026-11-30T12:00:00Z b@2026-11-30T11:45:00Z b@2026-11-30T11:30:00Z a@2026-11-30T11:00:00Z b@2026-11-30T10:30:00Z a@2026-11-30T10:00:00Z a@2026-11-30T09:00:00Z c@2026-11-30T08:00:00Z"},
		{"history schedule", func() ([]Slot, error) { return db.History(ctx, Filter{Schedule: "b"}) }, "b@2026-11-30T11:45:00Z b@2026-11-30T11:30:00Z b@2026-11-30T10:30:00Z"},
		{"history states", func() ([]Slot, error) {
			return db.History(ctx, Filter{States: []State{StateCompleted, StateErrored, StateSkipped}})
		}, "b@2026-11-30T10:30:00Z a@2026-11-30T10:00:00Z a@2026-11-30T09:00:00Z"},
		{"history since until limit", func() ([]Slot, error) {
			return db.History(ctx, Filter{Since: t0.Add(-2 * time.Hour), Until: t0.Add(31 * time.Minute), Limit: 3})
		}, "a@2026-11-30T12:00:00Z b@2026-11-30T11:45:00Z b@2026-11-30T11:30:00Z"},
	}
	for _, tt := range tests {
		got, err := tt.got()
		if err != nil || keysOf(got) != tt.want {
			t.Errorf("%s = %s, %v\nwant %s", tt.name, keysOf(got), err, tt.want)
		}
	}

	last, err := db.LastRunPerSchedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 2 || last["a"].Key != "a@2026-11-30T11:00:00Z" || last["a"].State != StateRunning ||
		last["b"].Key != "b@2026-11-30T11:45:00Z" {
		t.Errorf("LastRunPerSchedule = %v", last)
	}
	next, err := db.NextPlanned(ctx, t0) // 11:30
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || next["a"].Key != "a@2026-11-30T12:00:00Z" || !next["a"].Planned.Equal(t0.Add(31*time.Minute)) {
		t.Errorf("NextPlanned = %v", next)
	}

	// Prune: terminal slots last updated before the instant go, live ones stay.
	// Updated = nominal + 1h: a@09 (10:00), a@10 (11:00), b@10:30 (11:30). a@09 is a's
	// latest completed slot and a has newer rows: it stays (its last success).
	n, err := db.PruneHistory(ctx, t0, 100) // 11:30
	if err != nil || n != 1 {
		t.Errorf("PruneHistory = %d, %v; want 1", n, err)
	}
	if all, _ := db.History(ctx, Filter{}); len(all) != 8 || strings.Contains(keysOf(all), "a@2026-11-30T10:00:00Z") {
		t.Errorf("%d slots left, want 8 without a@10:00: %s", len(all), keysOf(all))
	}
}

func (db *DB) activeRunsT(ctx context.Context) func() ([]Slot, error) {
	return func() ([]Slot, error) { return db.ActiveRuns(ctx) }
}

func TestPruneHistoryKeepsLedger(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	const k = "nightly@2026-11-30T11:30:00Z"
	id, _, err := db.Admit(ctx, Holder{}, t0, time.Time{}, k, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	db.Transition(ctx, k, StateFailed, Update{At: t0, Reason: "422: project not published"})
	if n, err := db.PruneHistory(ctx, t0.Add(time.Hour), 10); n != 1 || err != nil {
		t.Fatalf("PruneHistory = %d, %v", n, err)
	}
	as, _ := db.Attempts(ctx, time.Time{})
	if len(as) != 1 || as[0].ID != id || as[0].Slot != "" {
		t.Errorf("ledger after pruning its slot = %+v, want the row kept with no slot", as)
	}
}

func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	if _, ok, err := db.Heartbeat(ctx); ok || err != nil {
		t.Errorf("fresh heartbeat = %v, %v", ok, err)
	}
	for _, at := range []time.Time{t0, t0.Add(1500 * time.Millisecond)} {
		if err := db.SetHeartbeat(ctx, at); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := db.Heartbeat(ctx); !ok || err != nil || !got.Equal(at) {
			t.Errorf("Heartbeat = %v %v %v, want %v", got, ok, err, at)
		}
	}
}
