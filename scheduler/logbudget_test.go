package scheduler

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient/hexsim"
	"hexcron/state"
)

// maxInfoPerSlot is the journal's budget: lines at INFO or above per triggered slot.
const maxInfoPerSlot = 6

// checkLogBudget counts the lines at INFO or above of a daemon's text log and fails the
// test when they exceed maxInfoPerSlot per triggered slot (slots with a run), in total
// or for any one slot (the lines naming it). It returns the count and the busiest
// slots, for the report.
func checkLogBudget(t *testing.T, log string, slots []state.Slot) (lines, triggered int) {
	t.Helper()
	perSlot := map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, " level=INFO ") && !strings.Contains(l, " level=WARN ") && !strings.Contains(l, " level=ERROR ") {
			continue
		}
		lines++
		for _, f := range splitLogfmt(l) {
			if k, v, ok := strings.Cut(f, "="); ok && k == "slot" {
				perSlot[strings.Trim(v, `"`)]++
			}
		}
	}
	for _, s := range slots {
		if s.RunID != "" {
			triggered++
		}
	}
	if triggered == 0 {
		t.Fatal("no slot triggered: the log budget means nothing")
	}
	if lines > maxInfoPerSlot*triggered {
		t.Errorf("%d lines at INFO or above for %d triggered slots (%.1f a slot), budget %d a slot",
			lines, triggered, float64(lines)/float64(triggered), maxInfoPerSlot)
	}
	type kv struct {
		k string
		n int
	}
	var busy []kv
	for k, n := range perSlot {
		busy = append(busy, kv{k, n})
		if n > maxInfoPerSlot {
			t.Errorf("slot %s has %d lines at INFO or above, budget %d", k, n, maxInfoPerSlot)
		}
	}
	sort.Slice(busy, func(i, j int) bool { return busy[i].n > busy[j].n || busy[i].n == busy[j].n && busy[i].k < busy[j].k })
	var top []string
	for i := 0; i < len(busy) && i < 3; i++ {
		top = append(top, fmt.Sprintf("%s: %d", busy[i].k, busy[i].n))
	}
	t.Logf("log budget: %d lines at INFO or above for %d triggered slots (%.2f a slot, budget %d); busiest slots %s",
		lines, triggered, float64(lines)/float64(triggered), maxInfoPerSlot, strings.Join(top, ", "))
	return lines, triggered
}

// TestLogBudgetTenEveryTenSeconds: ten schedules firing every 10 s for two minutes (the
// run that wrote 14,000 lines before replans were summarised), with trigger caps that
// admit them and Hex's 60 calls a minute of every kind, keep the journal within the
// budget.
func TestLogBudgetTenEveryTenSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b strings.Builder
		b.WriteString("budget:\n  triggers:\n    - {limit: 70, per: 1m}\n    - {limit: 4000, per: 1h}\nschedules:\n")
		for i := range 10 {
			fmt.Fprintf(&b, "  - {name: s%02d, project: 22222222-2222-4222-8222-2222222222%02d, cron: \"*/10 * * * * *\", window: 1m, overlap: allow}\n", i, i)
		}
		env := newQueueEnv(t, b.String(), hexsim.Config{Seed: 3, Runs: hexsim.Lifecycle{Pending: time.Second, Running: 5 * time.Second},
			Limits: hexsim.Limits{Trigger: []hexsim.Rule{{Limit: 70, Per: time.Minute}, {Limit: 4000, Per: time.Hour}}}}, 0)
		env.start()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		env.stop()
		slots, err := env.db.History(t.Context(), state.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("HEXCRON_DUMP_LOG") != "" {
			os.WriteFile(os.Getenv("HEXCRON_DUMP_LOG"), []byte(env.log.String()), 0o600)
		}
		lines, triggered := checkLogBudget(t, env.log.String(), slots)
		if triggered < 30 {
			t.Errorf("only %d slots triggered in 2 minutes of 10 schedules every 10 s ", triggered)
		}
		t.Logf("%d lines at INFO or above in 2 minutes", lines)
	})
}
