package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
)

const nextUsage = `Usage: hexcron next [--n 20] [--horizon 48h] [--db FILE|URL] [--config FILE] [--json]

The coming firings, soonest first, as the daemon plans them (like systemctl
list-timers): the planned instant, how long until it, the nominal (cron) instant, the
shift the planner gave it to fit the caps, and the schedule (with its matrix values).
The plan is the daemon's: from now, counting the trigger attempts already in the
database's ledger in every rule, leaving out slots already handled, with windows still
open planned too. A firing of a paused schedule is marked "paused: skipped"; firings
that cannot fit under the caps are counted at the end.

It opens the database read-only (safe while the daemon runs) and needs a config
(--config, or the default config file). With the live --db and a new --config it is
a dry run of a config change against the daemon's ledger; nothing is written.

--json prints one object (times RFC 3339 in UTC):
  {"now", "horizon", "firings": [{"schedule", "slot", "matrix", "nominal", "planned",
   "shift_seconds", "paused"}], "total" (firings planned in the horizon),
   "unplaced": [{"schedule", "slot", "nominal", "reason"}]}

Exit codes: 0 ok, 1 no config, invalid config or no database, 2 usage.

Flags:
`

// maxNextHorizon bounds next's --horizon, as run's.
const maxNextHorizon = 7 * 24 * time.Hour

func cmdNext(e *env, args []string) int {
	var dbFlag, configFlag string
	var asJSON bool
	n := 20
	horizon := statusHorizon
	fs := newFlagSet(e, "next", nextUsage)
	fs.StringVar(&dbFlag, "db", "", "database: a SQLite file, or a postgres:// URL (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db)")
	fs.StringVar(&configFlag, "config", "", "schedules file (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml)")
	fs.IntVar(&n, "n", n, "how many firings to list (0: every one in the horizon)")
	fs.DurationVar(&horizon, "horizon", horizon, "how far ahead to plan (at most 168h)")
	fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		fmt.Fprintf(e.stderr, "hexcron next: unexpected argument %q\n", pos[0])
		return exitUsage
	case n < 0:
		fmt.Fprintln(e.stderr, "hexcron next: --n must not be negative")
		return exitUsage
	case horizon <= 0 || horizon > maxNextHorizon:
		fmt.Fprintf(e.stderr, "hexcron next: --horizon must be positive and at most %s (got %s)\n", maxNextHorizon, horizon)
		return exitUsage
	}
	ctx := context.Background()
	conf, err := loadConfigFor(e, "next", configFlag)
	if err != nil {
		return fail(e.stderr, "next", err)
	}
	if conf == nil {
		return fail(e.stderr, "next", fmt.Errorf("no config: pass --config FILE (%s does not exist)", defaultConfigPath(e.getenv)))
	}
	db, err := openDB(ctx, dbTarget(dbFlag, conf, e.getenv), true)
	if err != nil {
		return fail(e.stderr, "next", err)
	}
	defer db.Close()
	now := e.now()
	res, err := scheduler.PlanAhead(ctx, db, conf, now, horizon)
	if err != nil {
		return fail(e.stderr, "next", err)
	}
	pauses, err := pausesByName(ctx, db, now)
	if err != nil {
		return fail(e.stderr, "next", err)
	}
	rep := nextReport{Now: now, Horizon: res.Horizon, Loc: conf.Location, Source: conf.File,
		Total: len(res.Firings), Unplaced: res.Unplaced, Truncated: res.Truncated}
	if rep.Loc == nil {
		rep.Loc = time.UTC
	}
	for _, f := range res.Firings {
		if n > 0 && len(rep.Firings) == n {
			break
		}
		p, ok := pauses[f.Schedule]
		rep.Firings = append(rep.Firings, nextFiring{Firing: f, Paused: ok && pausedAtFiring(p, f.Planned)})
	}
	if asJSON {
		err = writeNextJSON(e.stdout, rep)
	} else {
		writeNextTable(e.stdout, rep)
	}
	if err != nil {
		return fail(e.stderr, "next", err)
	}
	return exitOK
}

// nextReport is what next shows, in both forms.
type nextReport struct {
	Now       time.Time
	Horizon   time.Duration
	Loc       *time.Location
	Source    string
	Firings   []nextFiring // the first --n
	Total     int          // firings planned in the horizon
	Unplaced  []planner.Unplaced
	Truncated bool
}

