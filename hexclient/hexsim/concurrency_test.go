package hexsim

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestConcurrentClients: many clients at once (run with -race); every run is created
// by exactly one request, no refused request created a run, and the limits held.
func TestConcurrentClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Limits: Limits{Window: WindowRolling},
			Faults: Faults{Delay: 5 * time.Second, Probabilities: map[Fault]float64{Fault5xxAfterCreate: 0.2, FaultDrop: 0.2, FaultDelay: 0.1}}})
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				tok := tokA
				if i%2 == 1 {
					tok = "hxtw_alice_ci_" + string(rune('a'+i))
				}
				for j := range 30 {
					time.Sleep(time.Duration(i*100+j*700) * time.Millisecond)
					if _, err := h.try("POST", "/projects/"+proj1+"/runs", tok, nil); err != nil {
						continue // dropped
					}
					h.try("GET", "/projects/"+proj1+"/runs?runTriggerFilter=API", tok, nil)
				}
			})
		}
		wg.Wait()
		reqs := h.sim.Requests()
		byRun := map[string]int{}
		var triggers []time.Time
		for _, rq := range reqs {
			if rq.RunCreated != "" {
				byRun[rq.RunCreated]++
				if rq.Status == http.StatusTooManyRequests || rq.Status == http.StatusServiceUnavailable {
					t.Errorf("a %d created run %s", rq.Status, rq.RunCreated)
				}
			}
			if rq.Op == "RunProject" && rq.Status != http.StatusTooManyRequests && rq.User == "user-"+hashToken(tokA)[7:] {
				triggers = append(triggers, rq.Time)
			}
		}
		runs := h.sim.Runs()
		if len(byRun) != len(runs) || len(runs) == 0 {
			t.Fatalf("%d runs, %d created by requests", len(runs), len(byRun))
		}
		for id, n := range byRun {
			if n != 1 {
				t.Fatalf("run %s created by %d requests", id, n)
			}
		}
		// tokA is its own user: its admitted triggers never exceed 20 in a rolling minute.
		for i := range triggers {
			n := 0
			for _, t2 := range triggers[i:] {
				if t2.Sub(triggers[i]) < time.Minute {
					n++
				}
			}
			if n > 20 {
				t.Fatalf("%d admitted triggers in the minute from %v", n, triggers[i])
			}
		}
	})
}
