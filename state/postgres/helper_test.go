package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"hexcron/state"
	"hexcron/state/postgres"
	"hexcron/state/statetest"
)

// helperEnv selects a helper mode: the test binary re-executes itself to get more OS
// processes (the admission hammer).
const helperEnv = "HEXCRON_PG_HELPER"

type admitConfig struct {
	URL      string
	Rules    []statetest.Rule
	Duration time.Duration
	Since    time.Duration // how far back Admit loads attempts
}

type admitResult struct {
	PID      int
	Calls    int
	Admitted int
	Elapsed  time.Duration
}

func runHelper(mode, arg string) int {
	if mode != "admit" {
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	var cfg admitConfig
	if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res, err := admitLoop(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "admit helper:", err)
		return 1
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return 0
}

// admitLoop admits as fast as it can for cfg.Duration on the server's clock,
// completing each admitted attempt at once. Any error ends it.
func admitLoop(ctx context.Context, cfg admitConfig) (admitResult, error) {
	db, err := postgres.Open(ctx, cfg.URL, postgres.Options{})
	if err != nil {
		return admitResult{}, err
	}
	defer db.Close()
	res := admitResult{PID: os.Getpid()}
	start := time.Now()
	for time.Since(start) < cfg.Duration {
		now := time.Now()
		res.Calls++
		id, wait, err := db.Admit(ctx, state.Holder{}, now, now.Add(-cfg.Since), "", statetest.SlidingDecide(now, cfg.Rules))
		if err != nil {
			return res, fmt.Errorf("call %d: %w", res.Calls, err)
		}
		if wait > 0 {
			continue // spin: maximum contention on the budget's lock
		}
		res.Admitted++
		if err := db.Complete(ctx, id, time.Now()); err != nil {
			return res, fmt.Errorf("complete %d: %w", id, err)
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// runAdmitters starts n OS processes admitting against cfg.URL at once.
func runAdmitters(t *testing.T, n int, cfg admitConfig) []admitResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	arg, _ := json.Marshal(cfg)
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for i := range cmds {
		cmds[i] = exec.Command(exe, "-test.run=^$", string(arg))
		cmds[i].Env = append(os.Environ(), helperEnv+"=admit")
		cmds[i].Stderr = os.Stderr
		outs[i] = new(strings.Builder)
		cmds[i].Stdout = outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	var res []admitResult
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("admitter %d: %v (stderr above)", i, err)
		}
		var r admitResult
		if err := json.Unmarshal([]byte(outs[i].String()), &r); err != nil {
			t.Fatalf("admitter %d output %q: %v", i, outs[i], err)
		}
		res = append(res, r)
	}
	return res
}
