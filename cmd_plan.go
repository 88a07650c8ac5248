package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"hexcron/planner"
)

// cmdPlan forecasts every hour's trigger cost and shows how the caps are met.
// Exit 0 when every firing fits, 3 when some cannot, 1 for an invalid config.
func cmdPlan(e *env, args []string) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	config := fs.String("config", "", "the schedules YAML file (required)")
	from := fs.String("from", "", "start of the forecast, RFC 3339 (default: now)")
	horizon := fs.Duration("horizon", 24*time.Hour, "length of the forecast")
	asJSON := fs.Bool("json", false, "print the plan as JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: hexcron plan --config FILE [--from RFC3339] [--horizon 24h] [--json]

Expands every schedule (and matrix value) over [from, from+horizon), places each
firing inside its window under the trigger caps, and prints per hour of the default
time zone: nominal and planned triggers, the cap, a bar, the peak in any 60 s and the
largest shift; then the firings that cannot fit, with reasons and the competing
schedules; then a one-line verdict. The plan does not count triggers already made
(the daemon does).

The horizon is at most 366 days, and a plan at most 200000 firings: a plan that would
hold more stops at the last whole day that fits, says so, and exits 1.

Exit codes: 0 everything fits, 3 some firing cannot be placed, 1 invalid config or a
plan cut short, 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *config == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "hexcron plan: --config FILE is required and takes no other arguments")
		fs.Usage()
		return exitUsage
	}
	if *horizon <= 0 || *horizon > planner.MaxHorizon {
		fmt.Fprintf(e.stderr, "hexcron plan: --horizon must be positive and at most %s (366 days) (got %s)\n", planner.MaxHorizon, *horizon)
		return exitUsage
	}
	start := time.Now().Truncate(time.Second)
	if *from != "" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			fmt.Fprintf(e.stderr, "hexcron plan: --from %q is not RFC 3339 (like 2026-11-30T00:00:00Z): %v\n", *from, err)
			return exitUsage
		}
		start = t
	}
	cfg, err := planner.LoadFile(*config)
	if err != nil {
		return reportConfigError(e, err)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	res := planner.Plan(cfg, planner.Input{From: start, Horizon: *horizon})
	if *asJSON {
		err = planner.WriteJSON(e.stdout, res)
	} else {
		err = planner.WriteTable(e.stdout, *config, res)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "hexcron plan: write: %v\n", err)
		return exitError
	}
	if res.Truncated {
		fmt.Fprintf(e.stderr, "hexcron plan: the plan stops after %s: the horizon holds more than %d firings; shorten --horizon\n",
			res.Horizon, planner.MaxFirings)
		return exitError
	}
	if len(res.Unplaced) > 0 {
		return exitUnplaced
	}
	return exitOK
}
