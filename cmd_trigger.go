package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
)

const triggerUsage = `Usage: hexcron trigger NAME [--config FILE] [--db FILE|URL] [--param k=v ...] [--wait] [--timeout D]
       hexcron trigger --gateway URL --token-file FILE (NAME | --project ID) [--param k=v ...]
                       [--wait] [--timeout D] [--idempotency-key K] [--retry-for D]

Run schedule NAME once, now, through the same trigger budget and database as the
daemon: the run is recorded as the slot NAME@<now UTC>+manual (kind manual), the
attempt goes into the shared ledger, and when the budget is full the command waits
for room and says so on stderr. It gives up when the schedule's window passes.

On success it prints "slot", "run" (the Hex run id) and "url" lines on stdout. With
--wait it then polls the run's status (at most every 10s, inside the read budget)
until Hex reports it ended, records the end, prints "status" and "elapsed" lines, and
exits 0 only for COMPLETED. A daemon running on the same database also tracks the run.

--param k=v overrides the schedule's params (repeatable). A value replacing a
non-string param is read as JSON (--param limit=10 sends a number). A schedule with a
matrix needs one --param per matrix key to pick the combination to run.

The Hex token comes from $CREDENTIALS_DIRECTORY/hex-token, else $HEX_API_TOKEN, else
the config's hex.token_file.

With --gateway it asks a running daemon's trigger gateway for the run instead (no
config, database or Hex token here: CI jobs use this). URL is https://HOST:PORT,
http://127.0.0.1:PORT (plain HTTP only to loopback) or unix:/path/to/gateway.sock;
--token-file holds this client's gateway token. NAME runs the configured schedule (its
params, matrix value, timeout and overlap policy; --param overrides them, read as JSON
where the schedule's param is not a string); --project ID runs a Hex project as Hex's
own API would, with --param values as inputParams (read as JSON when they are, like 10,
true or {"a":1}; else text). The request carries an Idempotency-Key: --idempotency-key,
else one made from the CI job's id ($GITHUB_RUN_ID, $GITHUB_RUN_ATTEMPT and $GITHUB_JOB
in GitHub Actions, $CI_JOB_ID in GitLab) and the request, so that a step retried in the
same job gets the same run. A 429 or 503 is retried after its Retry-After, with the same
key, until --retry-for has passed; a lost connection is retried only with a key.
--wait polls the run's status at the gateway (the daemon's tracking, no Hex read).

Exit codes: 0 triggered (with --wait: COMPLETED), 1 not triggered or the run did not
complete, 2 usage, 75 (--gateway) the gateway still answered 429 or 503 when
--retry-for ran out (EX_TEMPFAIL: try again later).

Flags:
`

// triggerPoll is how --wait paces its status polls: the first after Start, doubling
// up to Max.
type triggerPoll struct{ Start, Max time.Duration }

var defaultTriggerPoll = triggerPoll{Start: time.Second, Max: 10 * time.Second}

// paramFlag collects --param k=v (repeatable, in order).
type paramFlag [][2]string

func (p *paramFlag) String() string {
	var parts []string
	for _, kv := range *p {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, " ")
}

func (p *paramFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not k=v", v)
	}
	*p = append(*p, [2]string{strings.TrimSpace(k), val})
	return nil
}

type triggerFlags struct {
	config, db string
	params     paramFlag
	wait       bool
	timeout    time.Duration

	// --gateway mode
	gateway, tokenFile, project, key string
	retryFor                         time.Duration
}

func cmdTrigger(e *env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runTrigger(ctx, e, args, clock.System{}, defaultTriggerPoll)
}

