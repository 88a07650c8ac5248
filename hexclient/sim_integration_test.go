package hexclient_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

// TestAgainstHexsimNoDoubleTrigger is a first end-to-end check against the fake Hex:
// many slots of one project, triggered at once under injected faults, produce
// exactly one run each, each handed to one slot, and no 429 that was not injected.
func TestAgainstHexsimNoDoubleTrigger(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		faults map[hexsim.Fault]float64
	}{
		{"5xx and drop after create at 30% each", 500, map[hexsim.Fault]float64{hexsim.Fault5xxAfterCreate: 0.3, hexsim.FaultDrop: 0.3}},
		{"every fault", 300, map[hexsim.Fault]float64{
			hexsim.Fault5xxAfterCreate: 0.2, hexsim.FaultDrop: 0.2, hexsim.Fault5xxBeforeCreate: 0.05,
			hexsim.FaultKernelCap: 0.05, hexsim.FaultTooMany: 0.05, hexsim.FaultDelay: 0.05, hexsim.FaultConflict: 0.05}},
	} {
		t.Run(tc.name, func(t *testing.T) { testAgainstHexsim(t, tc.n, tc.faults) })
	}
}

func testAgainstHexsim(t *testing.T, n int, faults map[hexsim.Fault]float64) {
	synctest.Test(t, func(t *testing.T) {
		sim := hexsim.New(hexsim.Config{Seed: 1, Faults: hexsim.Faults{Probabilities: faults}})
		pn := hexsim.NewPipeNet()
		stop := pn.Serve(sim)
		defer stop()
		c, err := hexclient.New(hexclient.Config{BaseURL: "http://127.0.0.1/api/v1", Token: hexclient.StaticToken("hxtp_abc"),
			HTTPClient: &http.Client{Transport: pn.Transport()}, Clock: clock.System{}, Rand: rand.New(rand.NewPCG(1, 1))})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		handed := map[string]string{}
		claimed := func(id string) bool { mu.Lock(); defer mu.Unlock(); _, ok := handed[id]; return ok }
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Go(func() {
				slot := fmt.Sprintf("s@%d", i)
				got, err := c.Trigger(context.Background(), hexclient.TriggerRequest{Slot: slot, ProjectID: "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c",
					Deadline: start.Add(48 * time.Hour), Claimed: claimed})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if s, ok := handed[got.RunID]; ok {
					t.Errorf("run %s handed to %s and %s", got.RunID, s, slot)
				}
				handed[got.RunID] = slot
			})
		}
		wg.Wait()
		n429, posts := 0, 0
		for _, r := range sim.Requests() {
			if r.Op == "RunProject" {
				posts++
				if r.Status == http.StatusTooManyRequests && r.Fault == "" {
					n429++
				}
			}
		}
		if runs := len(sim.Runs()); runs != n || len(handed) != n {
			t.Fatalf("hexsim holds %d runs, %d handed out; want %d and %d", runs, len(handed), n, n)
		}
		if n429 != 0 {
			t.Fatalf("%d real (not injected) 429s", n429)
		}
		t.Logf("%d slots, %d RunProject requests, %v of virtual time", n, posts, time.Since(start))
	})
}
