package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
)

const statusUsage = `Usage: hexcron status [--db FILE|URL] [--config FILE] [--wide] [--json]

Per schedule: the last run (nominal instant, state, elapsed time, reason), the next
planned firing, the pauses ("hexcron pause"), and the trigger budget used in each
rule's window right now. It opens the database read-only: safe while the daemon runs.

The table fits 120 columns: long reasons (then long names) are cut, ending in an ellipsis;
instants show the time only when they fall today (in the config's zone), else
"Jan 02 15:04:05". --wide adds the trigger time and the run URL and cuts nothing.

With a config (--config, or the default config file when it exists) the schedules and
rules are the config's, and the next firing is planned from now over 48h counting the
ledger's recent attempts, as the daemon plans it. Without one, the schedules are those
the database knows, the next firing is the earliest slot recorded as planned, and the
rules are Hex's defaults (20/1m, 60/1h).

A schedule the database knows but the config does not (a reload removed it) is marked
"(removed)"; its runs still going are tracked by the daemon to their end. Every run of
a schedule still going besides the last one gets a line of its own. A paused schedule
is marked "(paused)", and its next firing is the first one planned after its pause.

A dry run of a config change: --config NEW.yaml with the live --db shows what the new
file would do against the ledger and runs of the running daemon (schedules it removes
marked "(removed)", next firings planned with the budget already used); "hexcron next"
with the same flags lists the coming firings. Nothing is written.

Per gateway client (the config's, and any with requests in the last 24h): requests in
the last hour against its max_per_hour, requests queued (waiting for room) and runs
going, and its latest request. A gateway request for a Hex project (not a schedule) is
shown there, not as a schedule. Queued gateway requests count in the next firings.

The last line names the leader: the daemon that holds the database's lease and
triggers the schedules, its host and pid, and since when (with PostgreSQL, the other
daemons stand by).

Times are shown in the config's default timezone (UTC without a config). --json prints
one object (times RFC 3339 in UTC, null when unset):
  {"now", "schedules": [{"name", "removed" (true: not in the config),
   "last": RUN or null, "in_flight": [RUN, ...] (runs still going besides last),
   "next": RFC3339 or null, "paused": {"since", "until" (null: until resumed),
   "by", "reason"} or null}],
   "budget": [{"rule": "60/1h", "used", "limit" (limit minus reserve), "reserve"}],
   "clients": [{"name", "max_per_hour" (0: none), "last_hour", "queued", "in_flight",
   "last": RUN or null}],
   "leader": {"epoch", "live" (its lease has not lapsed), "host", "pid", "since",
   "expires"} (host to expires null when nobody leads)}
  where RUN is {"slot", "kind", "state", "nominal", "triggered", "elapsed_seconds",
   "run_id", "run_url", "reason"}

Flags:
`

// statusHorizon is how far ahead status plans to find each schedule's next firing.
const statusHorizon = 48 * time.Hour

// statusReport is what status shows, in both forms.
type statusReport struct {
	Now       time.Time
	Loc       *time.Location
	Source    string // where the schedules come from, for the header
	Schedules []scheduleStatus
	Budget    []ruleUse
	Clients   []clientStatus
	Leader    leaderStatus
}

// leaderStatus is who holds the database's lease: the daemon that triggers schedules.
type leaderStatus struct {
	Lease state.Lease
	Owner *state.Owner // the leader's registration; nil when unknown or nobody leads
	Live  bool         // the lease has not expired (by the database's clock)
}

// clientStatus is one gateway client's line.
type clientStatus struct {
	Name       string
	MaxPerHour int // 0: none (or not in the config)
	LastHour   int // requests in the last hour, skipped ones excepted (what max_per_hour counts)
	Queued     int // planned: waiting for room
	InFlight   int // triggering, triggered or running
	Last       *state.Slot
}

