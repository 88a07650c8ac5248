package hexclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

// TestReconcileEveryListOrder proves the reconcile against each listing order hexsim
// offers (Hex documents none): two projects with 160 older API runs each, ten slots of
// each project triggered at once (a matrix: the body names the slot), half the
// RunProject requests answering 500 after creating the run. Whatever the order: exactly
// one run per slot (no double run), every run Hex created is handed to the very slot
// whose request created it (no swap), and every 500 ends in an adoption.
func TestReconcileEveryListOrder(t *testing.T) {
	for _, order := range []hexsim.ListOrder{hexsim.ListNewestFirst, hexsim.ListOldestFirst, hexsim.ListUnordered} {
		t.Run("list order "+string(order), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newSimEnv(t, hexsim.Config{Seed: 3, ListOrder: order,
					Faults: hexsim.Faults{Probabilities: map[hexsim.Fault]float64{hexsim.Fault5xxAfterCreate: 0.5}}}, nil)
				projects := []string{projA, projB}
				for _, p := range projects {
					for range 160 {
						if _, err := e.sim.AddRun(p, hexsim.TriggerAPI); err != nil {
							t.Fatal(err)
						}
						time.Sleep(time.Second)
					}
				}
				time.Sleep(2 * time.Minute) // the older runs are well before any attempt
				start := time.Now()
				var mu sync.Mutex
				got := map[string]*hexclient.Triggered{}
				handed := map[string]string{}
				claimed := func(id string) bool { mu.Lock(); defer mu.Unlock(); _, ok := handed[id]; return ok }
				var wg sync.WaitGroup
				for _, p := range projects {
					for i := range 10 {
						slot := fmt.Sprintf("report@%s[shard=%d]", p[:8], i)
						wg.Go(func() {
							res, err := e.c.Trigger(context.Background(), hexclient.TriggerRequest{Slot: slot, ProjectID: p,
								Body:     hexclient.RunRequest{InputParams: map[string]any{"slot": slot}},
								Deadline: start.Add(time.Hour), Claimed: claimed})
							if err != nil {
								t.Errorf("%s: %v", slot, err)
								return
							}
							mu.Lock()
							defer mu.Unlock()
							if prev, dup := handed[res.RunID]; dup {
								t.Errorf("run %s handed to %s and %s", res.RunID, prev, slot)
							}
							handed[res.RunID] = slot
							got[slot] = res
						})
					}
				}
				wg.Wait()
				created, fivexx, adopted := 0, 0, 0
				for _, r := range e.posts() {
					if r.RunCreated != "" {
						created++
					}
					if r.Status == http.StatusInternalServerError {
						fivexx++
					}
				}
				for _, res := range got {
					if res.Adopted {
						adopted++
					}
				}
				if created != 20 || len(got) != 20 || len(handed) != 20 {
					t.Fatalf("%d runs created by RunProject, %d slots triggered, %d runs handed out: want 20 each (no double run)", created, len(got), len(handed))
				}
				if fivexx == 0 || adopted != fivexx {
					t.Fatalf("%d answers 500 after creating the run, %d adoptions: every one must be adopted", fivexx, adopted)
				}
				for _, r := range e.sim.Runs() {
					if r.User == "" {
						continue // the older runs
					}
					var slot string
					if err := json.Unmarshal(r.InputParams["slot"], &slot); err != nil {
						t.Fatal(err)
					}
					if handed[r.ID] != slot {
						t.Errorf("run %s was created for %s but handed to %q", r.ID, slot, handed[r.ID])
					}
				}
				t.Logf("%s: 20 slots, %d answered 500 and were adopted, %d listings, %v of virtual time",
					order, fivexx, len(e.ops("GetProjectRuns")), time.Since(start).Round(time.Second))
			})
		})
	}
}

// TestReconcileWindowShorterThanVisibility: a slot whose window is shorter than the
// visibility delay, its request answered 500 after Hex created the run, the project's
// 150 older runs listed oldest first: the run is adopted at the deadline, not given up.
func TestReconcileWindowShorterThanVisibility(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newSimEnv(t, hexsim.Config{ListOrder: hexsim.ListOldestFirst,
			Faults: hexsim.Faults{Next: []hexsim.Fault{hexsim.Fault5xxAfterCreate}}}, nil)
		for range 150 {
			e.sim.AddRun(projA, hexsim.TriggerAPI)
			time.Sleep(time.Second)
		}
		time.Sleep(2 * time.Minute)
		res, err := e.c.Trigger(context.Background(), hexclient.TriggerRequest{Slot: "s@1", ProjectID: projA,
			Deadline: time.Now().Add(5 * time.Second)})
		if err != nil || !res.Adopted {
			t.Fatalf("got %+v, %v; want the run adopted", res, err)
		}
		if p := e.posts(); len(p) != 1 || p[0].RunCreated != res.RunID {
			t.Fatalf("RunProject requests %+v", p)
		}
	})
}

// TestReconcileIncompleteListingIsUnknown: an unordered listing longer than the page
// bound cannot tell whether the attempt created a run: the trigger ends with an
// *UnresolvedError and never sends a second RunProject.
func TestReconcileIncompleteListingIsUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newSimEnv(t, hexsim.Config{ListOrder: hexsim.ListUnordered,
			Faults: hexsim.Faults{Next: []hexsim.Fault{hexsim.Fault5xxAfterCreate}}}, func(c *hexclient.Config) { c.ReconcilePages = 3 })
		for range 450 {
			e.sim.AddRun(projA, hexsim.TriggerAPI)
		}
		time.Sleep(2 * time.Minute)
		res, err := e.c.Trigger(context.Background(), hexclient.TriggerRequest{Slot: "s@1", ProjectID: projA,
			Deadline: time.Now().Add(time.Hour)})
		var ue *hexclient.UnresolvedError
		if res != nil || !errors.As(err, &ue) || !errors.Is(err, hexclient.ErrIncompleteListing) {
			t.Fatalf("got %+v, %v; want an *UnresolvedError from an incomplete listing", res, err)
		}
		if p := e.posts(); len(p) != 1 {
			t.Fatalf("%d RunProject requests, want 1 (never re-sent on a partial read)", len(p))
		}
	})
}
