package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"hexcron/budget"
	"hexcron/planner"
	"hexcron/scheduler"
)

// cmdPlan forecasts every hour's trigger cost and shows how the caps are met.
// Exit 0 when every firing fits, 3 when some cannot, 1 for an invalid config.
func cmdPlan(e *env, args []string) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	config := fs.String("config", "", "the schedules YAML file (required)")
	from := fs.String("from", "", "start of the forecast, RFC 3339 (default: now)")
	horizon := fs.Duration("horizon", 24*time.Hour, "length of the forecast")
	asJSON := fs.Bool("json", false, "print the plan as JSON instead of a table (every firing)")
	verbose := fs.Bool("verbose", false, "list every warning and every firing that cannot be placed")
	dbPath := fs.String("db", "", "count the trigger attempts already in this database's ledger: a SQLite file or a postgres:// URL (opened read-only; it must exist)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: hexcron plan --config FILE [--from RFC3339] [--horizon 24h] [--db FILE|URL] [--json] [--verbose]

Expands every schedule (and matrix value) over [from, from+horizon) and places each
firing inside its window where the trigger budget admits it: the same rules, reserves,
min_spacing and skew margin as the daemon's admission (a trigger counts in its rules'
windows until 2s after Hex answers). With --db, the attempts already in that
database's ledger (the daemon's, hexcron trigger's) count too, those still in flight
until they can no longer be, and so do the trigger gateway's requests queued there
(planned as the daemon plans them: by their client's priority, until their deadline);
without it the ledger is taken as empty.

The horizon is at most 366 days, and a plan at most 200000 firings: a plan that would
hold more stops at the last whole day that fits, says so, and exits 1.

Prints per hour of the default time zone: nominal and planned triggers, the cap, a
bar, the peak in any 60 s and the largest shift; then, per schedule, the firings that
cannot fit (how many, the first, why, the competing schedules; at most 50 lines,
--verbose lists every firing); then a one-line verdict. A warning more than three
schedules share is one line with the count (--verbose prints each).

Exit codes: 0 everything fits, 3 some firing cannot be placed, 1 invalid config,
unreadable database or a plan cut short, 2 usage.

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
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	start := now().Truncate(time.Second)
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
		return printConfigError(e, err, *verbose)
	}
	printWarnings(e, cfg.Warnings, *verbose)
	var past []budget.Attempt
	var queued []planner.Firing
	if *dbPath != "" {
		if past, queued, err = ledgerAttempts(context.Background(), *dbPath, cfg, start); err != nil {
			return fail(e.stderr, "plan", err)
		}
	}
	res := planner.Plan(cfg, planner.Input{From: start, Horizon: *horizon, Past: past, Extra: queued})
	if *asJSON {
		err = planner.WriteJSON(e.stdout, res)
	} else {
		err = planner.WriteTable(e.stdout, *config, res, *verbose)
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

// ledgerAttempts reads, from the database at path (read-only, never created), the
// ledger's attempts that admission at from could still count, and the gateway
// requests queued there (their demand is planned like the daemon plans it).
func ledgerAttempts(ctx context.Context, path string, cfg *planner.Config, from time.Time) ([]budget.Attempt, []planner.Firing, error) {
	db, err := openDB(ctx, path, true)
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	rows, err := db.Attempts(ctx, cfg.Budget.Trigger().Since(from))
	if err != nil {
		return nil, nil, err
	}
	queued, err := scheduler.QueuedFirings(ctx, db, cfg, from)
	if err != nil {
		return nil, nil, err
	}
	return scheduler.BudgetAttempts(rows), queued, nil
}