type scheduleStatus struct {
	Name        string
	Removed     bool         // in the database but not in the config
	Paused      *state.Pause // nil: not paused
	Last        *state.Slot  // nil: never past planned
	InFlight    []state.Slot // runs not ended besides Last, oldest first
	NextPlanned time.Time    // zero: none known
	NextNominal time.Time
}

type ruleUse struct {
	Rule planner.Rule
	Used int
}

func cmdStatus(e *env, args []string) int {
	var dbFlag, configFlag string
	var asJSON, wide bool
	fs := newFlagSet(e, "status", statusUsage)
	fs.StringVar(&dbFlag, "db", "", "database: a SQLite file, or a postgres:// URL (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db)")
	fs.StringVar(&configFlag, "config", "", "schedules file (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml, when it exists)")
	fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	fs.BoolVar(&wide, "wide", false, "add the trigger time and run URL columns, and cut no text")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "hexcron status: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	ctx := context.Background()
	conf, err := loadConfigFor(e, "status", configFlag)
	if err != nil {
		return fail(e.stderr, "status", err)
	}
	db, err := openDB(ctx, dbTarget(dbFlag, conf, e.getenv), true)
	if err != nil {
		return fail(e.stderr, "status", err)
	}
	defer db.Close()
	rep, err := buildStatus(ctx, db, conf, e.now())
	if err != nil {
		return fail(e.stderr, "status", err)
	}
	if asJSON {
		err = writeStatusJSON(e.stdout, rep)
	} else {
		err = writeStatusTable(e.stdout, rep, wide)
	}
	if err != nil {
		return fail(e.stderr, "status", err)
	}
	return exitOK
}

// buildStatus reads everything status shows; conf may be nil.
func buildStatus(ctx context.Context, db stateDB, conf *planner.Config, now time.Time) (*statusReport, error) {
	rep := &statusReport{Now: now, Loc: time.UTC, Source: "the database (no config file)"}
	rules := planner.DefaultTriggers()
	if conf != nil {
		rep.Loc, rep.Source, rules = conf.Location, conf.File, conf.Budget.Triggers
		if rep.Loc == nil {
			rep.Loc = time.UTC
		}
	}
	var err error
	if rep.Leader, err = readLeader(ctx, db, now); err != nil {
		return nil, err
	}
	last, err := db.LastRunPerSchedule(ctx)
	if err != nil {
		return nil, err
	}
	pauses, err := pausesByName(ctx, db, now)
	if err != nil {
		return nil, err
	}
	var names []string
	next := map[string]scheduleStatus{}
	if conf != nil {
		for _, s := range conf.Schedules {
			names = append(names, s.Name)
		}
		if next, err = plannedNext(ctx, db, conf, now, pauses); err != nil {
			return nil, err
		}
	} else {
		planned, err := db.NextPlanned(ctx, now)
		if err != nil {
			return nil, err
		}
		for name, s := range planned {
			if p, ok := pauses[name]; ok && pausedAtFiring(p, s.Planned) {
				continue // the database knows only the next planned slot; it will be skipped
			}
			next[name] = scheduleStatus{NextPlanned: s.Planned, NextNominal: s.Nominal}
		}
	}
	// Schedules the database knows but the config does not (removed, renamed) still
	// show their last run.
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	var extra []string
	for n := range last {
		if !known[n] && !strings.HasPrefix(n, "project:") {
			extra, known[n] = append(extra, n), true
		}
	}
	if conf == nil {
		for n := range next {
			if !known[n] && !strings.HasPrefix(n, "project:") {
				extra, known[n] = append(extra, n), true
			}
		}
	}
	for n := range pauses {
		if !known[n] {
			extra, known[n] = append(extra, n), true
		}
	}
	sort.Strings(extra)
	names = append(names, extra...)
	active, err := db.ActiveRuns(ctx) // by planned time: oldest first
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		st := scheduleStatus{Name: n, NextPlanned: next[n].NextPlanned, NextNominal: next[n].NextNominal}
		st.Removed = conf != nil && conf.Schedule(n) == nil
		if p, ok := pauses[n]; ok {
			st.Paused = &p
		}
		if s, ok := last[n]; ok {
			st.Last = &s
		}
		for _, r := range active {
			if r.Schedule == n && (st.Last == nil || r.Key != st.Last.Key) {
				st.InFlight = append(st.InFlight, r)
			}
		}
		rep.Schedules = append(rep.Schedules, st)
	}

	windows := make([]time.Duration, len(rules))
	for i, r := range rules {
		windows[i] = r.Per
	}
	used, err := db.BudgetUsed(ctx, now, windows)
	if err != nil {
		return nil, err
	}
	for i, r := range rules {
		rep.Budget = append(rep.Budget, ruleUse{Rule: r, Used: used[i]})
	}
	if rep.Clients, err = clientsStatus(ctx, db, conf, now); err != nil {
		return nil, err
	}
	return rep, nil
}

