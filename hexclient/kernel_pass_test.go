package hexclient_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

// After a 503, several triggers wait out the kernel-cap hold. One freed kernel lets one
// of them through (the earliest deadline), not a herd that would each spend an attempt
// and get 503 again.
func TestKernelFreedLetsOneWaiterThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newSimEnv(t, hexsim.Config{Limits: hexsim.Limits{Kernels: 1},
			Runs: hexsim.Lifecycle{Running: 10 * time.Hour}}, nil)
		first, err := e.trigger("k@0", projA, hexclient.RunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			slot string
			res  *hexclient.Triggered
			err  error
		}
		results := make(chan result, 3)
		deadlines := map[string]time.Duration{"k@1": 3 * time.Hour, "k@2": 2 * time.Hour, "k@3": 4 * time.Hour}
		for slot, d := range deadlines {
			go func() {
				res, err := e.c.Trigger(ctx, hexclient.TriggerRequest{Slot: slot, ProjectID: projA, Deadline: e.t0.Add(d)})
				results <- result{slot, res, err}
			}()
		}
		time.Sleep(2 * time.Second) // all three have met the cap and wait out the hold
		synctest.Wait()
		held := len(e.posts())
		if err := e.c.CancelRun(ctx, projA, first.RunID); err != nil {
			t.Fatal(err)
		}
		freed := time.Now()
		e.c.KernelFreed()
		time.Sleep(time.Second)
		synctest.Wait()

		var after []hexsim.Request
		for _, p := range e.posts()[held:] {
			if !p.Time.Before(freed) {
				after = append(after, p)
			}
		}
		if len(after) != 1 || after[0].Status != http.StatusCreated {
			t.Fatalf("after one freed kernel: RunProject answers %v, want exactly one 201", statusesOf(after))
		}
		select {
		case r := <-results:
			if r.slot != "k@2" || r.err != nil {
				t.Fatalf("%s went first (err %v), want k@2, the earliest deadline", r.slot, r.err)
			}
		default:
			t.Fatal("no trigger went through after the kernel was freed")
		}
		cancel()
		for range 2 {
			if r := <-results; r.err == nil {
				t.Errorf("%s triggered while the only kernel was taken", r.slot)
			}
		}
	})
}
