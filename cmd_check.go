package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/scheduler"
)

const checkUsage = `Usage: hexcron check [--config FILE] [--json] [--dry-run [--db FILE|URL]]

The first contact with a real workspace: run it before the first start, and in CI.
With the daemon's credentials and through the same read budget it asks Hex
  - whether hex.base_url answers and accepts the token (ListProjects, one project);
  - for every configured project (GetProject, once each): that it exists, that the
    token's user can see it, and that it has been published (Hex runs the published
    version); and whether Hex also runs it on schedules of its own (a warning: the
    notebook would run twice).
It prints one row per schedule (project title, when it was published, verdict), then
every problem, warning and note. It sends no RunProject.

--dry-run also sends one RunProject with dryRun: true per project (the body of its
first schedule), which Hex validates without running the project. It goes through the
trigger budget and the daemon's ledger (--db, when the database exists): Hex does not
say that a dry run is free of the trigger caps, so it is counted as a trigger.

The Hex token comes from $CREDENTIALS_DIRECTORY/hex-token, else $HEX_API_TOKEN, else
the config's hex.token_file. The daemon runs the same checks at start and on reload
and logs one WARN per problem.

Exit codes: 0 every schedule would run (warnings may be printed), 1 some schedule would
fail (each is named), the token was refused or the config is invalid, 2 usage.

Flags:
`

func cmdCheck(e *env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runCheck(ctx, e, args, nil)
}