type nextFiring struct {
	planner.Firing
	Paused bool // a pause in force at its planned instant: the daemon will skip it
}

func writeNextTable(w io.Writer, rep nextReport) {
	fmt.Fprintf(w, "hexcron next at %s (times in %s), schedules from %s\n\n", fmtTime(rep.Now, rep.Loc), rep.Loc, rep.Source)
	if len(rep.Firings) == 0 {
		fmt.Fprintf(w, "Nothing planned in the next %s.\n", planner.FormatDuration(rep.Horizon))
	} else {
		rows := [][]string{{"PLANNED", "LEFT", "NOMINAL", "SHIFT", "SCHEDULE", "NOTE"}}
		for _, f := range rep.Firings {
			shift, left, note := "-", "now", ""
			if s := f.Shift(); s > 0 {
				shift = "+" + planner.FormatDuration(s)
			}
			if d := f.Planned.Sub(rep.Now); d > 0 {
				left = fmtLeft(d)
			}
			if f.Nominal.Before(rep.Now) {
				note = "window open since " + fmtTimeNear(f.Nominal, rep.Now, rep.Loc)
			}
			if f.Paused {
				note = "paused: skipped"
			}
			rows = append(rows, []string{fmtCompact(f.Planned, rep.Now, rep.Loc), left,
				fmtTimeNear(f.Nominal, f.Planned, rep.Loc), shift, f.Schedule + state.MatrixSuffix(f.Matrix), note})
		}
		writeTable(w, rows, statusWidth, 4)
	}
	fmt.Fprintln(w)
	switch {
	case len(rep.Firings) < rep.Total:
		fmt.Fprintf(w, "%d of %d firings planned in the next %s (--n 0 lists every one).\n", len(rep.Firings), rep.Total, planner.FormatDuration(rep.Horizon))
	default:
		fmt.Fprintf(w, "%d firings planned in the next %s.\n", rep.Total, planner.FormatDuration(rep.Horizon))
	}
	if rep.Truncated {
		fmt.Fprintln(w, "The horizon held too many firings and was shortened to the whole days that fit.")
	}
	if len(rep.Unplaced) > 0 {
		fmt.Fprintf(w, "%d firings cannot fit under the caps (hexcron plan --db lists them and why).\n", len(rep.Unplaced))
	}
}

type nextJSON struct {
	Now      *string            `json:"now"`
	Horizon  string             `json:"horizon"`
	Firings  []nextFiringJSON   `json:"firings"`
	Total    int                `json:"total"`
	Unplaced []nextUnplacedJSON `json:"unplaced"`
}

type nextFiringJSON struct {
	Schedule     string            `json:"schedule"`
	Slot         string            `json:"slot"`
	Matrix       map[string]string `json:"matrix"`
	Nominal      *string           `json:"nominal"`
	Planned      *string           `json:"planned"`
	ShiftSeconds float64           `json:"shift_seconds"`
	Paused       bool              `json:"paused"`
}

type nextUnplacedJSON struct {
	Schedule string  `json:"schedule"`
	Slot     string  `json:"slot"`
	Nominal  *string `json:"nominal"`
	Reason   string  `json:"reason"`
}

func writeNextJSON(w io.Writer, rep nextReport) error {
	out := nextJSON{Now: jsonTime(rep.Now), Horizon: planner.FormatDuration(rep.Horizon), Firings: []nextFiringJSON{}, Total: rep.Total,
		Unplaced: []nextUnplacedJSON{}}
	for _, f := range rep.Firings {
		m := f.Matrix
		if m == nil {
			m = map[string]string{}
		}
		out.Firings = append(out.Firings, nextFiringJSON{Schedule: f.Schedule, Slot: f.Slot, Matrix: m,
			Nominal: jsonTime(f.Nominal), Planned: jsonTime(f.Planned), ShiftSeconds: f.Shift().Seconds(), Paused: f.Paused})
	}
	for _, u := range rep.Unplaced {
		out.Unplaced = append(out.Unplaced, nextUnplacedJSON{Schedule: u.Schedule, Slot: u.Slot, Nominal: jsonTime(u.Nominal), Reason: u.Reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
