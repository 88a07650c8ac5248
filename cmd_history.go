package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
)

var historyUsage = `Usage: hexcron history [--db FILE|URL] [--schedule NAME] [--client NAME] [--since 24h] [--state S[,S...]] [--limit N] [--json]
       hexcron history --slot KEY [--db FILE|URL] [--json]

The slots the daemon (and hexcron trigger) recorded, newest nominal instant first:
each with its schedule, state, reason, run id and URL, trigger time and attempts, and
the gateway client that asked for it (a CLIENT column when any slot shown has one). A
gateway request for a Hex project (not a schedule) shows as schedule project:<id>. It
opens the database read-only: safe while the daemon runs.

--since is a duration back from now (24h, 90m) or an RFC 3339 instant
(2026-03-01T00:00:00Z), compared with each slot's nominal instant; 0 means all.
--state takes one or more of: ` + stateList + `
(repeat the flag or separate with commas).

Times are shown in the config's default timezone (--config, or the default config
file when it exists), else UTC. --json prints an array of objects with the keys
schedule, slot, kind, matrix, state, reason, nominal, planned, triggered, started,
ended, elapsed_seconds, attempts, last_attempt, run_id, run_url, trace_id, last_error,
project_version, client (times RFC 3339 in UTC, null when unset; project_version is the
published version of the Hex project the run executed, "" until Hex reports it; client
is the gateway client whose request made the slot, "" for the others).

--slot KEY prints one slot's whole story from the database: its nominal and planned
instants and why it was planned there, its attempts (each one's send and answer while
the ledger keeps it, about a day) and why its trigger waited, its run (created, or
adopted after an ambiguous attempt), and how it ended. With --json it prints one
object: the keys above plus plan_reason, wait_reason, adopted and ledger (a list of
{"sent", "answered"}).

Flags:
`

// stateList is every slot state, comma separated.
var stateList = func() string {
	names := make([]string, len(state.States))
	for i, s := range state.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}()

// stateFlag collects --state values (repeatable, comma separated).
type stateFlag []state.State

func (f *stateFlag) String() string {
	var b []string
	for _, s := range *f {
		b = append(b, string(s))
	}
	return strings.Join(b, ",")
}

func (f *stateFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		s := state.State(strings.TrimSpace(part))
		if !s.Valid() {
			return fmt.Errorf("unknown state %q: want one of %s", part, stateList)
		}
		*f = append(*f, s)
	}
	return nil
}

// parseSince reads --since: a duration back from now, an RFC 3339 instant, or 0 (no
// bound: the zero time).
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration back from now must not be negative", v)
		}
		if d == 0 {
			return time.Time{}, nil
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration such as 24h or an RFC 3339 instant such as 2026-03-01T00:00:00Z", v)
}

func cmdHistory(e *env, args []string) int {
	var dbFlag, configFlag, schedule, client, since, slotKey string
	var states stateFlag
	var limit int
	var asJSON bool
	fs := newFlagSet(e, "history", historyUsage)
	fs.StringVar(&dbFlag, "db", "", "database: a SQLite file, or a postgres:// URL (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db)")
	fs.StringVar(&configFlag, "config", "", "schedules file, for its timezone only (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml, when it exists)")
	fs.StringVar(&schedule, "schedule", "", "only this schedule")
	fs.StringVar(&client, "client", "", "only the requests of this gateway client")
	fs.StringVar(&since, "since", "24h", "only slots whose nominal instant is this recent (duration or RFC 3339; 0: all)")
	fs.Var(&states, "state", "only slots in these states (comma separated, repeatable)")
	fs.IntVar(&limit, "limit", 0, "at most this many slots, newest first (0: no limit)")
	fs.BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	fs.StringVar(&slotKey, "slot", "", "print the whole story of the slot with this key")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "hexcron history: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	if limit < 0 {
		fmt.Fprintln(e.stderr, "hexcron history: --limit must not be negative")
		return exitUsage
	}
	if slotKey != "" && (schedule != "" || len(states) > 0 || limit > 0) {
		fmt.Fprintln(e.stderr, "hexcron history: --slot shows one slot: it takes no --schedule, --state or --limit")
		return exitUsage
	}
	now := e.now()
	from, err := parseSince(since, now)
	if err != nil {
		fmt.Fprintf(e.stderr, "hexcron history: %v\n", err)
		return exitUsage
	}
	loc := time.UTC
	var conf *planner.Config
	if !asJSON || dbFlag == "" {
		// The config names the time zone of the table, and may name the database.
		if conf, err = loadConfigFor(e, "history", configFlag); err != nil {
			return fail(e.stderr, "history", err)
		}
		if conf != nil && conf.Location != nil && !asJSON {
			loc = conf.Location
		}
	}
	ctx := context.Background()
	db, err := openDB(ctx, dbTarget(dbFlag, conf, e.getenv), true)
	if err != nil {
		return fail(e.stderr, "history", err)
	}
	defer db.Close()
	if slotKey != "" {
		story, err := scheduler.SlotStory(ctx, db, slotKey)
		if errors.Is(err, state.ErrNotFound) {
			return fail(e.stderr, "history", fmt.Errorf("no slot %s in the database (never recorded, or older than state.retention and pruned)", slotKey))
		}
		if err != nil {
			return fail(e.stderr, "history", err)
		}
		if asJSON {
			err = writeStoryJSON(e.stdout, story)
		} else {
			err = writeStory(e.stdout, story, loc)
		}
		if err != nil {
			return fail(e.stderr, "history", err)
		}
		return exitOK
	}
	slots, err := db.History(ctx, state.Filter{Schedule: schedule, Client: client, States: states, Since: from, Limit: limit})
	if err != nil {
		return fail(e.stderr, "history", err)
	}
	if asJSON {
		err = writeHistoryJSON(e.stdout, slots)
	} else {
		err = writeHistoryTable(e.stdout, slots, from, loc)
	}
	if err != nil {
		return fail(e.stderr, "history", err)
	}
	return exitOK
}

