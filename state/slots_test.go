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
