package statetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"hexcron/state"
)

// testPauses is the pauses' contract: set, replace, read in force at an instant, clear,
// prune, refuse bad input, and stay bounded.
func testPauses(t *testing.T, be Backend) {
	ctx := context.Background()
	all := t0.AddDate(-1, 0, 0) // Pauses at an instant before every Until lists every row
	names := func(ps []state.Pause) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Schedule)
		}
		return strings.Join(s, ",")
	}

	t.Run("set, replace, in force", func(t *testing.T) {
		st := be.Open(t)
		a := state.Pause{Schedule: "alpha", Since: t0, By: "alice", Reason: "backfill in progress"}
		b := state.Pause{Schedule: "beta", Since: t0.Add(time.Minute), Until: t0.Add(2 * time.Hour), By: "bob"}
		for _, p := range []state.Pause{b, a} {
			if err := st.SetPause(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.Pauses(ctx, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []state.Pause{a, b}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Pauses = %+v, want %+v (sorted by schedule, times as stored)", got, want)
		}
		// At beta's Until it is over; alpha has none.
		if got, _ := st.Pauses(ctx, t0.Add(2*time.Hour)); names(got) != "alpha" {
			t.Errorf("at beta's until: in force %q, want alpha", names(got))
		}
		// Pausing again replaces: a new until, by and reason.
		a2 := state.Pause{Schedule: "alpha", Since: t0.Add(3 * time.Minute), Until: t0.Add(30 * time.Minute), By: "carol", Reason: "other"}
		if err := st.SetPause(ctx, a2); err != nil {
			t.Fatal(err)
		}
		got, _ = st.Pauses(ctx, t0.Add(4*time.Minute))
		if len(got) != 2 || got[0] != a2 {
			t.Errorf("after replacing alpha's pause: %+v, want %+v first", got, a2)
		}
	})

	t.Run("clear", func(t *testing.T) {
		st := be.Open(t)
		p := state.Pause{Schedule: "alpha", Since: t0, Until: t0.Add(time.Hour), By: "alice", Reason: "r"}
		if err := st.SetPause(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, ok, err := st.ClearPause(ctx, "alpha", t0.Add(time.Minute))
		if err != nil || !ok || got != p {
			t.Fatalf("ClearPause = %+v, %v, %v; want the pause, true", got, ok, err)
		}
		if _, ok, err := st.ClearPause(ctx, "alpha", t0.Add(time.Minute)); err != nil || ok {
			t.Errorf("second ClearPause = %v, %v; want none", ok, err)
		}
		if _, ok, err := st.ClearPause(ctx, "never-paused", t0); err != nil || ok {
			t.Errorf("ClearPause of a schedule never paused = %v, %v; want none", ok, err)
		}
		// A pause whose until has come is deleted and reported as none.
		if err := st.SetPause(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := st.ClearPause(ctx, "alpha", t0.Add(time.Hour)); err != nil || ok {
			t.Errorf("ClearPause of an expired pause = %v, %v; want none", ok, err)
		}
		if got, _ := st.Pauses(ctx, all); len(got) != 0 {
			t.Errorf("rows left after clearing: %+v", got)
		}
	})

	t.Run("prune", func(t *testing.T) {
		st := be.Open(t)
		for i, until := range []time.Duration{0, time.Minute, time.Hour} {
			p := state.Pause{Schedule: fmt.Sprintf("s%d", i), Since: t0}
			if until > 0 {
				p.Until = t0.Add(until)
			}
			if err := st.SetPause(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		n, err := st.PrunePauses(ctx, t0.Add(time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("PrunePauses = %d, %v; want 1 (s1, whose until came)", n, err)
		}
		if got, _ := st.Pauses(ctx, all); names(got) != "s0,s2" {
			t.Errorf("rows after prune: %q, want s0,s2", names(got))
		}
	})

	t.Run("refused", func(t *testing.T) {
		st := be.Open(t)
		for name, p := range map[string]state.Pause{
			"no schedule":      {Since: t0},
			"no since":         {Schedule: "a"},
			"until before":     {Schedule: "a", Since: t0, Until: t0.Add(-time.Second)},
			"until equal":      {Schedule: "a", Since: t0, Until: t0},
			"long reason":      {Schedule: "a", Since: t0, Reason: strings.Repeat("x", state.MaxPauseReason+1)},
			"long user":        {Schedule: "a", Since: t0, By: strings.Repeat("x", state.MaxPauseBy+1)},
			"reason not UTF-8": {Schedule: "a", Since: t0, Reason: "\xff"},
			"user not UTF-8":   {Schedule: "a", Since: t0, By: "\xfe"},
		} {
			if err := st.SetPause(ctx, p); !errors.Is(err, state.ErrBadPause) {
				t.Errorf("%s: SetPause = %v, want state.ErrBadPause", name, err)
			}
		}
		if got, _ := st.Pauses(ctx, all); len(got) != 0 {
			t.Errorf("a refused pause was stored: %+v", got)
		}
	})

	// Bounded: the table holds at most one row per schedule, and a pause whose until
	// has come is gone after the next SetPause or PrunePauses, however many were set.
	t.Run("bounded", func(t *testing.T) {
		st := be.Open(t)
		now := t0
		for i := range 200 {
			p := state.Pause{Schedule: fmt.Sprintf("s%d", i%7), Since: now, Until: now.Add(time.Minute)}
			if err := st.SetPause(ctx, p); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				if _, _, err := st.ClearPause(ctx, p.Schedule, now); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(20 * time.Second)
		}
		got, _ := st.Pauses(ctx, all)
		if len(got) > 3 { // set in the last minute: at most 3, 20 s apart
			t.Errorf("%d rows after 200 pauses of 1m set 20s apart, want at most 3: %+v", len(got), got)
		}
		if _, err := st.PrunePauses(ctx, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Pauses(ctx, all); len(got) != 0 {
			t.Errorf("rows left after every until came and a prune: %+v", got)
		}
	})
}
