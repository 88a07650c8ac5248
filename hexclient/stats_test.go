package hexclient_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

// TestStats: the snapshot the metrics read counts the calls in the read budget's
// current windows (a trigger in the all-calls window only), lets them age out after
// the rule's period plus the skew, and shows the auth pause from the refused call until
// a read with the fixed token succeeds.
func TestStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		cur := tokOld
		src := tokenFunc(func() (string, error) { mu.Lock(); defer mu.Unlock(); return cur, nil })
		e := newSimEnv(t, hexsim.Config{Tokens: []string{tokOld}}, func(c *hexclient.Config) {
			c.Token = src
			c.ReadLimits = hexclient.ReadLimits{
				All:    hexclient.Rule{Limit: 50, Per: time.Minute, Reserve: 5},
				Status: []hexclient.Rule{{Limit: 25, Per: time.Minute}},
			}
		})
		want := func(what string, w hexclient.Stats) {
			t.Helper()
			if got := e.c.Stats(); got != w {
				t.Fatalf("%s: Stats() = %+v, want %+v", what, got, w)
			}
		}
		want("at start", hexclient.Stats{ReadsLimit: 45, StatusLimit: 25})

		run, err := e.trigger("s@1", projA, hexclient.RunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := e.c.GetRunStatus(context.Background(), projA, run.RunID); err != nil {
				t.Fatal(err)
			}
		}
		want("after a trigger and 3 status reads", hexclient.Stats{ReadsUsed: 4, ReadsLimit: 45, StatusUsed: 3, StatusLimit: 25})

		time.Sleep(time.Minute + 3*time.Second) // the period plus the 2s skew
		want("a period later", hexclient.Stats{ReadsLimit: 45, StatusLimit: 25})

		e.sim.RotateToken(tokOld, tokNew)
		if _, err := e.c.GetRunStatus(context.Background(), projA, run.RunID); err == nil {
			t.Fatal("read with the revoked token succeeded")
		}
		want("after a 401", hexclient.Stats{AuthPaused: true, ReadsUsed: 1, ReadsLimit: 45, StatusUsed: 1, StatusLimit: 25})

		mu.Lock()
		cur = tokNew
		mu.Unlock()
		if _, err := e.c.GetRunStatus(context.Background(), projA, run.RunID); err != nil {
			t.Fatalf("read with the new token: %v", err)
		}
		want("after a read with the new token", hexclient.Stats{ReadsUsed: 2, ReadsLimit: 45, StatusUsed: 2, StatusLimit: 25})
	})
}
