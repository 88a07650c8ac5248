package main

// What status, history and trigger share: flag parsing, opening the database (a
// missing file is an error, never created), and how times, durations and rules look.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"hexcron/planner"
	"hexcron/state"
)

// serviceDBPath is where the packaged systemd service keeps its database.
const serviceDBPath = "/var/lib/hexcron/hexcron.db"

// newFlagSet returns a ContinueOnError flag set whose --help prints usage (the text
// before the flags) and the flags to e.stderr.
func newFlagSet(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, usage); fs.PrintDefaults() }
	return fs
}

// parseFlags parses args, allowing positional arguments between flags
// (`trigger NAME --wait`). It returns the positional arguments, or ok false and the
// exit code: exitOK after --help, exitUsage after a bad flag (the flag package has
// already printed the error and the usage).
func parseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			return pos, exitOK, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// missingDBError is the error for a --db that does not exist.
func missingDBError(path string) error {
	return fmt.Errorf("no database at %s: is this the daemon's --db? the service's is %s", path, serviceDBPath)
}

// openDB opens the database at path without ever creating it: read-only for status
// and history, read-write (for the ledger and the slot row) for trigger.
func openDB(ctx context.Context, path string, readOnly bool) (*state.DB, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, missingDBError(path)
	}
	db, err := state.Open(ctx, path, state.Options{ReadOnly: readOnly})
	if errors.Is(err, state.ErrNoDatabase) {
		return nil, fmt.Errorf("%w (%w)", missingDBError(path), err)
	}
	return db, err
}

// dbPathOr is --db, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db.
func dbPathOr(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	return state.DefaultPath(getenv)
}

// fail prints "hexcron CMD: err" and returns exitError.
func fail(w io.Writer, cmd string, err error) int {
	fmt.Fprintf(w, "hexcron %s: %v\n", cmd, err)
	return exitError
}

// timeLayout is how status and history show instants to people (with the zone named
// once in the header).
const timeLayout = "2006-01-02 15:04:05"

// fmtTime is t in loc, or "-" when t is zero.
func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format(timeLayout)
}

// fmtTimeNear is t in loc, without the date when it falls on ref's date.
func fmtTimeNear(t, ref time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	lt, lr := t.In(loc), ref.In(loc)
	if lt.Year() == lr.Year() && lt.YearDay() == lr.YearDay() {
		return lt.Format(time.TimeOnly)
	}
	return lt.Format(timeLayout)
}

// fmtClock is t in loc with its zone, without the date when it falls on ref's date:
// "10:14:03 CET".
func fmtClock(t, ref time.Time, loc *time.Location) string {
	return fmtTimeNear(t, ref, loc) + " " + t.In(loc).Format("MST")
}

// jsonTime is t as RFC 3339 in UTC (milliseconds when there are any), or nil (null)
// when t is zero.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// jsonSeconds is d in seconds, or nil (null) when d is zero.
func jsonSeconds(d time.Duration) *float64 {
	if d == 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}

// oneLine makes free text (a reason, an error) fit one table cell.
func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), " ")
}

// dash is s, or "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// scheduleLabel is a slot's schedule with its matrix values and, unless scheduled, its
// kind: "regional-report[region=emea]", "revenue-dashboard (manual)".
func scheduleLabel(s state.Slot) string {
	l := s.Schedule + state.MatrixSuffix(s.Matrix)
	if s.Kind != "" && s.Kind != state.KindScheduled {
		l += " (" + string(s.Kind) + ")"
	}
	return l
}

// loadConfigFor loads --config when given; otherwise the default config path when it
// exists (a broken default file is reported as a warning and ignored, so that the
// database alone still answers). It returns nil when there is no config to read.
func loadConfigFor(e *env, cmd, flagValue string) (*planner.Config, error) {
	if flagValue != "" {
		return planner.LoadFile(flagValue)
	}
	path := defaultConfigPath(e.getenv)
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	conf, err := planner.LoadFile(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "hexcron %s: warning: ignoring %s (pass --config to use it): %v\n", cmd, path, err)
		return nil, nil
	}
	return conf, nil
}
