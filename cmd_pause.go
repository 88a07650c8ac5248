package main

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"sort"
	"strings"
	"time"

	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
)

const pauseUsage = `Usage: hexcron pause NAME [--for D | --until T] [--reason TEXT] [--db FILE|URL] [--config FILE]

Pause schedule NAME without editing the config: the pause is stored in the database,
so it holds across reloads and restarts, and the running daemon applies it within
seconds (it reads the pauses every 5s and before each due firing; no reload). Each
firing of a paused schedule is recorded skipped, "paused since T by USER: REASON", and
counted in hexcron_skips_total{reason="paused"}; runs already going are left alone.
"hexcron status" lists the pauses; "hexcron resume NAME" ends one.

--for D or --until T ends the pause by itself (T is RFC 3339, or "YYYY-MM-DD HH:MM"
in the config's default time zone). Pausing a paused schedule replaces its pause.
USER is $SUDO_USER, else $USER. A manual "hexcron trigger NAME" still runs.

NAME must be a schedule of the config (--config, or the default config file when it
exists), or, without one, a schedule the database has slots of.

Exit codes: 0 paused, 1 unknown schedule or database error, 2 usage.

Flags:
`

const resumeUsage = `Usage: hexcron resume NAME [--db FILE|URL] [--config FILE]

End the pause of schedule NAME ("hexcron pause"): the running daemon fires it again
within seconds, from its next planned firing (firings skipped while it was paused are
not made up for). Resuming a schedule that is not paused says so and changes nothing.

Exit codes: 0 resumed or not paused, 1 unknown schedule or database error, 2 usage.

Flags:
`

// pauseStore is what pause and resume need of the database (*state.DB, *postgres.DB).
type pauseStore interface {
	SetPause(ctx context.Context, p state.Pause) error
	ClearPause(ctx context.Context, schedule string, now time.Time) (state.Pause, bool, error)
	Pauses(ctx context.Context, now time.Time) ([]state.Pause, error)
	LastRunPerSchedule(ctx context.Context) (map[string]state.Slot, error)
	NextPlanned(ctx context.Context, now time.Time) (map[string]state.Slot, error)
}

