package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"hexcron/state"
)

// TestPauseResumeCommands: pause stores the pause (who, until, why) where status and
// the daemon read it, replaces an earlier one, resume ends it and says what it was,
// and bad input changes nothing.
func TestPauseResumeCommands(t *testing.T) {
	dbPath := fillStatusFixtureDB(t)
	vars := map[string]string{"USER": "root", "SUDO_USER": "bob"}
	cmd := func(t *testing.T, now time.Time, args ...string) (int, string, string) {
		t.Helper()
		e, out, errb := testEnv(t, now, vars)
		code := run(args, e)
		return code, out.String(), errb.String()
	}
	pauses := func(t *testing.T, now time.Time) []state.Pause {
		t.Helper()
		db, err := state.Open(context.Background(), dbPath, state.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ps, err := db.Pauses(context.Background(), now)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}

	code, out, errb := cmd(t, fixtureNow, "pause", "revenue-dashboard", "--db", dbPath, "--config", fixtureConfig,
		"--for", "90m", "--reason", "  warehouse\n migration ")
	if code != exitOK || errb != "" {
		t.Fatalf("pause: exit %d, stderr %s", code, errb)
	}
	want := "revenue-dashboard: paused since 11:15:00 CET by bob, until 12:45:00 CET (in 1h30m): warehouse migration\n" +
		"The daemon records its firings skipped from now on; \"hexcron resume revenue-dashboard\" ends the pause.\n"
	if out != want {
		t.Errorf("pause printed:\n%s\nwant:\n%s", out, want)
	}
	ps := pauses(t, fixtureNow)
	if len(ps) != 2 || ps[0].Schedule != "revenue-dashboard" || ps[0].By != "bob" || !ps[0].Since.Equal(fixtureNow) ||
		!ps[0].Until.Equal(fixtureNow.Add(90*time.Minute)) || ps[0].Reason != "warehouse migration" {
		t.Fatalf("pauses after pause: %+v", ps)
	}

	// status shows it, and plans the next firing after it.
	code, out, errb = cmd(t, fixtureNow, "status", "--db", dbPath, "--config", fixtureConfig)
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errb)
	}
	for _, w := range []string{"revenue-dashboard (paused)", "13:00:05 (+5s)", "  revenue-dashboard  paused since 11:15:00 CET by bob, until 12:45:00 CET (in 1h30m): warehouse migration"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}

	// Pausing again replaces it: --until in the config's zone, no reason.
	later := fixtureNow.Add(time.Minute)
	code, out, errb = cmd(t, later, "pause", "revenue-dashboard", "--db", dbPath, "--config", fixtureConfig, "--until", "2026-03-02 18:00")
	if code != exitOK || !strings.HasPrefix(out, "revenue-dashboard: paused since 11:16:00 CET by bob, until 18:00:00 CET (in 6h44m)\n") {
		t.Fatalf("pause --until: exit %d\n%s%s", code, out, errb)
	}
	if ps := pauses(t, later); len(ps) != 2 || !ps[0].Until.Equal(time.Date(2026, 3, 2, 17, 0, 0, 0, time.UTC)) || ps[0].Reason != "" {
		t.Errorf("pauses after the second pause: %+v", ps)
	}

	code, out, errb = cmd(t, later, "resume", "revenue-dashboard", "--db", dbPath, "--config", fixtureConfig)
	if want := "revenue-dashboard: resumed (it was paused since 11:16:00 CET by bob, until 18:00:00 CET (in 6h44m))\n" +
		"The daemon fires it again from its next planned firing.\n"; code != exitOK || out != want {
		t.Errorf("resume: exit %d\n%s\nwant\n%s%s", code, out, want, errb)
	}
	code, out, _ = cmd(t, later, "resume", "revenue-dashboard", "--db", dbPath, "--config", fixtureConfig)
	if code != exitOK || out != "revenue-dashboard was not paused; nothing changed.\n" {
		t.Errorf("second resume: exit %d: %s", code, out)
	}
	if ps := pauses(t, later); len(ps) != 1 || ps[0].Schedule != "ticker" {
		t.Errorf("pauses after resume: %+v, want ticker's only", ps)
	}

	// Without a config, a name the database knows (old-report has slots) is accepted.
	code, _, errb = cmd(t, later, "pause", "old-report", "--db", dbPath)
	if code != exitOK {
		t.Errorf("pause of a schedule the database knows, no config: exit %d: %s", code, errb)
	}
	code, _, errb = cmd(t, later, "resume", "old-report", "--db", dbPath)
	if code != exitOK {
		t.Errorf("resume, no config: exit %d: %s", code, errb)
	}

	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"pause"}, exitUsage, "which schedule?"},
		{[]string{"pause", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{[]string{"pause", "ticker", "--for", "1h", "--until", "2026-03-02 18:00"}, exitUsage, "--for or --until, not both"},
		{[]string{"pause", "ticker", "--for", "-1h"}, exitUsage, "--for must be positive"},
		{[]string{"pause", "ticker", "--until", "tomorrow"}, exitUsage, `want RFC 3339 (2026-11-30T18:00:00+01:00) or "YYYY-MM-DD HH:MM" in Europe/Berlin`},
		{[]string{"pause", "ticker", "--until", "2026-03-02T10:00:00Z"}, exitUsage, "--until 11:00:00 CET has passed"},
		{[]string{"pause", "ticker", "--reason", strings.Repeat("x", state.MaxPauseReason+1)}, exitUsage, "--reason is 501 bytes; at most 500"},
		{[]string{"pause", "tickr"}, exitError, `no schedule "tickr" in testdata/status-schedules.yaml (it has: revenue-dashboard, regional-report, ticker, nightly)`},
		{[]string{"resume", "tickr"}, exitError, `no schedule "tickr" in testdata/status-schedules.yaml`},
		{[]string{"resume"}, exitUsage, "which schedule?"},
		{[]string{"pause", "--help"}, exitOK, "Usage: hexcron pause NAME"},
		{[]string{"resume", "--help"}, exitOK, "Usage: hexcron resume NAME"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append(tc.args, "--db", dbPath, "--config", fixtureConfig)
			code, out, errb := cmd(t, later, args...)
			if code != tc.code || !strings.Contains(errb, tc.inStderr) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, tc.code, tc.inStderr, errb)
			}
			if tc.code != exitOK && out != "" {
				t.Errorf("stdout on error: %s", out)
			}
		})
	}
	// Without a config, a name the database does not know is refused.
	code, _, errb = cmd(t, later, "pause", "nosuch", "--db", dbPath)
	if code != exitError || !strings.Contains(errb, `the database has no schedule "nosuch" (it knows: legacy-export, nightly, old-report, regional-report, revenue-dashboard, ticker); pass --config`) {
		t.Errorf("unknown name without a config: exit %d: %s", code, errb)
	}
	if ps := pauses(t, later); len(ps) != 1 || ps[0].Schedule != "ticker" || ps[0].By != "alice" {
		t.Errorf("refused commands changed the pauses: %+v", ps)
	}
	// A missing database is an error and is not created.
	missing := filepath.Join(t.TempDir(), "nope.db")
	if code, _, errb := cmd(t, later, "pause", "ticker", "--db", missing, "--config", fixtureConfig); code != exitError || !strings.Contains(errb, "no database at "+missing) {
		t.Errorf("missing db: exit %d: %s", code, errb)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("%s was created", missing)
	}
}