// clientsStatus is the gateway clients' lines: the config's clients, then any other
// with requests in the last 24h.
func clientsStatus(ctx context.Context, db stateDB, conf *planner.Config, now time.Time) ([]clientStatus, error) {
	reqs, err := db.History(ctx, state.Filter{Gateway: true, Since: now.Add(-24 * time.Hour)}) // newest first
	if err != nil {
		return nil, err
	}
	var out []clientStatus
	at := map[string]int{}
	add := func(name string, max int) {
		if _, ok := at[name]; !ok {
			at[name] = len(out)
			out = append(out, clientStatus{Name: name, MaxPerHour: max})
		}
	}
	if conf != nil && conf.Gateway != nil {
		for _, c := range conf.Gateway.Clients {
			add(c.Name, c.MaxPerHour)
		}
	}
	var others []string
	for _, r := range reqs {
		if _, ok := at[r.Client]; !ok && !slices.Contains(others, r.Client) {
			others = append(others, r.Client)
		}
	}
	sort.Strings(others)
	for _, n := range others {
		add(n, 0)
	}
	for i := range reqs {
		r := &reqs[i]
		c := &out[at[r.Client]]
		if c.Last == nil {
			c.Last = r
		}
		if r.State != state.StateSkipped && r.Nominal.After(now.Add(-time.Hour)) {
			c.LastHour++
		}
		switch r.State {
		case state.StatePlanned:
			c.Queued++
		case state.StateTriggering, state.StateTriggered, state.StateRunning:
			c.InFlight++
		}
	}
	return out, nil
}

// plannedNext is each schedule's next firing as the daemon plans it
// (scheduler.NextFirings over statusHorizon, queued gateway requests counted), leaving
// out the firings a pause in pauses will skip.
func plannedNext(ctx context.Context, db stateDB, conf *planner.Config, now time.Time, pauses map[string]state.Pause) (map[string]scheduleStatus, error) {
	next, err := scheduler.NextFirings(ctx, db, conf, now, statusHorizon, func(f planner.Firing) bool {
		p, ok := pauses[f.Schedule]
		return ok && pausedAtFiring(p, f.Planned)
	})
	if err != nil {
		return nil, err
	}
	out := map[string]scheduleStatus{}
	for name, f := range next {
		out[name] = scheduleStatus{NextPlanned: f.Planned, NextNominal: f.Nominal}
	}
	return out, nil
}

