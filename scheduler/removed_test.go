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

const (
	goneProject  = "44444444-4444-4444-8444-444444444444"
	staysProject = "55555555-5555-4555-8555-555555555555"
	goneSlot     = "gone@2000-01-01T00:00:00Z" // fires at the start of the bubble's clock
)

// removedConfig has schedule "gone" (daily at midnight UTC, timeout 1m) when withGone,
// and "stays" (daily at noon) always.
func removedConfig(withGone bool) string {
	s := `budget:
  triggers:
    - {limit: 20, per: 1m}
    - {limit: 60, per: 1h}
schedules:
  - name: stays
    project: ` + staysProject + `
    cron: "0 12 * * *"
`
	if withGone {
		s += `  - name: gone
    project: ` + goneProject + `
    cron: "0 0 * * *"
    timeout: 1m
`
	}
	return s
}

// TestRemovedScheduleRunTrackedToEnd: a reload that removes a schedule while its run
// is going leaves the run tracked: it is polled to its end and recorded with Hex's
// final status (or, stuck, cancelled at the timeout in force when it was triggered).
// The same holds for a row written before schema 3 (no project or timeout recorded),
// which the daemon pins from the config it had before the reload.
func TestRemovedScheduleRunTrackedToEnd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		outcome  hexsim.Outcome
		oldRow   bool // the run's row predates schema 3: the daemon must pin it
		state    state.State
		reasonIn string
	}{
		{name: "completes", outcome: hexsim.OutcomeCompleted, state: state.StateCompleted, reasonIn: "hex status COMPLETED"},
		{name: "errors", outcome: hexsim.OutcomeErrored, state: state.StateErrored, reasonIn: "hex status ERRORED"},
		{name: "stuck, cancelled at its timeout", outcome: hexsim.OutcomeStuck, state: state.StateTimedOut, reasonIn: "still going after timeout 1m; cancelled"},
		{name: "row without project", outcome: hexsim.OutcomeCompleted, oldRow: true, state: state.StateCompleted, reasonIn: "hex status COMPLETED"},
		{name: "stuck row without timeout", outcome: hexsim.OutcomeStuck, oldRow: true, state: state.StateTimedOut, reasonIn: "still going after timeout 1m; cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := newQueueEnv(t, removedConfig(true), hexsim.Config{Seed: 1,
					Runs: hexsim.Lifecycle{Pending: -1, Running: 25 * time.Second, Outcomes: map[hexsim.Outcome]float64{tc.outcome: 1}},
				}, 0)
				defer env.dumpLog()
				start := time.Now()
				if tc.oldRow {
					// What a hexcron of schema 1 or 2 left: a run going, its row without
					// project and timeout.
					ctx := context.Background()
					run, err := env.sim.AddRun(goneProject, "API")
					if err != nil {
						t.Fatal(err)
					}
					if _, err := env.db.PlanSlot(ctx, state.Slot{Key: goneSlot}, start); err != nil {
						t.Fatal(err)
					}
					if err := env.db.Transition(ctx, goneSlot, state.StateTriggering, state.Update{At: start}); err != nil {
						t.Fatal(err)
					}
					if err := env.db.Transition(ctx, goneSlot, state.StateTriggered, state.Update{At: start, RunID: run.ID, Triggered: start}); err != nil {
						t.Fatal(err)
					}
				}
				env.start()
				time.Sleep(5 * time.Second)
				row := env.slot(goneSlot)
				if row.RunID == "" || row.State.Terminal() {
					t.Fatalf("before the reload %s is %s (run %q); want a run going", goneSlot, row.State, row.RunID)
				}
				if row.Project != goneProject || row.Timeout != time.Minute {
					t.Errorf("the run's row records project %q timeout %s; want %s and 1m", row.Project, row.Timeout, goneProject)
				}
				env.rewrite(removedConfig(false))
				time.Sleep(3 * time.Minute)
				env.stop()

				row = env.slot(goneSlot)
				if row.State != tc.state || !strings.Contains(row.Reason, tc.reasonIn) {
					t.Errorf("%s is %s (%q); want %s with %q", goneSlot, row.State, row.Reason, tc.state, tc.reasonIn)
				}
				run, ok := env.sim.Run(row.RunID)
				if !ok {
					t.Fatalf("hexsim has no run %s", row.RunID)
				}
				switch tc.state {
				case state.StateTimedOut:
					if !run.Cancelled || run.Status != "KILLED" {
						t.Errorf("hexsim run %s is %s, cancelled %v; want KILLED by cancel", run.ID, run.Status, run.Cancelled)
					}
					// Cancelled at its timeout: the poller wakes at trigger + 1m.
					if d := row.Ended.Sub(start); d < time.Minute || d > time.Minute+time.Second {
						t.Errorf("cancelled %s after the start, want at its 1m timeout", d)
					}
				default:
					if !row.Ended.Equal(run.EndTime) {
						t.Errorf("recorded end %v, Hex's %v", row.Ended, run.EndTime)
					}
				}
				if n := len(logRecords(env.log.String(), "unknown")); n > 0 {
					t.Errorf("%d runs recorded unknown", n)
				}
			})
		})
	}
}
