package planner

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"hexcron/budget"
)

// burst is n firings released at t0 with one deadline, each its own slot.
func burst(n int, window time.Duration) []Firing {
	fs := make([]Firing, n)
	for i := range fs {
		fs[i] = Firing{Schedule: fmt.Sprintf("s%02d", i), Nominal: t0, Release: t0, Deadline: t0.Add(window)}
		fs[i].Slot = SlotKey(fs[i].Schedule, t0, nil)
	}
	return fs
}

// greedyAdmissions counts the attempts admission lets through in [t0, t0+d) when a
// client sends one whenever budget.Wait allows, checking every whole second, each
// answered at once: the most any plan can place there.
func greedyAdmissions(b budget.Budget, d time.Duration) int {
	var atts []budget.Attempt
	for t := t0; t.Before(t0.Add(d)); t = t.Add(time.Second) {
		for b.Wait(t, atts) == 0 {
			atts = append(atts, budget.Attempt{Sent: t, Done: t})
		}
	}
	return len(atts)
}

// TestPlanKeepsAdmissionsSkew is the case: rules 3/2s and 8/10s. A plan that
// ignores the 2s skew margin places 8 firings per 10 s, which admission refuses; the
// plan places exactly as many as admission lets through, each where it is admitted.
func TestPlanKeepsAdmissionsSkew(t *testing.T) {
	cfg := &Config{Location: time.UTC, Budget: Budget{Triggers: []Rule{{Limit: 3, Per: 2 * time.Second}, {Limit: 8, Per: 10 * time.Second}},
		Skew: budget.DefaultSkew, MaxAttempt: budget.DefaultMaxAttempt}}
	in := Input{From: t0, Horizon: time.Minute, Extra: burst(200, time.Minute)}
	res := Plan(cfg, in)
	verify(t, cfg, in, res)
	if want := greedyAdmissions(cfg.Budget.Trigger(), time.Minute+time.Second); len(res.Firings) != want {
		t.Fatalf("placed %d in the minute, admission lets %d through", len(res.Firings), want)
	}
	inTen := 0
	for _, f := range res.Firings {
		if f.Planned.Before(t0.Add(10 * time.Second)) {
			inTen++
		}
	}
	if inTen != 8 { // 3 at 0s, 3 at 4s, 2 at 8s; the next at 12s
		t.Fatalf("%d placed in the first 10 s, want 8", inTen)
	}

	old := *cfg
	old.Budget.Skew = 0 // the model before: points, no margin
	oldRes := Plan(&old, in)
	var pts []time.Time
	for _, f := range oldRes.Firings {
		pts = append(pts, f.Planned)
	}
	if err := admitted(cfg.Budget.Trigger(), nil, pts); err == nil {
		t.Fatal("a plan without the skew margin is admitted: the test does not show the issue")
	} else {
		t.Logf("without the margin: %d placed, %v", len(oldRes.Firings), err)
	}
}

// TestPlanCountsLedgerAsAdmission: a past attempt occupies until its answer plus the
// skew, or, still in flight, until Sent+MaxAttempt+skew (the longest admission can
// count it), and planning starts after the latest send.
func TestPlanCountsLedgerAsAdmission(t *testing.T) {
	cfg := &Config{Location: time.UTC, Budget: Budget{Triggers: []Rule{{Limit: 1, Per: time.Minute}},
		Skew: 2 * time.Second, MaxAttempt: time.Minute}}
	sent := t0.Add(-10 * time.Second)
	for _, tc := range []struct {
		name string
		past budget.Attempt
		want time.Time
	}{
		{"answered", budget.Attempt{Sent: sent, Done: sent.Add(time.Second)}, sent.Add(time.Second + 2*time.Second + time.Minute)},
		{"slow answer", budget.Attempt{Sent: sent, Done: sent.Add(8500 * time.Millisecond)}, t0.Add(61 * time.Second)}, // ceil(-10s+8.5s+2s+60s): whole seconds
		{"in flight", budget.Attempt{Sent: sent}, sent.Add(time.Minute + 2*time.Second + time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{From: t0, Horizon: time.Hour, Past: []budget.Attempt{tc.past}, Extra: burst(1, 10*time.Minute)}
			res := Plan(cfg, in)
			verify(t, cfg, in, res)
			if len(res.Firings) != 1 || !res.Firings[0].Planned.Equal(tc.want) {
				t.Fatalf("planned %+v, want at %v", res.Firings, tc.want)
			}
			if res.Past != 1 {
				t.Fatalf("Result.Past = %d", res.Past)
			}
		})
	}
}

// TestKthLatest checks the two-list selection against sorting the union.
func TestKthLatest(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for range 5000 {
		a := make([]int64, r.IntN(6))
		b := make([]int64, r.IntN(6))
		for i := range a {
			a[i] = r.Int64N(20)
		}
		for i := range b {
			b[i] = r.Int64N(20)
		}
		slices.Sort(a)
		slices.Sort(b)
		off := r.Int64N(4)
		var all []int64
		all = append(all, a...)
		for _, v := range b {
			all = append(all, v+off)
		}
		slices.Sort(all)
		for k := 1; k <= len(all); k++ {
			if got, want := kthLatest(a, b, off, k), all[len(all)-k]; got != want {
				t.Fatalf("kthLatest(%v, %v+%d, %d) = %d, want %d", a, b, off, k, got, want)
			}
		}
	}
}

// TestValidateCountsSkew: a schedule whose rate only fits rules counted without the
// skew margin (one trigger a second under 2 per 2s; with the 2s margin 2 fit in every
// 4s) is refused, as the plan could not place it.
func TestValidateCountsSkew(t *testing.T) {
	yaml := `budget:
  triggers:
    - {limit: 2, per: 2s}
schedules:
  - {name: busy, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "* * * * * *", window: 1s}
`
	_, err := Parse("skew.yaml", []byte(yaml))
	if err == nil || !strings.Contains(err.Error(), "schedules[0].cron") || !strings.Contains(err.Error(), "budget.triggers[0]") {
		t.Fatalf("err = %v, want the cron refused under budget.triggers[0]", err)
	}
}

func TestGroupWarnings(t *testing.T) {
	w := func(line int, kind, sched string) Problem {
		return Problem{File: "f.yaml", Line: line, Field: "schedules[0].window", Message: "m" + sched, Kind: kind, Schedule: sched}
	}
	for _, tc := range []struct {
		name    string
		in      []Problem
		want    []string
		grouped bool
	}{
		{"none", nil, nil, false},
		{"three of a kind stay apart", []Problem{w(1, "k", "a"), w(2, "k", "b"), w(3, "k", "c")},
			[]string{"f.yaml:1: schedules[0].window: ma", "f.yaml:2: schedules[0].window: mb", "f.yaml:3: schedules[0].window: mc"}, false},
		{"four of a kind are one line, in place", []Problem{w(1, "", "x"), w(2, "k", "a"), w(3, "k", "b"), w(4, "j", "y"), w(5, "k", "c"), w(6, "k", "d")},
			[]string{"f.yaml:1: schedules[0].window: mx", "f.yaml: 4 schedules: k (a at line 2, b at line 3, c at line 5 and 1 more)", "f.yaml:4: schedules[0].window: my"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, grouped := GroupWarnings(tc.in)
			if !slices.Equal(got, tc.want) || grouped != tc.grouped {
				t.Fatalf("got %q %v\nwant %q %v", got, grouped, tc.want, tc.grouped)
			}
		})
	}
}