// runCheck is hexcron check; mod, when not nil, adjusts the Hex client's config (tests).
func runCheck(ctx context.Context, e *env, args []string, mod func(*hexclient.Config)) int {
	var configPath, dbFlag string
	var asJSON, dryRun bool
	fs := newFlagSet(e, "check", checkUsage)
	fs.StringVar(&configPath, "config", "", "schedules file (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of the table")
	fs.BoolVar(&dryRun, "dry-run", false, "also send one dryRun RunProject per project (counted against the trigger caps)")
	fs.StringVar(&dbFlag, "db", "", "with --dry-run: the daemon's database (a SQLite file or a postgres:// URL), whose ledger the dry runs join (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "hexcron check: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	if dbFlag != "" && !dryRun {
		fmt.Fprintln(e.stderr, "hexcron check: --db is only used with --dry-run")
		return exitUsage
	}
	if configPath == "" {
		configPath = defaultConfigPath(e.getenv)
	}
	conf, err := planner.LoadFile(configPath)
	if err != nil {
		return reportConfigError(e, err)
	}
	token := hexclient.NewFileTokenSource(e.getenv, conf.Hex.TokenFile)
	if _, err := token.Token(); err != nil {
		return fail(e.stderr, "check", fmt.Errorf("no Hex token: put it in $CREDENTIALS_DIRECTORY/hex-token (systemd LoadCredential=), in $HEX_API_TOKEN, or in the file named by the config's hex.token_file: %w", err))
	}
	var ledger hexclient.Ledger
	var secrets []string
	if dryRun {
		path := dbTarget(dbFlag, conf, e.getenv)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && dbFlag == "" && conf.State.URL == "" {
			fmt.Fprintf(e.stderr, "hexcron check: no database at %s: the dry runs are counted in this process only\n", path)
		} else {
			db, err := openDB(ctx, path, false)
			if err != nil {
				return fail(e.stderr, "check", err)
			}
			defer db.Close()
			ledger, secrets = scheduler.Ledger{DB: db}, dbSecrets(db)
		}
	}
	cfg := scheduler.ClientConfig(conf, hexclient.Config{Token: token, Version: versionString(), Clock: clock.System{},
		Logger: slog.New(slog.DiscardHandler), Ledger: ledger, Secrets: secrets})
	if mod != nil {
		mod(&cfg)
	}
	hc, err := hexclient.New(cfg)
	if err != nil {
		return fail(e.stderr, "check", err)
	}
	opts := scheduler.CheckOptions{}
	if dryRun {
		opts.DryRun, opts.DryRunDeadline = hc, time.Now().Add(2*time.Minute)
	}
	r := scheduler.Check(ctx, conf, hc, opts)
	if ctx.Err() != nil {
		return fail(e.stderr, "check", ctx.Err())
	}
	if asJSON {
		err = writeCheckJSON(e.stdout, configPath, r)
	} else {
		err = writeCheckTable(e.stdout, configPath, conf.Location, r)
	}
	if err != nil {
		return fail(e.stderr, "check", err)
	}
	if !r.OK() {
		return exitError
	}
	return exitOK
}

func writeCheckTable(w io.Writer, path string, loc *time.Location, r *scheduler.CheckReport) error {
	if loc == nil {
		loc = time.UTC
	}
	fmt.Fprintf(w, "hexcron check: %s against %s\n", path, r.BaseURL)
	if !r.Token.OK {
		fmt.Fprintf(w, "token: FAIL: %s\n", r.Token.Message)
	} else {
		fmt.Fprintf(w, "token: ok: %s\n", r.Token.Message)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "SCHEDULE\tPROJECT\tPUBLISHED (%s)\tVERDICT\n", loc)
	for _, s := range r.Schedules {
		title := s.Title
		if title == "" {
			title = "-"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\n", s.Schedule, title, s.Project[:8], fmtTime(s.PublishedAt, loc), strings.ToUpper(string(s.Verdict)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var lines []string
	for _, s := range r.Schedules {
		for _, p := range s.Problems {
			if !r.Token.OK {
				continue // each is "not checked": the token line says why
			}
			lines = append(lines, fmt.Sprintf("%s: FAIL: project %s: %s", s.Schedule, s.Project, p))
		}
		for _, m := range s.Warnings {
			lines = append(lines, fmt.Sprintf("%s: warning: project %s: %s", s.Schedule, s.Project, m))
		}
		for _, n := range s.Notes {
			lines = append(lines, fmt.Sprintf("%s: note: %s", s.Schedule, n))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintln(w)
	failed := r.Failed()
	switch {
	case !r.Token.OK:
		_, err := fmt.Fprintf(w, "FAIL: the token or the base URL: no schedule can run (%d schedules)\n", len(r.Schedules))
		return err
	case len(failed) > 0:
		_, err := fmt.Fprintf(w, "FAIL: %d of %d schedules would fail: %s\n", len(failed), len(r.Schedules), strings.Join(failed, ", "))
		return err
	}
	sent := "no RunProject was sent"
	if r.DryRun {
		sent = "one dry run per project was accepted"
	}
	_, err := fmt.Fprintf(w, "OK: all %d schedules can run (%s)\n", len(r.Schedules), sent)
	return err
}

// checkJSON is check --json's object.
type checkJSON struct {
	Config    string              `json:"config"`
	BaseURL   string              `json:"base_url"`
	Token     checkTokenJSON      `json:"token"`
	DryRun    bool                `json:"dry_run"`
	Schedules []checkScheduleJSON `json:"schedules"`
	Failed    []string            `json:"failed"`
	OK        bool                `json:"ok"`
}

type checkTokenJSON struct {
	OK      bool   `json:"ok"`
	Status  int    `json:"status"`
	Message string `json:"message"`
	TraceID string `json:"trace_id"`
}

type checkScheduleJSON struct {
	Name        string   `json:"name"`
	Project     string   `json:"project"`
	Title       string   `json:"title"`
	PublishedAt *string  `json:"published_at"`
	Verdict     string   `json:"verdict"`
	Problems    []string `json:"problems"`
	Warnings    []string `json:"warnings"`
	Notes       []string `json:"notes"`
}

func writeCheckJSON(w io.Writer, path string, r *scheduler.CheckReport) error {
	out := checkJSON{Config: path, BaseURL: r.BaseURL, DryRun: r.DryRun, Failed: r.Failed(), OK: r.OK(),
		Token:     checkTokenJSON{OK: r.Token.OK, Status: r.Token.Status, Message: r.Token.Message, TraceID: r.Token.TraceID},
		Schedules: []checkScheduleJSON{}}
	if out.Failed == nil {
		out.Failed = []string{}
	}
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	for _, s := range r.Schedules {
		out.Schedules = append(out.Schedules, checkScheduleJSON{Name: s.Schedule, Project: s.Project, Title: s.Title,
			PublishedAt: jsonTime(s.PublishedAt), Verdict: string(s.Verdict),
			Problems: nonNil(s.Problems), Warnings: nonNil(s.Warnings), Notes: nonNil(s.Notes)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