// pausesByName reads the pauses in force at now.
func pausesByName(ctx context.Context, db pauseStore, now time.Time) (map[string]state.Pause, error) {
	ps, err := db.Pauses(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make(map[string]state.Pause, len(ps))
	for _, p := range ps {
		out[p.Schedule] = p
	}
	return out, nil
}

// pausedAtFiring reports whether a firing planned at planned meets pause p (the daemon
// then records it skipped).
func pausedAtFiring(p state.Pause, planned time.Time) bool { return p.InForce(planned) }

// slotElapsed is how long a slot's run took (Hex's elapsed time, else end minus
// start), or for a run still going how long it has been going; live reports the latter.
func slotElapsed(s state.Slot, now time.Time) (d time.Duration, live bool) {
	switch {
	case s.Elapsed > 0:
		return s.Elapsed, false
	case s.State == state.StateTriggered || s.State == state.StateRunning:
		from := s.Started
		if from.IsZero() {
			from = s.Triggered
		}
		if from.IsZero() || now.Before(from) {
			return 0, true
		}
		return now.Sub(from), true
	case !s.Ended.IsZero() && !s.Started.IsZero() && s.Ended.After(s.Started):
		return s.Ended.Sub(s.Started), false
	}
	return 0, false
}

// statusWidth is the width the status table fits without --wide.
const statusWidth = 120

func writeStatusTable(w io.Writer, rep *statusReport, wide bool) error {
	fmt.Fprintf(w, "hexcron status at %s (times in %s), schedules from %s\n\n",
		fmtTime(rep.Now, rep.Loc), rep.Loc, rep.Source)
	if len(rep.Schedules) == 0 {
		fmt.Fprintln(w, "No schedules: the config has none and the database has no slots yet.")
	} else {
		header := []string{"SCHEDULE", "LAST NOMINAL", "STATE", "ELAPSED", "NEXT", "REASON"}
		if wide {
			header = []string{"SCHEDULE", "LAST NOMINAL", "STATE", "TRIGGERED", "ELAPSED", "NEXT", "RUN URL", "REASON"}
		}
		rows := [][]string{header}
		line := func(name string, l *state.Slot, next string) {
			c := slotColumns(l, rep)
			if wide {
				rows = append(rows, []string{name, c.nominal, c.state, c.triggered, c.elapsed, next, c.url, c.reason})
			} else {
				rows = append(rows, []string{name, c.nominal, c.state, c.elapsed, next, c.reason})
			}
		}
		for _, s := range rep.Schedules {
			name := s.Name
			switch {
			case s.Removed:
				name += " (removed)"
			case s.Paused != nil:
				name += " (paused)"
			}
			next := "-"
			if !s.NextPlanned.IsZero() {
				next = fmtCompact(s.NextPlanned, rep.Now, rep.Loc)
				if shift := s.NextPlanned.Sub(s.NextNominal); shift > 0 && !s.NextNominal.IsZero() {
					next += " (+" + planner.FormatDuration(shift) + ")"
				}
			} else if s.Paused != nil {
				next = "paused"
			}
			line(name, s.Last, next)
			for _, r := range s.InFlight {
				line(name, &r, "-")
			}
		}
		width := statusWidth
		if wide {
			width = 0
		}
		// Cut the reason first, then the schedule names; never the instants.
		writeTable(w, rows, width, len(header)-1, 0)
	}
	var paused []scheduleStatus
	for _, s := range rep.Schedules {
		if s.Paused != nil {
			paused = append(paused, s)
		}
	}
	if len(paused) > 0 {
		fmt.Fprintf(w, "\nPaused (\"hexcron resume NAME\" ends a pause):\n")
		rows := [][]string{}
		for _, s := range paused {
			rows = append(rows, []string{"", s.Name, pauseText(*s.Paused, rep.Now, rep.Loc)})
		}
		width := statusWidth
		if wide {
			width = 0
		}
		writeTable(w, rows, width, 2)
	}
	fmt.Fprintf(w, "\nTrigger budget in use now (ledger attempts in each rule's window):\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, b := range rep.Budget {
		line := fmt.Sprintf("  %s\t%d of %d used", scheduler.RuleName(b.Rule), b.Used, b.Rule.Effective())
		if b.Rule.Reserve > 0 {
			line += fmt.Sprintf(" (%d more kept for other clients)", b.Rule.Reserve)
		}
		if b.Used >= b.Rule.Effective() {
			line += "  FULL"
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Clients) > 0 {
		fmt.Fprintf(w, "\nGateway clients:\n")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  CLIENT\tLAST HOUR\tQUEUED\tIN FLIGHT\tLAST REQUEST\tSTATE\tRUN\tREASON")
		for _, c := range rep.Clients {
			hour := strconv.Itoa(c.LastHour)
			if c.MaxPerHour > 0 {
				hour += fmt.Sprintf(" of %d", c.MaxPerHour)
			}
			last, st, run, reason := "-", "no request in 24h", "-", "-"
			if l := c.Last; l != nil {
				last, st, run, reason = fmtTime(l.Nominal, rep.Loc)+" "+l.Schedule+state.MatrixSuffix(l.Matrix), string(l.State), dash(l.RunID), oneLine(l.Reason)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", c.Name, hour, c.Queued, c.InFlight, last, st, run, reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\nLeader (the daemon that triggers schedules): %s\n", leaderLine(rep))
	return err
}

// readLeader reads the lease and its holder's registration.
func readLeader(ctx context.Context, db stateDB, now time.Time) (leaderStatus, error) {
	l, err := db.CurrentLease(ctx)
	if err != nil {
		return leaderStatus{}, err
	}
	ls := leaderStatus{Lease: l, Live: l.Owner != "" && now.Before(l.Expires)}
	if l.Owner == "" {
		return ls, nil
	}
	owners, err := db.Owners(ctx)
	if err != nil {
		return leaderStatus{}, err
	}
	for _, o := range owners {
		if o.ID == l.Owner {
			ls.Owner = &o
		}
	}
	return ls, nil
}

// leaderLine says who leads: "hexcron on HOST (pid N) since T (lease epoch E)".
func leaderLine(rep *statusReport) string {
	ls := rep.Leader
	switch {
	case ls.Lease.Epoch == 0:
		return "none yet: no daemon has run on this database"
	case ls.Lease.Owner == "":
		return fmt.Sprintf("none: the last leader stopped at %s (lease epoch %d)", fmtTime(ls.Lease.Expires, rep.Loc), ls.Lease.Epoch)
	}
	who := "owner " + ls.Lease.Owner
	if o := ls.Owner; o != nil {
		who = fmt.Sprintf("hexcron on %s (pid %d)", o.Host, o.PID)
	}
	line := fmt.Sprintf("%s since %s (lease epoch %d)", who, fmtTime(ls.Lease.Since, rep.Loc), ls.Lease.Epoch)
	if !ls.Live {
		line += fmt.Sprintf("; its lease lapsed at %s: it stopped or is cut off, and a standby takes over", fmtTime(ls.Lease.Expires, rep.Loc))
	}
	return line
}

// slotCells is how the status table shows one slot.
type slotCells struct{ nominal, state, triggered, elapsed, url, reason string }

// slotColumns is how the status table shows slot l (nil: never run).
func slotColumns(l *state.Slot, rep *statusReport) slotCells {
	if l == nil {
		return slotCells{"-", "never run", "-", "-", "-", "-"}
	}
	c := slotCells{nominal: fmtCompact(l.Nominal, rep.Now, rep.Loc), state: string(l.State),
		triggered: fmtTimeNear(l.Triggered, l.Nominal, rep.Loc), elapsed: "-", url: dash(l.RunURL), reason: oneLine(l.Reason)}
	if l.Kind != "" && l.Kind != state.KindScheduled {
		c.state += " (" + string(l.Kind) + ")"
	}
	if d, live := slotElapsed(*l, rep.Now); d > 0 {
		c.elapsed = planner.FormatDuration(d)
		if live {
			c.elapsed += " so far"
		}
	}
	return c
}

// statusJSON is the documented --json shape of status.
type statusJSON struct {
	Now       *string              `json:"now"`
	Schedules []scheduleStatusJSON `json:"schedules"`
	Budget    []budgetJSON         `json:"budget"`
	Clients   []clientJSON         `json:"clients"`
	Leader    leaderJSON           `json:"leader"`
}

type leaderJSON struct {
	Epoch   int64   `json:"epoch"`
	Live    bool    `json:"live"`
	Host    *string `json:"host"`
	PID     *int    `json:"pid"`
	Since   *string `json:"since"`
	Expires *string `json:"expires"`
}

type clientJSON struct {
	Name       string       `json:"name"`
	MaxPerHour int          `json:"max_per_hour"`
	LastHour   int          `json:"last_hour"`
	Queued     int          `json:"queued"`
	InFlight   int          `json:"in_flight"`
	Last       *lastRunJSON `json:"last"`
}

type scheduleStatusJSON struct {
	Name     string        `json:"name"`
	Removed  bool          `json:"removed"`
	Last     *lastRunJSON  `json:"last"`
	InFlight []lastRunJSON `json:"in_flight"`
	Next     *string       `json:"next"`
	Paused   *pauseJSON    `json:"paused"`
}

type pauseJSON struct {
	Since  *string `json:"since"`
	Until  *string `json:"until"`
	By     string  `json:"by"`
	Reason string  `json:"reason"`
}

type lastRunJSON struct {
	Slot           string   `json:"slot"`
	Kind           string   `json:"kind"`
	State          string   `json:"state"`
	Nominal        *string  `json:"nominal"`
	Triggered      *string  `json:"triggered"`
	ElapsedSeconds *float64 `json:"elapsed_seconds"`
	RunID          string   `json:"run_id"`
	RunURL         string   `json:"run_url"`
	Reason         string   `json:"reason"`
}

type budgetJSON struct {
	Rule    string `json:"rule"`
	Used    int    `json:"used"`
	Limit   int    `json:"limit"`
	Reserve int    `json:"reserve"`
}

func runJSON(l state.Slot, now time.Time) lastRunJSON {
	d, _ := slotElapsed(l, now)
	return lastRunJSON{Slot: l.Key, Kind: string(l.Kind), State: string(l.State),
		Nominal: jsonTime(l.Nominal), Triggered: jsonTime(l.Triggered), ElapsedSeconds: jsonSeconds(d),
		RunID: l.RunID, RunURL: l.RunURL, Reason: l.Reason}
}

func writeStatusJSON(w io.Writer, rep *statusReport) error {
	out := statusJSON{Now: jsonTime(rep.Now), Schedules: []scheduleStatusJSON{}, Budget: []budgetJSON{}, Clients: []clientJSON{}}
	for _, c := range rep.Clients {
		j := clientJSON{Name: c.Name, MaxPerHour: c.MaxPerHour, LastHour: c.LastHour, Queued: c.Queued, InFlight: c.InFlight}
		if c.Last != nil {
			r := runJSON(*c.Last, rep.Now)
			j.Last = &r
		}
		out.Clients = append(out.Clients, j)
	}
	for _, s := range rep.Schedules {
		j := scheduleStatusJSON{Name: s.Name, Removed: s.Removed, InFlight: []lastRunJSON{}, Next: jsonTime(s.NextPlanned)}
		if l := s.Last; l != nil {
			r := runJSON(*l, rep.Now)
			j.Last = &r
		}
		for _, r := range s.InFlight {
			j.InFlight = append(j.InFlight, runJSON(r, rep.Now))
		}
		if p := s.Paused; p != nil {
			j.Paused = &pauseJSON{Since: jsonTime(p.Since), Until: jsonTime(p.Until), By: p.By, Reason: p.Reason}
		}
		out.Schedules = append(out.Schedules, j)
	}
	for _, b := range rep.Budget {
		out.Budget = append(out.Budget, budgetJSON{Rule: scheduler.RuleName(b.Rule), Used: b.Used, Limit: b.Rule.Effective(), Reserve: b.Rule.Reserve})
	}
	ls := rep.Leader
	out.Leader = leaderJSON{Epoch: ls.Lease.Epoch, Live: ls.Live}
	if ls.Lease.Owner != "" {
		out.Leader.Since, out.Leader.Expires = jsonTime(ls.Lease.Since), jsonTime(ls.Lease.Expires)
		if o := ls.Owner; o != nil {
			out.Leader.Host, out.Leader.PID = &o.Host, &o.PID
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
