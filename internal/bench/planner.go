package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"hexcron/planner"
)

// PlannerResult is the cost of one planner.Plan call.
type PlannerResult struct {
	// Firings is how many firings were asked for; Placed how many fit the caps.
	Firings, Placed int
	// Caps names the trigger budget: "fits" (caps that hold every firing) or "hex"
	// (Hex's 20/min and 60/h: most firings cannot be placed).
	Caps string
	// PerPlan is the time of one Plan call; BytesPerPlan and AllocsPerPlan its memory.
	PerPlan       time.Duration
	BytesPerPlan  int64
	AllocsPerPlan int64
}

// plannerSchedules is the number of every-minute schedules the planner experiment
// plans; the horizon sets the number of firings (schedules × minutes).
const plannerSchedules = 100

// PlannerConfig returns a config of 100 every-minute schedules (windows of 1 to 10
// minutes, three priorities) under the named caps ("fits" or "hex").
func PlannerConfig(caps string) (*planner.Config, error) {
	var b strings.Builder
	b.WriteString("budget:\n  triggers:\n")
	switch caps {
	case "fits":
		b.WriteString("    - {limit: 110, per: 1m}\n    - {limit: 6600, per: 1h}\n")
	case "hex":
		b.WriteString("    - {limit: 20, per: 1m}\n    - {limit: 60, per: 1h}\n")
	default:
		return nil, fmt.Errorf("bench: planner config: unknown caps %q", caps)
	}
	b.WriteString("defaults:\n  timezone: UTC\nschedules:\n")
	for i := range plannerSchedules {
		fmt.Fprintf(&b, "  - {name: m-%d, project: %08x-0000-4000-8000-000000000000, cron: \"* * * * *\", window: %dm, priority: %d}\n",
			i, i, 1+i%10, i%3)
	}
	cfg, err := planner.Parse("bench.yaml", []byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("bench: planner config: %w", err)
	}
	return cfg, nil
}

// plannerOnce plans once and checks the number of firings.
func plannerOnce(firings int, caps string) (*planner.Config, planner.Input, *planner.Result, error) {
	cfg, err := PlannerConfig(caps)
	if err != nil {
		return nil, planner.Input{}, nil, err
	}
	in := planner.Input{From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Horizon: time.Duration(firings/plannerSchedules) * time.Minute}
	res := planner.Plan(cfg, in)
	if got := len(res.Firings) + len(res.Unplaced); got != firings {
		return nil, in, nil, fmt.Errorf("bench: planner: %d firings planned, want %d", got, firings)
	}
	return cfg, in, res, nil
}

// Planner measures planner.Plan for the given number of firings (a multiple of 100)
// with testing.Benchmark.
func Planner(firings int, caps string) (PlannerResult, error) {
	cfg, in, res, err := plannerOnce(firings, caps)
	if err != nil {
		return PlannerResult{}, err
	}
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			planner.Plan(cfg, in)
		}
	})
	return PlannerResult{Firings: firings, Placed: len(res.Firings), Caps: caps,
		PerPlan: time.Duration(r.NsPerOp()), BytesPerPlan: r.AllocedBytesPerOp(), AllocsPerPlan: r.AllocsPerOp()}, nil
}
