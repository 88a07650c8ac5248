package main

import (
	"sort"
	"strings"
	"testing"
	"time"

	"hexcron/state"
)

// unexplainedRuns returns the hexsim runs that no slot records and that no trigger
// interrupted by the last stop explains, oldest first, and how many were explained.
//
// A stop may interrupt a trigger before it learns its run's id (an ambiguous answer
// whose reconcile the grace period cut short): the slot stays `triggering` and the next
// start reconciles it. So, right after a stop, a run no slot records is a double
// trigger only if no slot of the run's project (projectOf maps a schedule to its
// project) was left triggering with its latest attempt sent no later than the run was
// created; each such slot explains one run at most. The scheduler package's auditRuns
// applies the same rule.
func unexplainedRuns(slots []state.Slot, runs []simRun, projectOf map[string]string) (unexplained []simRun, awaiting int) {
	recorded := map[string]bool{}
	open := map[string][]time.Time{} // latest attempts of the slots left triggering, by project
	for _, s := range slots {
		if s.RunID != "" {
			recorded[s.RunID] = true
		} else if s.State == state.StateTriggering && !s.LastAttempt.IsZero() {
			p := strings.ToLower(projectOf[s.Schedule])
			open[p] = append(open[p], s.LastAttempt)
		}
	}
	byProject := map[string][]simRun{}
	for _, r := range runs {
		if !recorded[r.ID] {
			p := strings.ToLower(r.ProjectID)
			byProject[p] = append(byProject[p], r)
		}
	}
	for p, rs := range byProject {
		sent := open[p]
		sort.Slice(rs, func(i, j int) bool { return rs[i].StartTime.Before(rs[j].StartTime) })
		sort.Slice(sent, func(i, j int) bool { return sent[i].Before(sent[j]) })
		// In creation order, each run takes any slot whose attempt came no later: a
		// later run can use every slot an earlier one could, so this greedy pairing
		// explains as many runs as any pairing would.
		free, next := 0, 0
		for _, r := range rs {
			for next < len(sent) && !sent[next].After(r.StartTime) {
				free++
				next++
			}
			if free > 0 {
				free--
				awaiting++
				continue
			}
			unexplained = append(unexplained, r)
		}
	}
	sort.Slice(unexplained, func(i, j int) bool { return unexplained[i].StartTime.Before(unexplained[j].StartTime) })
	return unexplained, awaiting
}

func TestUnexplainedRuns(t *testing.T) {
	const projA, projB = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
	projects := map[string]string{"a": projA, "b": projB}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	run := func(id, project string, at time.Time) simRun {
		return simRun{ID: id, ProjectID: project, StartTime: at}
	}
	trig := func(schedule string, last time.Time) state.Slot {
		return state.Slot{Key: schedule + "@x", Schedule: schedule, State: state.StateTriggering, Attempts: 1, LastAttempt: last}
	}
	cases := []struct {
		name     string
		slots    []state.Slot
		runs     []simRun
		want     []string // unexplained run ids
		awaiting int
	}{
		{name: "recorded", slots: []state.Slot{{Schedule: "a", State: state.StateCompleted, RunID: "r1"}}, runs: []simRun{run("r1", projA, t0)}},
		{name: "no slot, nothing triggering", runs: []simRun{run("r1", projA, t0)}, want: []string{"r1"}},
		{name: "interrupted trigger explains its run", slots: []state.Slot{trig("a", t0)}, runs: []simRun{run("r1", projA, t0.Add(time.Millisecond))}, awaiting: 1},
		{name: "run older than the attempt", slots: []state.Slot{trig("a", t0)}, runs: []simRun{run("r1", projA, t0.Add(-time.Millisecond))}, want: []string{"r1"}},
		{name: "another project's slot", slots: []state.Slot{trig("b", t0)}, runs: []simRun{run("r1", projA, t0)}, want: []string{"r1"}},
		{name: "one slot, two runs", slots: []state.Slot{trig("a", t0)}, runs: []simRun{run("r1", projA, t0), run("r2", projA, t0.Add(time.Second))},
			want: []string{"r2"}, awaiting: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, awaiting := unexplainedRuns(tc.slots, tc.runs, projects)
			var ids []string
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") || awaiting != tc.awaiting {
				t.Errorf("unexplained %v, awaiting %d; want %v, %d", ids, awaiting, tc.want, tc.awaiting)
			}
		})
	}
}
