package planner

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPlan7Days500Schedules plans a week of 500 schedules a data team might have
// (hourly refreshes, quarter-hourly syncs, nightly and weekday reports, some fanned
// out over three regions) under Hex's default caps with 10 reserved an hour. Far more
// than 50 an hour are asked for, so most of the work is deciding who waits.
func BenchmarkPlan7Days500Schedules(b *testing.B) {
	cfg := realisticConfig(b, 500, 1)
	in := Input{From: t0, Horizon: 7 * 24 * time.Hour}
	benchPlan(b, cfg, in)
}

// BenchmarkPlan100kFirings plans 100,000 firings (70 every-minute schedules for a
// day, 100,800 firings) under caps that fit them (100 per 62 s with the skew margin),
// so every firing is placed.
func BenchmarkPlan100kFirings(b *testing.B) {
	benchPlan(b, minuteConfig(b, 70, Budget{Triggers: []Rule{{Limit: 100, Per: time.Minute}, {Limit: 6000, Per: time.Hour}}}),
		Input{From: t0, Horizon: 24 * time.Hour})
}

// BenchmarkPlan100kFiringsOverloaded is the same under Hex's default caps: 100,800
// firings asked for, 1,440 can be placed.
func BenchmarkPlan100kFiringsOverloaded(b *testing.B) {
	benchPlan(b, minuteConfig(b, 70, Budget{Triggers: DefaultTriggers()}), Input{From: t0, Horizon: 24 * time.Hour})
}

func minuteConfig(b *testing.B, n int, budget Budget) *Config {
	budget.Skew, budget.MaxAttempt = defaultBudget().Skew, defaultBudget().MaxAttempt // admission's model, as loaded
	cfg := &Config{Location: time.UTC, Budget: budget}
	spec, err := parseCron("* * * * *")
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		cfg.Schedules = append(cfg.Schedules, Schedule{Name: fmt.Sprintf("m-%d", i), Location: time.UTC,
			Window: time.Duration(1+i%10) * time.Minute, Priority: i % 3, spec: spec})
	}
	return cfg
}

func benchPlan(b *testing.B, cfg *Config, in Input) {
	b.ReportAllocs()
	var res *Result
	for b.Loop() {
		res = Plan(cfg, in)
	}
	b.ReportMetric(float64(len(res.Firings)+len(res.Unplaced)), "firings")
	b.ReportMetric(float64(len(res.Unplaced)), "unplaced")
}