func writeHistoryTable(w io.Writer, slots []state.Slot, since time.Time, loc *time.Location) error {
	if len(slots) == 0 {
		if since.IsZero() {
			_, err := fmt.Fprintln(w, "No slots match the filters.")
			return err
		}
		_, err := fmt.Fprintf(w, "No slots match the filters since %s (%s); --since 0 shows all.\n", fmtTime(since, loc), loc)
		return err
	}
	// The CLIENT column only when a gateway client asked for one of the slots shown.
	clients := slices.ContainsFunc(slots, func(s state.Slot) bool { return s.Client != "" })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "NOMINAL (%s)\tSCHEDULE\t", loc)
	if clients {
		fmt.Fprint(tw, "CLIENT\t")
	}
	fmt.Fprint(tw, "STATE\tTRIGGERED\tATTEMPTS\tELAPSED\tVERSION\tRUN ID\tRUN URL\tREASON\n")
	for _, s := range slots {
		el := "-"
		if d, live := slotElapsed(s, time.Time{}); d > 0 && !live {
			el = planner.FormatDuration(d)
		}
		fmt.Fprintf(tw, "%s\t%s\t", fmtTime(s.Nominal, loc), scheduleLabel(s))
		if clients {
			fmt.Fprintf(tw, "%s\t", dash(s.Client))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.State,
			fmtTimeNear(s.Triggered, s.Nominal, loc), s.Attempts, el, dash(s.ProjectVersion), dash(s.RunID), dash(s.RunURL), oneLine(s.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	noun := "slots"
	if len(slots) == 1 {
		noun = "slot"
	}
	_, err := fmt.Fprintf(w, "\n%d %s, newest first; --json shows every field (slot key, planned, trace id, ...).\n", len(slots), noun)
	return err
}

// historyJSON is one record of history --json.
type historyJSON struct {
	Schedule       string            `json:"schedule"`
	Slot           string            `json:"slot"`
	Kind           string            `json:"kind"`
	Matrix         map[string]string `json:"matrix"`
	State          string            `json:"state"`
	Reason         string            `json:"reason"`
	Nominal        *string           `json:"nominal"`
	Planned        *string           `json:"planned"`
	Triggered      *string           `json:"triggered"`
	Started        *string           `json:"started"`
	Ended          *string           `json:"ended"`
	ElapsedSeconds *float64          `json:"elapsed_seconds"`
	Attempts       int               `json:"attempts"`
	LastAttempt    *string           `json:"last_attempt"`
	RunID          string            `json:"run_id"`
	RunURL         string            `json:"run_url"`
	TraceID        string            `json:"trace_id"`
	LastError      string            `json:"last_error"`
	ProjectVersion string            `json:"project_version"`
	Client         string            `json:"client"`
}

func writeHistoryJSON(w io.Writer, slots []state.Slot) error {
	out := make([]historyJSON, 0, len(slots))
	for _, s := range slots {
		var el time.Duration
		if d, live := slotElapsed(s, time.Time{}); !live {
			el = d
		}
		out = append(out, historyJSON{
			Schedule: s.Schedule, Slot: s.Key, Kind: string(s.Kind), Matrix: s.Matrix, State: string(s.State),
			Reason: s.Reason, Nominal: jsonTime(s.Nominal), Planned: jsonTime(s.Planned),
			Triggered: jsonTime(s.Triggered), Started: jsonTime(s.Started), Ended: jsonTime(s.Ended),
			ElapsedSeconds: jsonSeconds(el), Attempts: s.Attempts, LastAttempt: jsonTime(s.LastAttempt),
			RunID: s.RunID, RunURL: s.RunURL, TraceID: s.TraceID, LastError: s.LastError,
			ProjectVersion: s.ProjectVersion, Client: s.Client,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeStory prints one slot's story (history --slot), a line per chapter.
func writeStory(w io.Writer, st scheduler.Story, loc *time.Location) error {
	s := st.Slot
	at := func(t time.Time) string { return fmtTimeNear(t, s.Nominal, loc) }
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	line := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	line("slot", "%s", s.Key)
	sched := scheduleLabel(s)
	if s.Project != "" {
		sched += ", project " + s.Project
	}
	line("schedule", "%s", sched)
	line("nominal", "%s (times in %s)", fmtTime(s.Nominal, loc), loc)
	planned := at(s.Planned)
	if shift := st.Shift(); shift > 0 {
		planned += " (+" + planner.FormatDuration(shift) + ")"
	}
	if s.PlanReason != "" {
		planned += ": " + s.PlanReason
	} else if st.Shift() <= 0 {
		planned += ": at its nominal instant"
	}
	line("planned", "%s", planned)
	line("recorded", "%s, last change %s", at(s.Created), at(s.Updated))
	if s.Attempts == 0 {
		line("attempts", "none")
	} else {
		a := fmt.Sprintf("%d, the last admitted %s", s.Attempts, at(s.LastAttempt))
		if s.Owner != "" {
			a += " by owner " + s.Owner
		}
		line("attempts", "%s", a)
		for _, l := range st.Attempts {
			answer := "no answer recorded (in flight, or its process died)"
			if !l.Done.IsZero() {
				answer = "answered " + fmtTimeNear(l.Done, s.Nominal, loc) + fmt.Sprintf(" (%s later)", planner.FormatDuration(l.Done.Sub(l.Sent)))
			}
			line("", "sent %s, %s", fmtTimeNear(l.Sent, s.Nominal, loc), answer)
		}
		if len(st.Attempts) < s.Attempts {
			line("", "(the ledger keeps each attempt's times about a day: %d of %d shown)", len(st.Attempts), s.Attempts)
		}
	}
	if s.WaitReason != "" {
		line("waited", "for %s", s.WaitReason)
	}
	if s.RunID != "" {
		how := "created by a 201"
		if s.Adopted {
			how = "adopted: found in Hex's run list after an ambiguous attempt"
		}
		line("run", "%s, %s; triggered %s", s.RunID, how, at(s.Triggered))
		if s.RunURL != "" {
			line("", "%s", s.RunURL)
		}
		if s.TraceID != "" {
			line("", "trace id %s", s.TraceID)
		}
	}
	if !s.Started.IsZero() {
		started := "started " + at(s.Started)
		if s.ProjectVersion != "" {
			started += ", project version " + s.ProjectVersion
		}
		line("running", "%s", started)
	}
	end := string(s.State)
	if s.State.Terminal() {
		if !s.Ended.IsZero() {
			end += " at " + at(s.Ended)
		}
		if d, live := slotElapsed(s, time.Time{}); d > 0 && !live {
			end += " after " + planner.FormatDuration(d)
		}
		if s.Reason != "" {
			end += ": " + oneLine(s.Reason)
		}
		line("ended", "%s", end)
	} else {
		if s.Reason != "" {
			end += ": " + oneLine(s.Reason)
		}
		line("state", "%s (not ended)", end)
	}
	if s.LastError != "" {
		line("last error", "%s", oneLine(s.LastError))
	}
	return tw.Flush()
}

// storyJSON is history --slot --json's object.
type storyJSON struct {
	historyJSON
	PlanReason string        `json:"plan_reason"`
	WaitReason string        `json:"wait_reason"`
	Adopted    bool          `json:"adopted"`
	Ledger     []attemptJSON `json:"ledger"`
}

type attemptJSON struct {
	Sent     *string `json:"sent"`
	Answered *string `json:"answered"`
}

func writeStoryJSON(w io.Writer, st scheduler.Story) error {
	s := st.Slot
	var el time.Duration
	if d, live := slotElapsed(s, time.Time{}); !live {
		el = d
	}
	out := storyJSON{historyJSON: historyJSON{
		Schedule: s.Schedule, Slot: s.Key, Kind: string(s.Kind), Matrix: s.Matrix, State: string(s.State),
		Reason: s.Reason, Nominal: jsonTime(s.Nominal), Planned: jsonTime(s.Planned),
		Triggered: jsonTime(s.Triggered), Started: jsonTime(s.Started), Ended: jsonTime(s.Ended),
		ElapsedSeconds: jsonSeconds(el), Attempts: s.Attempts, LastAttempt: jsonTime(s.LastAttempt),
		RunID: s.RunID, RunURL: s.RunURL, TraceID: s.TraceID, LastError: s.LastError,
		ProjectVersion: s.ProjectVersion,
	}, PlanReason: s.PlanReason, WaitReason: s.WaitReason, Adopted: s.Adopted, Ledger: []attemptJSON{}}
	for _, a := range st.Attempts {
		out.Ledger = append(out.Ledger, attemptJSON{Sent: jsonTime(a.Sent), Answered: jsonTime(a.Done)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
