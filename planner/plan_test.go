package planner

import (
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"hexcron/budget"
)

var t0 = utc("2026-11-30T00:00:00Z")

// verify checks every promise of a plan by brute force, independently of the planner:
// among them that admission (budget.Budget.Wait) admits every planned firing at its
// instant.
func verify(t *testing.T, cfg *Config, in Input, res *Result) {
	t.Helper()
	want := Expand(cfg, in)
	if got := len(res.Firings) + len(res.Unplaced); got != len(want) {
		t.Fatalf("%d placed + %d unplaced != %d firings", len(res.Firings), len(res.Unplaced), len(want))
	}
	seen := map[string]bool{}
	var pts []time.Time
	for _, f := range res.Firings {
		if seen[f.Slot] {
			t.Fatalf("slot %s placed twice", f.Slot)
		}
		seen[f.Slot] = true
		if f.Planned.Nanosecond() != 0 {
			t.Fatalf("%s planned at %s: not a whole second", f.Slot, f.Planned)
		}
		if f.Planned.Before(f.Release) || f.Planned.After(f.Deadline) || f.Planned.Before(f.Nominal) {
			t.Fatalf("%s planned at %s outside [%s, %s]", f.Slot, f.Planned, f.Release, f.Deadline)
		}
		pts = append(pts, f.Planned)
	}
	if err := admitted(cfg.Budget.Trigger(), in.Past, pts); err != nil {
		t.Fatal(err)
	}
	for _, u := range res.Unplaced {
		if seen[u.Slot] {
			t.Fatalf("slot %s both placed and unplaced", u.Slot)
		}
		seen[u.Slot] = true
		if u.Reason == "" {
			t.Fatalf("%s unplaced without a reason", u.Slot)
		}
		for _, f := range res.Firings {
			if f.Priority < u.Priority && !f.Planned.Before(u.Release) && !f.Planned.After(u.Deadline) {
				t.Fatalf("%s (priority %d) unplaced while %s (priority %d) holds %s in its window",
					u.Slot, u.Priority, f.Slot, f.Priority, f.Planned)
			}
		}
	}
}

// admitted replays the plan against admission itself: at each planned instant, in
// order, b.Wait must be 0 given the past attempts and the firings planned before it.
// Past attempts in flight never answer (the worst case: their end is the latest any
// admission sees); planned firings are answered at once (a Hex that answers every
// request at once), so they occupy [planned, planned+skew].
func admitted(b budget.Budget, past []budget.Attempt, planned []time.Time) error {
	planned = slices.Clone(planned)
	slices.SortFunc(planned, time.Time.Compare)
	atts := slices.Clone(past)
	slices.SortFunc(atts, func(x, y budget.Attempt) int { return x.Sent.Compare(y.Sent) })
	lo := 0
	for _, t := range planned {
		for lo < len(atts) && atts[lo].Sent.Before(b.Since(t)) {
			lo++
		}
		if w := b.Wait(t, atts[lo:]); w > 0 {
			return fmt.Errorf("a trigger planned at %s is not admitted there: admission waits %s more (rules %v, min_spacing %s, skew %s)",
				t.UTC().Format(time.RFC3339), w, b.Rules, b.MinSpacing, b.Skew)
		}
		atts = append(atts, budget.Attempt{Sent: t, Done: t})
	}
	return nil
}

// randomInstance is a small random problem given as Extra firings.
func randomInstance(r *rand.Rand) (*Config, Input) {
	cfg := &Config{Location: time.UTC}
	nRules := 1 + r.IntN(2)
	for range nRules {
		limit := 1 + r.IntN(3)
		cfg.Budget.Triggers = append(cfg.Budget.Triggers, Rule{Limit: limit + r.IntN(2), Per: time.Duration(1+r.IntN(5)) * time.Second})
		cfg.Budget.Triggers[len(cfg.Budget.Triggers)-1].Reserve = cfg.Budget.Triggers[len(cfg.Budget.Triggers)-1].Limit - limit
	}
	if r.IntN(3) == 0 {
		cfg.Budget.MinSpacing = time.Duration(1+r.IntN(2)) * time.Second
	}
	cfg.Budget.Skew = time.Duration(r.IntN(3)) * time.Second
	cfg.Budget.MaxAttempt = time.Duration(2+r.IntN(4)) * time.Second
	in := Input{From: t0, Horizon: time.Minute}
	for i := range r.IntN(3) {
		sent := t0.Add(-time.Duration(1+i+r.IntN(4))*time.Second - time.Duration(r.IntN(3))*100*time.Millisecond)
		a := budget.Attempt{Sent: sent} // in flight
		if r.IntN(3) > 0 {
			a.Done = sent.Add(time.Duration(r.IntN(1500)) * time.Millisecond)
		}
		if admitted(cfg.Budget.Trigger(), in.Past, []time.Time{sent}) == nil {
			in.Past = append(in.Past, a) // the ledger itself obeys the caps
		}
	}
	n := 1 + r.IntN(6)
	for i := range n {
		nom := t0.Add(time.Duration(r.IntN(6)) * time.Second)
		f := Firing{Schedule: fmt.Sprintf("s%d", r.IntN(3)), Nominal: nom, Priority: r.IntN(3),
			Release: nom, Deadline: nom.Add(time.Duration(r.IntN(4)) * time.Second)}
		f.Slot = SlotKey(f.Schedule, nom, map[string]string{"i": fmt.Sprint(i)})
		in.Extra = append(in.Extra, f)
	}
	return cfg, in
}