func cmdPause(e *env, args []string) int {
	var dbFlag, configFlag, untilFlag, reason string
	var forFlag time.Duration
	fs := newFlagSet(e, "pause", pauseUsage)
	fs.StringVar(&dbFlag, "db", "", "database: a SQLite file, or a postgres:// URL (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db)")
	fs.StringVar(&configFlag, "config", "", "schedules file to check NAME against (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml, when it exists)")
	fs.DurationVar(&forFlag, "for", 0, "end the pause after this long, e.g. 2h")
	fs.StringVar(&untilFlag, "until", "", "end the pause at this instant: RFC 3339, or \"YYYY-MM-DD HH:MM\" in the config's time zone")
	fs.StringVar(&reason, "reason", "", fmt.Sprintf("why, for status, the skipped slots and the log (at most %d bytes)", state.MaxPauseReason))
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	name, code, ok := oneName(e, "pause", pos)
	if !ok {
		return code
	}
	reason = strings.Join(strings.Fields(reason), " ")
	switch {
	case forFlag != 0 && untilFlag != "":
		fmt.Fprintln(e.stderr, "hexcron pause: give --for or --until, not both")
		return exitUsage
	case forFlag < 0:
		fmt.Fprintln(e.stderr, "hexcron pause: --for must be positive")
		return exitUsage
	case len(reason) > state.MaxPauseReason:
		fmt.Fprintf(e.stderr, "hexcron pause: --reason is %d bytes; at most %d\n", len(reason), state.MaxPauseReason)
		return exitUsage
	}
	ctx := context.Background()
	conf, err := loadConfigFor(e, "pause", configFlag)
	if err != nil {
		return fail(e.stderr, "pause", err)
	}
	loc := time.UTC
	if conf != nil && conf.Location != nil {
		loc = conf.Location
	}
	now := e.now()
	p := state.Pause{Schedule: name, Since: now.Truncate(time.Millisecond), By: pauseUser(e.getenv), Reason: reason}
	if forFlag > 0 {
		p.Until = p.Since.Add(forFlag)
	}
	if untilFlag != "" {
		if p.Until, err = parseInstant(untilFlag, loc); err != nil {
			fmt.Fprintf(e.stderr, "hexcron pause: --until: %v\n", err)
			return exitUsage
		}
		if !p.Until.After(now) {
			fmt.Fprintf(e.stderr, "hexcron pause: --until %s has passed\n", fmtClock(p.Until, now, loc))
			return exitUsage
		}
	}
	db, err := openDB(ctx, dbTarget(dbFlag, conf, e.getenv), false)
	if err != nil {
		return fail(e.stderr, "pause", err)
	}
	defer db.Close()
	if err := knownSchedule(ctx, db, conf, name, now); err != nil {
		return fail(e.stderr, "pause", err)
	}
	if err := db.SetPause(ctx, p); err != nil {
		return fail(e.stderr, "pause", err)
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", name, pauseText(p, now, loc))
	fmt.Fprintf(e.stdout, "The daemon records its firings skipped from now on; \"hexcron resume %s\" ends the pause.\n", name)
	return exitOK
}

func cmdResume(e *env, args []string) int {
	var dbFlag, configFlag string
	fs := newFlagSet(e, "resume", resumeUsage)
	fs.StringVar(&dbFlag, "db", "", "database: a SQLite file, or a postgres:// URL (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db)")
	fs.StringVar(&configFlag, "config", "", "schedules file to check NAME against and show times in (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml, when it exists)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	name, code, ok := oneName(e, "resume", pos)
	if !ok {
		return code
	}
	ctx := context.Background()
	conf, err := loadConfigFor(e, "resume", configFlag)
	if err != nil {
		return fail(e.stderr, "resume", err)
	}
	loc := time.UTC
	if conf != nil && conf.Location != nil {
		loc = conf.Location
	}
	db, err := openDB(ctx, dbTarget(dbFlag, conf, e.getenv), false)
	if err != nil {
		return fail(e.stderr, "resume", err)
	}
	defer db.Close()
	now := e.now()
	p, was, err := db.ClearPause(ctx, name, now)
	if err != nil {
		return fail(e.stderr, "resume", err)
	}
	if !was {
		if err := knownSchedule(ctx, db, conf, name, now); err != nil {
			return fail(e.stderr, "resume", err)
		}
		fmt.Fprintf(e.stdout, "%s was not paused; nothing changed.\n", name)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%s: resumed (it was %s)\n", name, pauseText(p, now, loc))
	fmt.Fprintln(e.stdout, "The daemon fires it again from its next planned firing.")
	return exitOK
}

// oneName returns the one schedule name in pos.
func oneName(e *env, cmd string, pos []string) (string, int, bool) {
	switch {
	case len(pos) == 0:
		fmt.Fprintf(e.stderr, "hexcron %s: which schedule? usage: hexcron %s NAME [flags] (see --help)\n", cmd, cmd)
		return "", exitUsage, false
	case len(pos) > 1:
		fmt.Fprintf(e.stderr, "hexcron %s: unexpected argument %q (one schedule at a time)\n", cmd, pos[1])
		return "", exitUsage, false
	}
	return pos[0], exitOK, true
}

// knownSchedule checks that name is a schedule of conf or, without a config, one the
// database has slots of or a pause for.
func knownSchedule(ctx context.Context, db pauseStore, conf *planner.Config, name string, now time.Time) error {
	if conf != nil {
		if conf.Schedule(name) != nil {
			return nil
		}
		var names []string
		for _, s := range conf.Schedules {
			names = append(names, s.Name)
		}
		return fmt.Errorf("no schedule %q in %s (it has: %s)", name, conf.File, strings.Join(names, ", "))
	}
	last, err := db.LastRunPerSchedule(ctx)
	if err != nil {
		return err
	}
	next, err := db.NextPlanned(ctx, now)
	if err != nil {
		return err
	}
	pauses, err := db.Pauses(ctx, now)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for n := range last {
		if !strings.HasPrefix(n, scheduler.ProjectLabel("")) { // a gateway request for a project is no schedule
			known[n] = true
		}
	}
	for n := range next {
		known[n] = true
	}
	for _, p := range pauses {
		known[p.Schedule] = true
	}
	if known[name] {
		return nil
	}
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Errorf("the database has no schedule %q (it knows: %s); pass --config to check the name against the config", name, dash(strings.Join(names, ", ")))
}

// pauseUser is who is pausing: $SUDO_USER (the person behind sudo), else $USER, else
// the process's user.
func pauseUser(getenv func(string) string) string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return truncateBytes(v, state.MaxPauseBy)
		}
	}
	if u, err := user.Current(); err == nil {
		return truncateBytes(u.Username, state.MaxPauseBy)
	}
	return ""
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// parseInstant reads an RFC 3339 instant, or "YYYY-MM-DD HH:MM[:SS]" in loc.
func parseInstant(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want RFC 3339 (2026-11-30T18:00:00+01:00) or \"YYYY-MM-DD HH:MM\" in " + loc.String())
}

// pauseText describes a pause for people: "paused since 11:15:00 CET by alice, until
// 13:15:00 CET (in 2h0m0s): backfill".
func pauseText(p state.Pause, now time.Time, loc *time.Location) string {
	s := "paused since " + fmtClock(p.Since, now, loc)
	if p.By != "" {
		s += " by " + p.By
	}
	if p.Until.IsZero() {
		s += ", until resumed"
	} else {
		s += ", until " + fmtClock(p.Until, now, loc)
		if left := p.Until.Sub(now); left > 0 {
			s += " (in " + fmtLeft(left) + ")"
		}
	}
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	return s
}

// fmtLeft is a duration ahead for people, to the second under an hour and to the
// minute beyond: "45s", "4m5s", "2h", "2h5m", "3d4h".
func fmtLeft(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	return planner.FormatDuration(d)
}
