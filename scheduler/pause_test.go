package scheduler

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient/hexsim"
	"hexcron/state"
)

// pauseConfig: two schedules firing every 10 seconds, short runs, room under the caps.
const pauseConfig = `budget:
  triggers:
    - {limit: 20, per: 1m}
    - {limit: 600, per: 1h}
defaults:
  window: 5s
  overlap: allow
schedules:
  - name: paused-one
    project: 44444444-4444-4444-8444-444444444444
    cron: "*/10 * * * * *"
  - name: other
    project: 55555555-5555-4555-8555-555555555555
    cron: "5/10 * * * * *"
`

// pauseSlots returns the slots of schedule with nominal in [from, to), by state.
func pauseSlots(t *testing.T, db *state.DB, schedule string, from, to time.Time) map[state.State][]state.Slot {
	t.Helper()
	rows, err := db.History(context.Background(), state.Filter{Schedule: schedule, Since: from, Until: to})
	if err != nil {
		t.Fatal(err)
	}
	out := map[state.State][]state.Slot{}
	for _, r := range rows {
		st := r.State
		if r.RunID != "" {
			st = state.StateTriggered // triggered, running or ended: a run was created
		}
		out[st] = append(out[st], r)
	}
	return out
}

// TestPauseSkipsFiringsUntilResumed: a pause written to the database while the daemon
// runs (as `hexcron pause` does) makes every later firing of that schedule a skipped
// row with the pause in its reason, and only that schedule's; it holds across a
// restart; a resume lets it fire again; a pause with an until ends by itself and its
// row is deleted. The daemon logs each change and exports the count.
func TestPauseSkipsFiringsUntilResumed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newQueueEnv(t, pauseConfig, hexsim.Config{Seed: 1,
			Runs: hexsim.Lifecycle{Pending: -1, Running: 2 * time.Second, Outcomes: map[hexsim.Outcome]float64{hexsim.OutcomeCompleted: 1}}}, 0)
		defer env.dumpLog()
		metrics := NewMetrics("test")
		start := func() {
			dm := env.pipe.daemon(t, env.db, env.conf, env.path, env.logger, 1, func(c *Config) { c.Metrics = metrics })
			ctx, cancel := context.WithCancel(context.Background())
			env.dm, env.cancel, env.done, env.reload, env.up = dm, cancel, make(chan error, 1), make(chan struct{}), true
			go func() { env.done <- dm.Run(ctx, env.reload) }()
		}
		gauge := func() float64 {
			fams := gather(t, metrics)
			return value(fams["hexcron_paused_schedules"].GetMetric()[0])
		}
		ctx := context.Background()
		t0 := time.Now()
		start()
		time.Sleep(32 * time.Second)

		// Paused at t0+32s; the next firing of paused-one is at t0+40s.
		pausedAt := time.Now()
		pause := state.Pause{Schedule: "paused-one", Since: pausedAt, By: "alice", Reason: "backfill in progress"}
		if err := env.db.SetPause(ctx, pause); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Second)
		if g := gauge(); g != 1 {
			t.Errorf("hexcron_paused_schedules = %v while paused, want 1", g)
		}
		// A restart while paused: the pause is in the database.
		env.stop()
		start()
		time.Sleep(40 * time.Second)
		resumedAt := time.Now()
		if _, ok, err := env.db.ClearPause(ctx, "paused-one", resumedAt); err != nil || !ok {
			t.Fatalf("ClearPause: %v, %v", ok, err)
		}
		time.Sleep(35 * time.Second) // (no firing instant falls on a pause or resume: no tie with the loop)

		// A pause of 25s ends by itself.
		untilFrom := time.Now()
		timed := state.Pause{Schedule: "paused-one", Since: untilFrom, Until: untilFrom.Add(25 * time.Second), By: "bob"}
		if err := env.db.SetPause(ctx, timed); err != nil {
			t.Fatal(err)
		}
		time.Sleep(70 * time.Second) // past the until, and past a heartbeat that prunes it
		end := time.Now()
		if g := gauge(); g != 0 {
			t.Errorf("hexcron_paused_schedules = %v after the resume and the expiry, want 0", g)
		}
		env.stop()

		before := pauseSlots(t, env.db, "paused-one", t0, pausedAt)
		during := pauseSlots(t, env.db, "paused-one", pausedAt, resumedAt)
		after := pauseSlots(t, env.db, "paused-one", resumedAt, untilFrom)
		timedOut := pauseSlots(t, env.db, "paused-one", untilFrom, untilFrom.Add(25*time.Second))
		afterUntil := pauseSlots(t, env.db, "paused-one", untilFrom.Add(25*time.Second), end)
		if len(before[state.StateTriggered]) < 3 {
			t.Errorf("before the pause: %d runs of paused-one, want 3 or more", len(before[state.StateTriggered]))
		}
		if n := len(during[state.StateTriggered]); n != 0 {
			t.Errorf("while paused: %d runs of paused-one were created, want none", n)
		}
		// 8 firings in the 80s paused (t0+40s .. t0+110s); the stop may leave the one
		// due during the restart to catch-up, which skips it as well.
		if n := len(during[state.StateSkipped]); n < 7 {
			t.Errorf("while paused: %d skipped rows, want 7 or more", n)
		}
		wantReason := "paused since " + pausedAt.UTC().Format(time.RFC3339) + " by alice: backfill in progress"
		for _, s := range during[state.StateSkipped] {
			if s.Reason != wantReason && !strings.HasPrefix(s.Reason, "missed while down") {
				t.Errorf("skipped %s: reason %q, want %q", s.Key, s.Reason, wantReason)
			}
		}
		if len(after[state.StateTriggered]) < 3 || len(after[state.StateSkipped]) != 0 {
			t.Errorf("after the resume: runs %d skipped %d, want 3 or more runs and no skip", len(after[state.StateTriggered]), len(after[state.StateSkipped]))
		}
		if len(timedOut[state.StateTriggered]) != 0 || len(timedOut[state.StateSkipped]) < 2 {
			t.Errorf("during the 25s pause: runs %d skipped %d, want none and 2 or more", len(timedOut[state.StateTriggered]), len(timedOut[state.StateSkipped]))
		}
		for _, s := range timedOut[state.StateSkipped] {
			if !strings.Contains(s.Reason, "by bob until "+untilFrom.Add(25*time.Second).UTC().Format(time.RFC3339)) {
				t.Errorf("skipped %s: reason %q, want the until in it", s.Key, s.Reason)
			}
		}
		if len(afterUntil[state.StateTriggered]) < 3 {
			t.Errorf("after the until: %d runs, want 3 or more", len(afterUntil[state.StateTriggered]))
		}
		// The other schedule never noticed.
		other := pauseSlots(t, env.db, "other", t0, end)
		if n := len(other[state.StateSkipped]) + len(other[state.StateFailed]); n > 1 {
			t.Errorf("other: %d slots skipped or failed, want at most the one due during the restart", n)
		}
		if n := len(other[state.StateTriggered]); n < 20 {
			t.Errorf("other: %d runs over %s, want 20 or more", n, end.Sub(t0))
		}
		// The log says each change once; the expired row is gone.
		for msg, want := range map[string]int{
			"schedule paused: its firings are skipped until it is resumed": 3, // set, again at the restart, the timed one
			"schedule resumed: it fires again":                             1,
			"pause ended: the schedule fires again":                        1,
		} {
			if n := len(logRecords(env.log.String(), msg)); n != want {
				t.Errorf("%d lines %q, want %d", n, msg, want)
			}
		}
		if rows, _ := env.db.Pauses(ctx, t0.AddDate(-1, 0, 0)); len(rows) != 0 {
			t.Errorf("pause rows left after the expiry and a heartbeat: %+v", rows)
		}
	})
}
