package state

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runAdmitters starts n OS processes (this test binary in "admit" mode) admitting against
// cfg.Path at once and returns their results. Any helper error fails the test.
func runAdmitters(t *testing.T, n int, cfg admitConfig) []admitResult {
	t.Helper()
	arg, _ := json.Marshal(cfg)
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for i := range cmds {
		cmds[i] = helperCmd(t, "admit", string(arg))
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

func rate(res []admitResult) (calls, admitted float64) {
	var c, a int
	var longest time.Duration
	for _, r := range res {
		c, a = c+r.Calls, a+r.Admitted
		longest = max(longest, r.Elapsed)
	}
	s := longest.Seconds()
	return float64(c) / s, float64(a) / s
}

// TestTwoProcessesShareOneBudget: two OS processes admit as fast as they can against one
// database under tight rules. Neither gets SQLITE_BUSY, and the union of their ledger
// rows never breaks a rule in any window (brute force over every window start).
func TestTwoProcessesShareOneBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	ctx := context.Background()
	db := openT(t)
	rules := []rule{{Limit: 20, Per: time.Second}, {Limit: 50, Per: 3 * time.Second}, {Limit: 6, Per: 100 * time.Millisecond}}
	res := runAdmitters(t, 2, admitConfig{Path: db.Path(), Rules: rules, Duration: 3500 * time.Millisecond,
		MaxCalls: 200000, Since: 10 * time.Second})
	as, err := db.Attempts(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Both processes must have been calling Admit against each other for the check to
	// mean anything; which of them wins the admissions is up to the OS scheduler and
	// SQLite's busy handler (on a loaded machine one process can win nearly all of them,
	// and that is no fault: the union below is what must hold).
	total := 0
	for _, r := range res {
		if r.Calls < 10 {
			t.Errorf("process %d made %d Admit calls: not a real race", r.PID, r.Calls)
		}
		total += r.Admitted
	}
	if len(as) != total {
		t.Errorf("ledger has %d rows, processes admitted %d", len(as), total)
	}
	for _, v := range violations(as, rules) {
		t.Error(v)
	}
	// 3.5s of 20/1s and 50/3s admits at most ~70; the fast rule makes them race at every window edge.
	if total < 50 {
		t.Errorf("only %d admissions in 3.5s", total)
	}
	calls, _ := rate(res)
	t.Logf("tight rules: %d + %d admitted, %d + %d Admit calls (%.0f transactions/s across both)",
		res[0].Admitted, res[1].Admitted, res[0].Calls, res[1].Calls, calls)
}

// TestAdmissionThroughput measures admissions per second with one and with two OS
// processes under a rule that never refuses (each admission is a BEGIN IMMEDIATE
// transaction plus a Complete), and checks the rows against that rule too.
func TestAdmissionThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	ctx := context.Background()
	rules := []rule{{Limit: 1 << 30, Per: time.Second}}
	for _, n := range []int{1, 2} {
		db := openT(t)
		res := runAdmitters(t, n, admitConfig{Path: db.Path(), Rules: rules, Duration: 2 * time.Second,
			MaxCalls: 200000, Since: time.Second})
		_, admitted := rate(res)
		as, _ := db.Attempts(ctx, time.Time{})
		per := make([]string, len(res))
		sum := 0
		for i, r := range res {
			per[i] = fmt.Sprint(r.Admitted)
			sum += r.Admitted
		}
		if len(as) != sum {
			t.Errorf("%d processes: ledger has %d rows, processes admitted %d", n, len(as), sum)
		}
		t.Logf("%d process(es): %.0f admissions/s (admitted %s in ~2s)", n, admitted, strings.Join(per, " + "))
	}
}

// BenchmarkAdmit: one admission (load the last second of attempts, decide, insert,
// commit) followed by its Complete, on a real file.
func BenchmarkAdmit(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/hexcron.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rules := []rule{{Limit: 1 << 30, Per: time.Second}}
	for b.Loop() {
		now := time.Now().Truncate(time.Millisecond)
		id, _, err := db.Admit(ctx, Holder{}, now, now.Add(-time.Second), "", slidingDecide(now, rules))
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Complete(ctx, id, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestViolationsFindsABreach: the brute-force checker itself can fail.
func TestViolationsFindsABreach(t *testing.T) {
	at := func(ms int) Attempt { return Attempt{Sent: t0.Add(time.Duration(ms) * time.Millisecond)} }
	rules := []rule{{Limit: 2, Per: time.Second}}
	if v := violations([]Attempt{at(0), at(999), at(1000), at(1999)}, rules); len(v) != 0 {
		t.Errorf("legal set reported: %v", v)
	}
	if v := violations([]Attempt{at(0), at(500), at(999)}, rules); len(v) != 1 {
		t.Errorf("3 in [0, 1s) reported %d violations, want 1", len(v))
	}
}