// TestPauseUser: who paused is the person behind sudo, else the user.
func TestPauseUser(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"SUDO_USER": "alice", "USER": "root"}, "alice"},
		{map[string]string{"USER": "bob", "LOGNAME": "x"}, "bob"},
		{map[string]string{"LOGNAME": "carol"}, "carol"},
		{map[string]string{"USER": strings.Repeat("é", 40)}, strings.Repeat("é", state.MaxPauseBy/2)},
	} {
		if got := pauseUser(func(k string) string { return tc.vars[k] }); got != tc.want {
			t.Errorf("pauseUser(%v) = %q, want %q", tc.vars, got, tc.want)
		}
	}
}

// TestStatusFits120: with schedule names of 63 characters (the longest a name may be)
// and long reasons, every line of status and next fits 120 columns; --wide cuts nothing.
func TestStatusFits120(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	long := func(c string) string { return strings.Repeat(c, 63) }
	config := `defaults:
  timezone: Europe/Berlin
schedules:
  - {name: ` + long("a") + `, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "0 * * * *"}
  - {name: ` + long("b") + `, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "30 * * * *", matrix: {region: [emea, amer]}}
`
	cfg := filepath.Join(dir, "schedules.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "hexcron.db")
	db, err := state.Open(ctx, dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reason := "run project: 422 Unprocessable Entity: " + strings.Repeat("the input parameter region is not defined in the published version; ", 4)
	slot := long("a") + "@2026-03-02T10:00:00Z"
	if _, _, err := db.Admit(ctx, state.Holder{}, at("10:00:01"), at("08:00:00"), slot, func([]state.Attempt) time.Duration { return 0 }); err != nil {
		t.Fatal(err)
	}
	if err := db.Transition(ctx, slot, state.StateFailed, state.Update{At: at("10:00:02"), Reason: reason}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPause(ctx, state.Pause{Schedule: long("b"), Since: at("10:01:00"), By: "alice", Reason: strings.Repeat("why ", 100)}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, args := range [][]string{
		{"status", "--db", dbPath, "--config", cfg},
		{"next", "--db", dbPath, "--config", cfg},
	} {
		e, out, errb := testEnv(t, fixtureNow, nil)
		if code := run(args, e); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb)
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if n := utf8.RuneCountInString(l); n > 120 && !strings.HasPrefix(l, "hexcron ") {
				t.Errorf("%s: a line of %d columns:\n%s", args[0], n, l)
			}
		}
		if args[0] == "status" && !strings.Contains(out.String(), "…") {
			t.Errorf("status cut nothing:\n%s", out)
		}
	}
	e, out, errb := testEnv(t, fixtureNow, nil)
	if code := run([]string{"status", "--db", dbPath, "--config", cfg, "--wide"}, e); code != exitOK {
		t.Fatalf("--wide: exit %d: %s", code, errb)
	}
	if s := out.String(); strings.Contains(s, "…") || !strings.Contains(s, reason[:len(reason)-2]) || !strings.Contains(s, long("b")+" (paused)") {
		t.Errorf("--wide cut something:\n%s", s)
	}
}

// TestNextCommand: the listing follows --n, marks the paused firings, and says how
// many the horizon holds; --json has the documented fields; bad flags are refused.
func TestNextCommand(t *testing.T) {
	dbPath := fillStatusFixtureDB(t)
	e, out, errb := testEnv(t, fixtureNow, nil)
	if code := run([]string{"next", "--db", dbPath, "--config", fixtureConfig, "--n", "0", "--horizon", "3h", "--json"}, e); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	var doc struct {
		Now     string `json:"now"`
		Horizon string `json:"horizon"`
		Firings []struct {
			Schedule     string            `json:"schedule"`
			Slot         string            `json:"slot"`
			Matrix       map[string]string `json:"matrix"`
			Nominal      string            `json:"nominal"`
			Planned      string            `json:"planned"`
			ShiftSeconds float64           `json:"shift_seconds"`
			Paused       bool              `json:"paused"`
		} `json:"firings"`
		Total    int `json:"total"`
		Unplaced []struct {
			Schedule, Slot, Nominal, Reason string
		} `json:"unplaced"`
	}
	dec := json.NewDecoder(out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	// 10:15-13:15 UTC: ticker every 10 minutes (18, the 10:20 one paused like every one
	// before 12:14), revenue-dashboard at 11, 12 and 13, regional-report's two at 11:30,
	// and the gateway request client ci has queued.
	if doc.Horizon != "3h" || doc.Total != 24 || len(doc.Firings) != 24 || len(doc.Unplaced) != 0 {
		t.Fatalf("horizon %s total %d firings %d unplaced %d; want 3h, 24, 24, 0", doc.Horizon, doc.Total, len(doc.Firings), len(doc.Unplaced))
	}
	paused := 0
	prev := ""
	for _, f := range doc.Firings {
		if f.Planned < prev {
			t.Errorf("not sorted by planned: %s after %s", f.Planned, prev)
		}
		prev = f.Planned
		wantPaused := f.Schedule == "ticker" && f.Planned < "2026-03-02T12:14:00Z"
		if f.Paused != wantPaused {
			t.Errorf("%s paused = %v, want %v", f.Slot, f.Paused, wantPaused)
		}
		if f.Paused {
			paused++
		}
		if f.Schedule == "regional-report" && (len(f.Matrix) != 1 || f.ShiftSeconds <= 0) {
			t.Errorf("%s: matrix %v shift %v", f.Slot, f.Matrix, f.ShiftSeconds)
		}
	}
	if paused != 12 {
		t.Errorf("%d paused firings, want 12 (ticker from 10:20 to 12:10)", paused)
	}

	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"next", "--n", "-1"}, exitUsage, "--n must not be negative"},
		{[]string{"next", "--horizon", "200h"}, exitUsage, "--horizon must be positive and at most 168h0m0s"},
		{[]string{"next", "x"}, exitUsage, `unexpected argument "x"`},
		{[]string{"next", "--db", dbPath}, exitError, "no config: pass --config FILE"},
	} {
		e, _, errb := testEnv(t, fixtureNow, nil)
		if code := run(tc.args, e); code != tc.code || !strings.Contains(errb.String(), tc.inStderr) {
			t.Errorf("%v: exit %d, want %d; stderr lacks %q: %s", tc.args, code, tc.code, tc.inStderr, errb)
		}
	}
}