// runTrigger is hexcron trigger on clk (the Hex client's clock; e.now names the slot).
func runTrigger(ctx context.Context, e *env, args []string, clk clock.Clock, poll triggerPoll) int {
	var f triggerFlags
	fs := newFlagSet(e, "trigger", triggerUsage)
	fs.StringVar(&f.config, "config", "", "schedules file (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml)")
	fs.StringVar(&f.db, "db", "", "database: a SQLite file, or a postgres:// URL (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db)")
	fs.Var(&f.params, "param", "input param `k=v` overriding the schedule's (repeatable)")
	fs.BoolVar(&f.wait, "wait", false, "wait until the run ends; exit 0 only if it COMPLETED")
	fs.DurationVar(&f.timeout, "timeout", 0, "with --wait: stop waiting after this long (default: the schedule's timeout; with --gateway: none); the run is not cancelled")
	fs.StringVar(&f.gateway, "gateway", "", "ask this trigger gateway (https://HOST:PORT, http://127.0.0.1:PORT or unix:PATH) instead of Hex")
	fs.StringVar(&f.tokenFile, "token-file", "", "with --gateway: the file holding this client's gateway token")
	fs.StringVar(&f.project, "project", "", "with --gateway: run this Hex project `ID` instead of a schedule")
	fs.StringVar(&f.key, "idempotency-key", "", "with --gateway: the request's Idempotency-Key (default: from the CI job id, when there is one)")
	fs.DurationVar(&f.retryFor, "retry-for", 15*time.Minute, "with --gateway: keep retrying 429 and 503 answers this long, then exit 75")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if f.gateway != "" {
		if f.config != "" || f.db != "" {
			fmt.Fprintln(e.stderr, "hexcron trigger: --gateway asks the daemon's gateway: --config and --db do not apply")
			return exitUsage
		}
		return runGatewayTrigger(ctx, e, f, pos, clk, poll)
	}
	if f.tokenFile != "" || f.project != "" || f.key != "" {
		fmt.Fprintln(e.stderr, "hexcron trigger: --token-file, --project and --idempotency-key go with --gateway URL")
		return exitUsage
	}
	switch {
	case len(pos) == 0:
		fmt.Fprintln(e.stderr, "hexcron trigger: which schedule? usage: hexcron trigger NAME [flags] (see --help)")
		return exitUsage
	case len(pos) > 1:
		fmt.Fprintf(e.stderr, "hexcron trigger: unexpected argument %q (one schedule at a time)\n", pos[1])
		return exitUsage
	case f.timeout < 0:
		fmt.Fprintln(e.stderr, "hexcron trigger: --timeout must not be negative")
		return exitUsage
	}
	name := pos[0]
	if f.config == "" {
		f.config = defaultConfigPath(e.getenv)
	}

	conf, err := planner.LoadFile(f.config)
	if err != nil {
		return fail(e.stderr, "trigger", err)
	}
	s := conf.Schedule(name)
	if s == nil {
		var names []string
		for _, s := range conf.Schedules {
			names = append(names, s.Name)
		}
		fmt.Fprintf(e.stderr, "hexcron trigger: no schedule %q in %s (it has: %s)\n", name, conf.File, strings.Join(names, ", "))
		return exitUsage
	}
	if s.View != "" && len(f.params) > 0 {
		fmt.Fprintf(e.stderr, "hexcron trigger: schedule %s runs the saved view %s: --param cannot be combined with it (Hex refuses viewId together with inputParams)\n", s.Name, s.View)
		return exitUsage
	}
	matrix, inputs, err := scheduler.ManualInputs(s, f.params)
	if err != nil {
		fmt.Fprintf(e.stderr, "hexcron trigger: %v\n", err)
		return exitUsage
	}
	token := hexclient.NewFileTokenSource(e.getenv, conf.Hex.TokenFile)
	if _, err := token.Token(); errors.Is(err, hexclient.ErrNoToken) {
		return fail(e.stderr, "trigger", fmt.Errorf("no Hex token: put it in $CREDENTIALS_DIRECTORY/hex-token (systemd LoadCredential=), in $HEX_API_TOKEN, or in the file named by the config's hex.token_file: %w", err))
	} else if err != nil {
		return fail(e.stderr, "trigger", fmt.Errorf("hex token: %w", err))
	}
	db, err := openDB(ctx, dbTarget(f.db, conf, e.getenv), false)
	if err != nil {
		return fail(e.stderr, "trigger", err)
	}
	defer db.Close()

	t := &manualTrigger{e: e, db: db, conf: conf, s: s, clk: clk, poll: poll}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Registered while it runs: the daemon leaves this process's claim alone until the
	// registration is gone (deleted at exit) or expired (the process died or hung).
	tenure, err := registerProcess(ctx, db, state.RoleTrigger, clk, scheduler.DefaultOwnerTTL, log)
	if err != nil {
		return fail(e.stderr, "trigger", err)
	}
	keepCtx, stopKeep := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() { defer close(kept); tenure.Keep(keepCtx) }()
	defer func() {
		stopKeep()
		<-kept
		if err := tenure.Release(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(e.stderr, "hexcron trigger: %v\n", err)
		}
	}()
	hc, err := hexclient.New(scheduler.ClientConfig(conf, hexclient.Config{Token: token, Version: versionString(), Clock: clk,
		Logger: log, Ledger: scheduler.Ledger{DB: db, Tenure: tenure}, Secrets: dbSecrets(db)}))
	if err != nil {
		return fail(e.stderr, "trigger", err)
	}
	t.hc = hc
	return t.run(ctx, matrix, inputs, f)
}