// exhaustive returns the largest number of firings that can be placed together.
func exhaustive(cfg *Config, in Input) int {
	fs := in.Extra
	best := 0
	var times []time.Time
	var rec func(i, placed int)
	rec = func(i, placed int) {
		if placed+len(fs)-i <= best {
			return
		}
		if i == len(fs) {
			if admitted(cfg.Budget.Trigger(), in.Past, times) == nil {
				best = placed
			}
			return
		}
		for t := fs[i].Release; !t.After(fs[i].Deadline); t = t.Add(time.Second) {
			times = append(times, t)
			rec(i+1, placed+1)
			times = times[:len(times)-1]
		}
		rec(i+1, placed)
	}
	rec(0, 0)
	return best
}

func TestPlanFindsPlacementWheneverOneExists(t *testing.T) {
	seed, count := uint64(7), 3000
	if v, err := strconv.Atoi(os.Getenv("PLANNER_STRESS")); err == nil {
		seed, count = uint64(v), 100_000 // PLANNER_STRESS=<seed> for a long run
	}
	r := rand.New(rand.NewPCG(seed, 11))
	feasible := 0
	for i := range count {
		cfg, in := randomInstance(r)
		res := Plan(cfg, in)
		verify(t, cfg, in, res)
		if best := exhaustive(cfg, in); best == len(in.Extra) {
			feasible++
			if len(res.Unplaced) > 0 {
				t.Fatalf("instance %d: a placement exists but %d unplaced: %+v\nrules %+v spacing %s past %v firings %+v",
					i, len(res.Unplaced), res.Unplaced, cfg.Budget.Triggers, cfg.Budget.MinSpacing, in.Past, in.Extra)
			}
		} else if len(res.Firings) > best {
			t.Fatalf("instance %d: placed %d but exhaustive search says at most %d", i, len(res.Firings), best)
		}
	}
	if feasible < count/6 || feasible > count*29/30 {
		t.Fatalf("generator is lopsided: %d of %d feasible", feasible, count)
	}
}

func TestPlanDeterministic(t *testing.T) {
	cfg := realisticConfig(t, 200, 3)
	in := Input{From: t0, Horizon: 48 * time.Hour, Past: []budget.Attempt{
		{Sent: t0.Add(-30 * time.Second)}, {Sent: t0.Add(-10 * time.Minute), Done: t0.Add(-10*time.Minute + 300*time.Millisecond)}}}
	a := Plan(cfg, in)
	verify(t, cfg, in, a)
	rev := *cfg
	rev.Schedules = slices.Clone(cfg.Schedules)
	slices.Reverse(rev.Schedules)
	b := Plan(&rev, in)
	if !reflect.DeepEqual(a.Firings, b.Firings) || !reflect.DeepEqual(a.Unplaced, b.Unplaced) || !reflect.DeepEqual(a.Hours, b.Hours) {
		t.Fatal("same input in another order gave another plan")
	}
	if len(a.Unplaced) == 0 {
		t.Fatal("want an overloaded instance to exercise unplaced firings")
	}
}

func TestPlanPriorityDecidesWhoWaits(t *testing.T) {
	cfg := &Config{Location: time.UTC, Budget: Budget{Triggers: []Rule{{Limit: 1, Per: time.Minute}}}}
	in := Input{From: t0, Horizon: time.Hour}
	// Low priority, earlier deadline: EDF alone would give it the only instant.
	low := Firing{Schedule: "low", Nominal: t0, Release: t0, Deadline: t0.Add(10 * time.Second), Priority: 0}
	high := Firing{Schedule: "high", Nominal: t0, Release: t0, Deadline: t0.Add(20 * time.Second), Priority: 5}
	low.Slot, high.Slot = SlotKey("low", t0, nil), SlotKey("high", t0, nil)
	in.Extra = []Firing{low, high}
	res := Plan(cfg, in)
	verify(t, cfg, in, res)
	if len(res.Firings) != 1 || res.Firings[0].Schedule != "high" {
		t.Fatalf("placed %+v, want only high", res.Firings)
	}
	if len(res.Unplaced) != 1 || res.Unplaced[0].Schedule != "low" || !slices.Equal(res.Unplaced[0].Competing, []string{"high"}) {
		t.Fatalf("unplaced %+v", res.Unplaced)
	}
	t.Log(res.Unplaced[0].Reason)
}

