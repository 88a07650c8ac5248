package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"hexcron/internal/pgtest"
	"hexcron/state/postgres"
	"hexcron/state/statetest"
)

// TestTwoProcessesHammer: two OS processes admit as fast as they can against one
// PostgreSQL database, on the server's clock, under tight rules. Neither meets an error
// (no deadlock, no serialisation failure surfaces), and the union of their ledger rows
// never breaks a rule in any window (brute force over every window start).
func TestTwoProcessesHammer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	url := pgtest.NewURL(t)
	db := open(t, url, postgres.Options{})
	rules := []statetest.Rule{{Limit: 20, Per: time.Second}, {Limit: 50, Per: 3 * time.Second}, {Limit: 6, Per: 100 * time.Millisecond}}
	res := runAdmitters(t, 2, admitConfig{URL: url, Rules: rules, Duration: 3500 * time.Millisecond, Since: 10 * time.Second})
	as, err := db.Attempts(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, r := range res {
		if r.Admitted == 0 {
			t.Errorf("process %d admitted nothing (%d calls): not a real race", r.PID, r.Calls)
		}
		total += r.Admitted
	}
	if len(as) != total {
		t.Errorf("ledger has %d rows, processes admitted %d", len(as), total)
	}
	for _, v := range statetest.Violations(as, rules) {
		t.Error(v)
	}
	if total < 50 {
		t.Errorf("only %d admissions in 3.5s", total)
	}
	t.Logf("tight rules: %d + %d admitted, %d + %d Admit calls", res[0].Admitted, res[1].Admitted, res[0].Calls, res[1].Calls)
}

// TestAdmissionThroughput measures admissions per second on PostgreSQL with 1, 2 and 4
// OS processes under a rule that never refuses (each admission is one transaction
// holding the budget's advisory lock, plus a Complete), and checks the rows against
// that rule too. docs/performance.md quotes it.
func TestAdmissionThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	rules := []statetest.Rule{{Limit: 1 << 30, Per: time.Second}}
	for _, n := range []int{1, 2, 4} {
		url := pgtest.NewURL(t)
		db := open(t, url, postgres.Options{})
		res := runAdmitters(t, n, admitConfig{URL: url, Rules: rules, Duration: 2 * time.Second, Since: time.Second})
		as, _ := db.Attempts(context.Background(), time.Time{})
		per := make([]string, len(res))
		sum := 0
		var longest time.Duration
		for i, r := range res {
			per[i] = fmt.Sprint(r.Admitted)
			sum += r.Admitted
			longest = max(longest, r.Elapsed)
		}
		if len(as) != sum {
			t.Errorf("%d processes: ledger has %d rows, processes admitted %d", n, len(as), sum)
		}
		t.Logf("%d process(es): %.0f admissions/s (admitted %s in ~2s)", n, float64(sum)/longest.Seconds(), strings.Join(per, " + "))
	}
}