// manualTrigger is one run of hexcron trigger.
type manualTrigger struct {
	e    *env
	db   stateDB
	conf *planner.Config
	s    *planner.Schedule
	hc   *hexclient.Client
	clk  clock.Clock
	poll triggerPoll

	mu         sync.Mutex
	lastNotice string
}

// envClock is a clock whose Now is the command's (e.now) and whose timers are clk's.
type envClock struct {
	clock.Clock
	now func() time.Time
}

func (c envClock) Now() time.Time { return c.now() }

func (t *manualTrigger) run(ctx context.Context, matrix map[string]string, inputs map[string]any, f triggerFlags) int {
	e, s := t.e, t.s
	// The slot key has whole seconds: a second manual run of the schedule within the
	// same second waits for the next one.
	slot, err := scheduler.ClaimManualSlot(ctx, t.db, s, matrix, envClock{Clock: t.clk, now: e.now})
	if err != nil {
		return fail(e.stderr, "trigger", err)
	}
	now := e.now()
	deadline := now.Add(s.Window)
	fmt.Fprintf(e.stderr, "hexcron trigger: triggering %s (slot %s); gives up at %s if the budget has no room by then\n",
		s.Name, slot.Key, fmtClock(deadline, now, t.loc()))

	out := scheduler.Trigger{Store: t.db, Hex: t.hc, Clock: envClock{Clock: t.clk, now: e.now}}.Run(ctx, scheduler.SlotRequest{
		Slot: slot, Body: scheduler.RunRequest(s, inputs), Deadline: deadline, OnWait: t.waitNotice,
	})
	key := slot.Key
	switch out.Result {
	case scheduler.Triggered, scheduler.Adopted:
		res := out.Run
		fmt.Fprintf(e.stdout, "slot %s\nrun %s\nurl %s\n", key, res.RunID, res.RunURL)
		if out.RecordErr != nil {
			return fail(e.stderr, "trigger", fmt.Errorf("Hex started run %s but recording it failed: %w", res.RunID, out.RecordErr))
		}
		if !f.wait {
			return exitOK
		}
		timeout := f.timeout
		if timeout == 0 {
			timeout = s.Timeout
		}
		return t.waitRun(ctx, key, res.RunID, timeout)
	case scheduler.Taken:
		return fail(e.stderr, "trigger", out.Err)
	case scheduler.Fenced:
		// This process's registration lapsed (it was paused or hung for longer than its
		// TTL): the daemon may already be settling the slot, so nothing is written.
		return fail(e.stderr, "trigger", fmt.Errorf("%w; slot %s is left to the daemon, which settles it with Hex's run list", out.Err, key))
	case scheduler.Unresolved, scheduler.Interrupted:
		// An attempt's outcome is unknown: the slot stays triggering; the daemon's
		// recovery reconciles it with Hex's run list.
		return fail(e.stderr, "trigger", fmt.Errorf("%w; an attempt's outcome is unknown: slot %s stays triggering until the daemon reconciles it", out.Err, key))
	}
	if out.RecordErr != nil {
		fmt.Fprintf(e.stderr, "hexcron trigger: could not record slot %s as %s: %v\n", key, out.State, out.RecordErr)
	}
	return fail(e.stderr, "trigger", fmt.Errorf("not triggered (slot %s recorded %s): %w", key, out.State, out.Err))
}

