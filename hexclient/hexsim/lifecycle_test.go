package hexsim

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

func TestLifecycle(t *testing.T) {
	type step struct {
		at     time.Duration // since the trigger
		status string
	}
	tests := []struct {
		outcome Outcome
		steps   []step
	}{
		{OutcomeCompleted, []step{{0, "PENDING"}, {9 * time.Second, "PENDING"}, {10 * time.Second, "RUNNING"}, {69 * time.Second, "RUNNING"}, {70 * time.Second, "COMPLETED"}, {24 * time.Hour, "COMPLETED"}}},
		{OutcomeErrored, []step{{0, "PENDING"}, {10 * time.Second, "RUNNING"}, {70 * time.Second, "ERRORED"}}},
		{OutcomeKilled, []step{{0, "PENDING"}, {10 * time.Second, "RUNNING"}, {70 * time.Second, "KILLED"}}},
		{OutcomeNoKernel, []step{{0, "PENDING"}, {9 * time.Second, "PENDING"}, {10 * time.Second, "UNABLE_TO_ALLOCATE_KERNEL"}, {time.Hour, "UNABLE_TO_ALLOCATE_KERNEL"}}},
		{OutcomeStuck, []step{{0, "PENDING"}, {10 * time.Second, "RUNNING"}, {240 * time.Hour, "RUNNING"}}},
		{OutcomeUnknown, []step{{0, "QUEUED_FOR_GPU"}, {10 * time.Second, "RUNNING"}, {70 * time.Second, "COMPLETED"}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.outcome), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Runs: Lifecycle{Pending: 10 * time.Second, Running: time.Minute,
					Outcomes: map[Outcome]float64{tt.outcome: 1}}})
				start := time.Now()
				r, id := h.trigger(tokA, proj1)
				if r.status != http.StatusCreated {
					t.Fatalf("RunProject: %d %s", r.status, r.body)
				}
				for _, s := range tt.steps {
					sleepUntil(start.Add(s.at))
					if got := h.runStatus(tokA, proj1, id); got != s.status {
						t.Errorf("at +%v: status %q, want %q", s.at, got, s.status)
					}
				}
			})
		})
	}
}

func TestRunTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Runs: Lifecycle{Pending: 10 * time.Second, Running: time.Minute}})
		time.Sleep(1500 * time.Millisecond)
		start := time.Now()
		_, id := h.trigger(tokA, proj1)
		var st struct {
			Status             string
			StartTime, EndTime *string
			ElapsedTime        *float64
		}
		h.do("GET", "/projects/"+proj1+"/runs/"+id, tokA, nil).json(t, &st)
		if st.StartTime == nil || *st.StartTime != start.UTC().Format("2006-01-02T15:04:05.000Z") || st.EndTime != nil || st.ElapsedTime != nil {
			t.Fatalf("pending run: start %v end %v elapsed %v, want start %v and no end", st.StartTime, st.EndTime, st.ElapsedTime, start.UTC())
		}
		time.Sleep(2 * time.Minute)
		h.do("GET", "/projects/"+proj1+"/runs/"+id, tokA, nil).json(t, &st)
		wantEnd := start.Add(70 * time.Second).UTC().Format(time.RFC3339Nano)
		if st.Status != "COMPLETED" || st.EndTime == nil || st.ElapsedTime == nil {
			t.Fatalf("finished run: %+v", st)
		}
		end, err := time.Parse(time.RFC3339, *st.EndTime)
		if err != nil || end.Format(time.RFC3339Nano) != wantEnd || *st.ElapsedTime != 70000 {
			t.Fatalf("finished run: end %q (%v) elapsed %v, want end %s elapsed 70000", *st.EndTime, err, *st.ElapsedTime, wantEnd)
		}
	})
}

func TestCancelRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Runs: Lifecycle{Pending: time.Second, Running: time.Hour}})
		_, id := h.trigger(tokA, proj1)
		time.Sleep(5 * time.Second)
		r := h.do("DELETE", "/projects/"+proj1+"/runs/"+id, tokA, nil)
		if r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Fatalf("CancelRun: %d %q, want 204 and an empty body", r.status, r.body)
		}
		if got := h.runStatus(tokA, proj1, id); got != "KILLED" {
			t.Fatalf("after cancel: %s, want KILLED", got)
		}
		time.Sleep(2 * time.Hour)
		if got := h.runStatus(tokA, proj1, id); got != "KILLED" {
			t.Fatalf("long after cancel: %s, want KILLED", got)
		}
		run, _ := h.sim.Run(id)
		if !run.Cancelled || run.EndTime.IsZero() {
			t.Fatalf("Run snapshot: %+v", run)
		}
		// Cancelling a finished run changes nothing.
		_, id2 := h.trigger(tokA, proj1)
		time.Sleep(2 * time.Hour)
		if r := h.do("DELETE", "/projects/"+proj1+"/runs/"+id2, tokA, nil); r.status != http.StatusNoContent {
			t.Fatalf("cancel finished run: %d", r.status)
		}
		if got := h.runStatus(tokA, proj1, id2); got != "COMPLETED" {
			t.Fatalf("finished run after cancel: %s", got)
		}
		if r := h.do("DELETE", "/projects/"+proj1+"/runs/"+proj2, tokA, nil); r.status != http.StatusNotFound {
			t.Fatalf("cancel unknown run: %d", r.status)
		}
	})
}

// TestSeededDraws checks that jitter and outcomes come from the seed: the same seed
// gives the same runs, another seed other runs.
func TestSeededDraws(t *testing.T) {
	draw := func(seed int64) []Run {
		var runs []Run
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, Config{Seed: seed, Limits: Limits{Trigger: []Rule{}, AllCalls: []Rule{}},
				Runs: Lifecycle{Pending: time.Second, PendingJitter: 10 * time.Second, Running: time.Minute, RunningJitter: time.Minute,
					Outcomes: map[Outcome]float64{OutcomeCompleted: 1, OutcomeErrored: 1, OutcomeNoKernel: 1}}})
			for range 20 {
				h.trigger(tokA, proj1)
			}
			time.Sleep(5 * time.Minute)
			runs = h.sim.Runs()
		})
		return runs
	}
	a, b, c := draw(7), draw(7), draw(8)
	same := func(x, y []Run) bool {
		for i := range x {
			if x[i].ID != y[i].ID || x[i].Outcome != y[i].Outcome || !x[i].EndTime.Equal(y[i].EndTime) {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("same seed gave different runs")
	}
	if same(a, c) {
		t.Fatal("different seeds gave the same runs")
	}
	outcomes := map[Outcome]int{}
	ends := map[time.Time]bool{}
	for _, r := range a {
		outcomes[r.Outcome]++
		ends[r.EndTime] = true
		if r.Status != string(r.Outcome) {
			t.Errorf("run %s: status %s after 5 minutes, outcome %s", r.ID, r.Status, r.Outcome)
		}
	}
	if len(outcomes) != 3 || len(ends) < 15 {
		t.Fatalf("20 runs: outcomes %v, %d distinct end times: the mix or the jitter is not applied", outcomes, len(ends))
	}
}