func TestPlanSpreadsUnderCaps(t *testing.T) {
	cfg := realisticConfig(t, 40, 1)
	for i := range cfg.Schedules {
		cfg.Schedules[i].spec, _ = parseCron("0 * * * *")
		cfg.Schedules[i].Window = 15 * time.Minute
		cfg.Schedules[i].Matrix = nil
	}
	cfg.Budget = Budget{Triggers: []Rule{{Limit: 20, Per: time.Minute}, {Limit: 60, Per: time.Hour, Reserve: 10}}, MinSpacing: 5 * time.Second}
	in := Input{From: t0, Horizon: 3 * time.Hour}
	res := Plan(cfg, in)
	verify(t, cfg, in, res)
	if len(res.Unplaced) != 0 {
		t.Fatalf("%d unplaced, first %s: %s", len(res.Unplaced), res.Unplaced[0].Slot, res.Unplaced[0].Reason)
	}
	if res.Hours[0].Nominal != 40 || res.Hours[0].Planned != 40 || res.Hours[0].Cap != 50 || res.Hours[0].PeakMinute != 12 {
		t.Fatalf("hour 0: %+v", res.Hours[0])
	}
	if got := res.Hours[0].LargestShift; got != 39*5*time.Second {
		t.Fatalf("largest shift %s", got)
	}
}

func TestPlanInputs(t *testing.T) {
	cfg := &Config{Location: time.UTC, Budget: Budget{Triggers: DefaultTriggers()},
		Schedules: []Schedule{{Name: "a", Window: 10 * time.Minute, Location: time.UTC}}}
	cfg.Schedules[0].spec, _ = parseCron("*/5 * * * *")
	from := t0.Add(2*time.Minute + 500*time.Millisecond)
	in := Input{From: from, Horizon: 10 * time.Minute, OpenWindows: true,
		Skip: func(slot string) bool { return slot == "a@2026-11-30T00:05:00Z" }}
	res := Plan(cfg, in)
	verify(t, cfg, in, res)
	var got []string
	for _, f := range res.Firings {
		got = append(got, f.Slot+" "+f.Planned.UTC().Format("15:04:05"))
	}
	// 23:55 is closed (deadline 00:05 is after From, so it is open!), 00:00 open, 00:05 skipped, 00:10 planned.
	want := []string{"a@2026-11-29T23:55:00Z 00:02:01", "a@2026-11-30T00:00:00Z 00:02:01", "a@2026-11-30T00:10:00Z 00:10:00"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// realisticConfig makes n schedules of a data team: hourly refreshes at :00 and :30,
// every 15 minutes, nightly and weekday reports, some fanned out over regions.
func realisticConfig(t testing.TB, n, seed uint64) *Config {
	r := rand.New(rand.NewPCG(seed, 99))
	crons := []string{"0 * * * *", "30 * * * *", "*/15 * * * *", "0 6 * * *", "30 7 * * 1-5", "0 */4 * * *",
		"15 2 * * *", "0 9 * * 1", "*/30 8-18 * * 1-5", "45 * * * *", "30 0 6 * * *", "@hourly", "@every 20m"}
	berlin := mustLoc(t, "Europe/Berlin")
	cfg := &Config{Location: berlin, Budget: Budget{Triggers: []Rule{{Limit: 20, Per: time.Minute}, {Limit: 60, Per: time.Hour, Reserve: 10}},
		Skew: budget.DefaultSkew, MaxAttempt: budget.DefaultMaxAttempt}}
	for i := range n {
		spec := crons[r.IntN(len(crons))]
		c, err := parseCron(spec)
		if err != nil {
			t.Fatal(err)
		}
		s := Schedule{Name: fmt.Sprintf("sched-%d", i), Cron: spec, Location: berlin, Window: time.Duration(5+r.IntN(40)) * time.Minute,
			Priority: r.IntN(3), spec: c}
		if r.IntN(5) == 0 {
			s.Matrix = map[string][]string{"region": {"emea", "amer", "apac"}}
		}
		cfg.Schedules = append(cfg.Schedules, s)
	}
	return cfg
}