// waitRun polls the run until Hex reports it ended or timeout passes.
func (t *manualTrigger) waitRun(ctx context.Context, key, runID string, timeout time.Duration) int {
	e := t.e
	giveUp := t.clk.Now().Add(timeout)
	interval := t.poll.Start
	var last hexclient.Status
	var lastErr string
	for {
		rs, err := t.hc.GetRunStatus(ctx, t.s.Project, runID)
		switch {
		case ctx.Err() != nil:
			return fail(e.stderr, "trigger", fmt.Errorf("stopped waiting (run %s keeps going; the daemon, if running, tracks it)", runID))
		case err != nil:
			var apiErr *hexclient.APIError
			if errors.As(err, &apiErr) && apiErr.Class == hexclient.ClassPermanent {
				return fail(e.stderr, "trigger", fmt.Errorf("get status of run %s: %w", runID, err))
			}
			if err.Error() != lastErr {
				fmt.Fprintf(e.stderr, "hexcron trigger: get run status failed (will retry): %v\n", err)
				lastErr = err.Error()
			}
		default:
			st, known := scheduler.StateOfStatus(rs.Status)
			if rs.Status != last {
				last = rs.Status
				if !known {
					fmt.Fprintf(e.stderr, "hexcron trigger: run %s is %s (a status hexcron does not know: not treated as ended)\n", runID, rs.Status)
				} else if !st.Terminal() {
					fmt.Fprintf(e.stderr, "hexcron trigger: run %s is %s\n", runID, rs.Status)
				}
				if st == state.StateRunning {
					t.record(key, state.StateRunning, state.Update{At: e.now(), Started: rs.StartTime})
				}
			}
			if known && st.Terminal() {
				return t.ended(key, rs)
			}
		}
		if !t.clk.Now().Before(giveUp) {
			return fail(e.stderr, "trigger", fmt.Errorf("run %s still %s after %s; stopped waiting (the run is not cancelled; the daemon, if running, tracks it)",
				runID, dash(string(last)), planner.FormatDuration(timeout)))
		}
		wait := min(interval, giveUp.Sub(t.clk.Now()))
		if err := clock.Sleep(ctx, t.clk, max(wait, 0)); err != nil {
			return fail(e.stderr, "trigger", fmt.Errorf("stopped waiting (run %s keeps going; the daemon, if running, tracks it)", runID))
		}
		interval = min(2*interval, t.poll.Max)
	}
}

// ended records a run's final status and prints it.
func (t *manualTrigger) ended(key string, rs *hexclient.RunStatus) int {
	e := t.e
	to, u := scheduler.RunEnd(rs, e.now())
	t.record(key, to, u)
	fmt.Fprintf(e.stdout, "status %s\n", rs.Status)
	if u.Elapsed > 0 {
		fmt.Fprintf(e.stdout, "elapsed %s\n", planner.FormatDuration(u.Elapsed))
	}
	if rs.Status == hexclient.StatusCompleted {
		return exitOK
	}
	return exitError
}

// record moves the slot, tolerating the daemon having recorded the same (or a later)
// state first: that is not the user's problem, only a note.
func (t *manualTrigger) record(key string, to state.State, u state.Update) {
	err := t.db.Transition(context.Background(), key, to, u)
	if err == nil {
		return
	}
	var te *state.TransitionError
	if errors.As(err, &te) {
		if te.From == to || to == state.StateRunning {
			return // the daemon recorded it first
		}
		if te.From.Terminal() {
			fmt.Fprintf(t.e.stderr, "hexcron trigger: note: the database already records slot %s as %s (Hex now reports it %s)\n", key, te.From, to)
			return
		}
	}
	fmt.Fprintf(t.e.stderr, "hexcron trigger: could not record slot %s as %s: %v\n", key, to, err)
}

func (t *manualTrigger) loc() *time.Location {
	if t.conf.Location != nil {
		return t.conf.Location
	}
	return time.UTC
}

// waitNotice tells the person at the terminal that the trigger waits, why (which rule
// is full, min_spacing, a hold after a 429 or 503, ...) and until when. It prints once
// per distinct message.
func (t *manualTrigger) waitNotice(w hexclient.Wait) {
	now := t.clk.Now()
	var msg string
	if w.Cause == hexclient.WaitBudget {
		var full []string
		for _, r := range w.Rules {
			full = append(full, scheduler.RuleName(r))
		}
		msg = "waiting for trigger budget"
		switch {
		case len(full) == 1:
			msg += ": " + full[0] + " rule full"
		case len(full) > 1:
			msg += ": " + strings.Join(full, " and ") + " rules full"
		case w.Spacing:
			msg += fmt.Sprintf(": min_spacing %s since the last trigger", planner.FormatDuration(t.conf.Budget.MinSpacing))
		}
	} else {
		msg = "waiting for " + scheduler.DescribeWait(w)
	}
	if !w.Until.IsZero() {
		msg += " until " + fmtClock(w.Until.Add(time.Second-1).Truncate(time.Second), now, t.loc())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if msg == t.lastNotice {
		return
	}
	t.lastNotice = msg
	fmt.Fprintf(t.e.stderr, "hexcron trigger: %s\n", msg)
}
