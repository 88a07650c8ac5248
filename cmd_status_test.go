package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hexcron/state"
)

// fixtureNow is the wall clock of the status and history golden tests:
// Monday 2026-03-02 10:15:00 UTC (11:15 in Europe/Berlin).
var fixtureNow = time.Date(2026, 3, 2, 10, 15, 0, 0, time.UTC)

const fixtureConfig = "testdata/status-schedules.yaml"

func at(hhmmss string) time.Time {
	t, err := time.Parse(time.DateTime, "2026-03-02 "+hhmmss)
	if err != nil {
		panic(err)
	}
	return t
}

func runURL(project, run string) string {
	return "https://app.hex.tech/app/" + project + "/latest?runId=" + run
}

// fillFixtureDB writes, through the state API at fixed instants, the database the
// status and history goldens read: runs completed, errored, running, failed, pending
// (manual), skipped while down, two slots still planned and one attempt tied to no slot.
func fillFixtureDB(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hexcron.db")
	db, err := state.Open(ctx, path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	admit := func(slot string, sent, done time.Time) {
		t.Helper()
		id, wait, err := db.Admit(ctx, state.Holder{}, sent, sent.Add(-2*time.Hour), slot, func([]state.Attempt) time.Duration { return 0 })
		must(err)
		if wait != 0 || id == 0 {
			t.Fatalf("admit %s: id %d wait %s", slot, id, wait)
		}
		must(db.Complete(ctx, id, done))
	}
	const (
		revenue  = "5a8591dd-4039-49df-9202-96385ba3eff8"
		regional = "0f1e2d3c-4b5a-4789-8abc-def012345678"
		ticker   = "11111111-2222-4333-8444-555555555555"
		nightly  = "11111111-2222-4333-8444-555555555556"
	)

	// Another client's attempt on the same ledger (no slot).
	admit("", at("09:20:00"), at("09:20:01"))

	// revenue-dashboard: 09:00 and 10:00 completed; 11:00 planned.
	for _, r := range []struct {
		slot, run      string
		sent, start    time.Time
		elapsed        time.Duration
		plannedAfterNo time.Duration
	}{
		{"revenue-dashboard@2026-03-02T09:00:00Z", "9c1d0e8e-0a53-4b67-8f4f-0c2a6b2f9001", at("09:00:03"), at("09:00:05"), 3 * time.Minute, 3 * time.Second},
		{"revenue-dashboard@2026-03-02T10:00:00Z", "9c1d0e8e-0a53-4b67-8f4f-0c2a6b2f9002", at("10:00:07"), at("10:00:09"), 4*time.Minute + 12500*time.Millisecond, 7 * time.Second},
	} {
		nominal := r.sent.Truncate(time.Minute)
		_, err := db.PlanSlot(ctx, state.Slot{Key: r.slot, Planned: nominal.Add(r.plannedAfterNo)}, nominal.Add(-30*time.Minute))
		must(err)
		admit(r.slot, r.sent, r.sent.Add(400*time.Millisecond))
		must(db.Transition(ctx, r.slot, state.StateTriggered, state.Update{At: r.sent.Add(time.Second), RunID: r.run,
			RunURL: runURL(revenue, r.run), TraceID: "trace-" + r.run[len(r.run)-4:], Triggered: r.sent, ProjectVersion: r.run[len(r.run)-1:]}))
		must(db.Transition(ctx, r.slot, state.StateRunning, state.Update{At: r.start.Add(time.Second), Started: r.start}))
		end := r.start.Add(r.elapsed)
		must(db.Transition(ctx, r.slot, state.StateCompleted, state.Update{At: end.Add(5 * time.Second),
			Reason: "hex status COMPLETED", Ended: end, Elapsed: r.elapsed}))
	}
	_, err = db.PlanSlot(ctx, state.Slot{Key: "revenue-dashboard@2026-03-02T11:00:00Z"}, at("10:14:00"))
	must(err)

	// regional-report, last Friday 06:30 New York: amer completed, emea errored.
	fri := time.Date(2026, 2, 27, 11, 30, 0, 0, time.UTC)
	for i, r := range []struct {
		region, run string
		end         state.State
		elapsed     time.Duration
	}{
		{"amer", "4f0e6c1a-77aa-4c1e-9d51-6b1e2f3a0001", state.StateCompleted, 2*time.Minute + 40*time.Second},
		{"emea", "4f0e6c1a-77aa-4c1e-9d51-6b1e2f3a0002", state.StateErrored, 52 * time.Second},
	} {
		slot := "regional-report@2026-02-27T11:30:00Z[region=" + r.region + "]"
		sent := fri.Add(time.Duration(i*5+1) * time.Second)
		admit(slot, sent, sent.Add(300*time.Millisecond))
		must(db.Transition(ctx, slot, state.StateTriggered, state.Update{At: sent.Add(time.Second), RunID: r.run,
			RunURL: runURL(regional, r.run), Triggered: sent}))
		end := sent.Add(5*time.Second + r.elapsed)
		must(db.Transition(ctx, slot, r.end, state.Update{At: end.Add(10 * time.Second),
			Reason: "hex status " + strings.ToUpper(string(r.end)), Started: sent.Add(5 * time.Second), Ended: end, Elapsed: r.elapsed}))
	}

	// ticker: 10:00 refused by Hex (422), 10:10 running, 10:20 planned 5s late.
	admit("ticker@2026-03-02T10:00:00Z", at("10:00:12"), at("10:00:12.600"))
	must(db.Transition(ctx, "ticker@2026-03-02T10:00:00Z", state.StateFailed, state.Update{At: at("10:00:13"),
		Reason: "run project: 422 Unprocessable Entity: input parameter\nnot found: region", TraceID: "trace-422"}))
	const tickerRun = "7d3e9a10-5b2c-4e8f-a1d2-3c4b5a6f0010"
	admit("ticker@2026-03-02T10:10:00Z", at("10:10:02"), at("10:10:02.500"))
	must(db.Transition(ctx, "ticker@2026-03-02T10:10:00Z", state.StateTriggered, state.Update{At: at("10:10:03"),
		RunID: tickerRun, RunURL: runURL(ticker, tickerRun), Triggered: at("10:10:02")}))
	must(db.Transition(ctx, "ticker@2026-03-02T10:10:00Z", state.StateRunning, state.Update{At: at("10:10:05"), Started: at("10:10:04")}))
	_, err = db.PlanSlot(ctx, state.Slot{Key: "ticker@2026-03-02T10:20:00Z", Planned: at("10:20:05")}, at("10:14:00"))
	must(err)

	// nightly: a manual run triggered half a minute ago, still pending at Hex.
	const nightlyRun = "2b8c4d6e-1f3a-4b5c-8d7e-9f0a1b2c0030"
	manual := "nightly@2026-03-02T10:14:30Z+manual"
	_, err = db.PlanSlot(ctx, state.Slot{Key: manual, Kind: state.KindManual}, at("10:14:30"))
	must(err)
	admit(manual, at("10:14:30"), at("10:14:31"))
	must(db.Transition(ctx, manual, state.StateTriggered, state.Update{At: at("10:14:31"),
		RunID: nightlyRun, RunURL: runURL(nightly, nightlyRun), Triggered: at("10:14:30")}))

	// ci, a gateway client: a run of the revenue project asked at 10:12 (completed), and
	// one asked at 10:14:45 still queued for want of room (kept with its key).
	noQuota := func([]time.Time) time.Duration { return 0 }
	const ciRun = "3c2b1a00-9e8d-4c7b-a6f5-e4d3c2b10050"
	asked := state.Submission{Slot: state.Slot{Key: "project:" + revenue + "@2026-03-02T10:12:00.250Z+manual", Schedule: "project:" + revenue,
		Nominal: at("10:12:00.250"), Planned: at("10:12:01"), Kind: state.KindManual, Project: revenue, Client: "ci", Deadline: at("10:13:00.250")},
		Key: "build-41", Hash: "h41", Body: `{}`, Expires: at("10:12:00.250").Add(24 * time.Hour)}
	_, err = db.Submit(ctx, asked, at("10:12:00.250"), at("09:12:00.250"), noQuota)
	must(err)
	admit(asked.Slot.Key, at("10:12:01"), at("10:12:01.300"))
	must(db.Transition(ctx, asked.Slot.Key, state.StateTriggered, state.Update{At: at("10:12:01.300"),
		RunID: ciRun, RunURL: runURL(revenue, ciRun), Triggered: at("10:12:01")}))
	must(db.Transition(ctx, asked.Slot.Key, state.StateCompleted, state.Update{At: at("10:13:30"),
		Reason: "hex status COMPLETED", Started: at("10:12:02"), Ended: at("10:13:25"), Elapsed: 83 * time.Second}))
	queued := state.Submission{Slot: state.Slot{Key: "project:" + revenue + "@2026-03-02T10:14:45.500Z+manual", Schedule: "project:" + revenue,
		Nominal: at("10:14:45.500"), Planned: at("10:14:45.500"), Kind: state.KindManual, Project: revenue, Client: "ci", Deadline: at("12:14:45.500")},
		Key: "build-42", Hash: "h42", Body: `{}`, Expires: at("10:14:45.500").Add(24 * time.Hour)}
	_, err = db.Submit(ctx, queued, at("10:14:45.500"), at("09:14:45.500"), noQuota)
	must(err)

	// old-report: removed from the config since; its last slot was missed while down.
	must(db.SkipSlot(ctx, state.Slot{Key: "old-report@2026-03-01T08:00:00Z"},
		"missed while down: older than catchup 1h", at("08:00:00").AddDate(0, 0, -1).Add(3*time.Hour)))
	return path
}

// fillStatusFixtureDB is fillFixtureDB plus, for status, a schedule removed from the
// config while one of its runs was going, and a paused schedule.
func fillStatusFixtureDB(t *testing.T) string {
	t.Helper()
	path := fillFixtureDB(t)
	ctx := context.Background()
	db, err := state.Open(ctx, path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// legacy-export: removed from the config by a reload at 10:12 while its 10:05 run
	// was going (still tracked: the row carries its project and timeout) and its 10:10
	// firing was queued behind that run.
	const legacy = "66666666-7777-4888-8999-aaaaaaaaaaaa"
	const legacyRun = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f0040"
	legacySlot := "legacy-export@2026-03-02T10:05:00Z"
	_, err = db.PlanSlot(ctx, state.Slot{Key: legacySlot, Project: legacy, Timeout: time.Hour}, at("10:05:00"))
	must(err)
	id, _, err := db.Admit(ctx, state.Holder{}, at("10:05:01"), at("08:05:01"), legacySlot, func([]state.Attempt) time.Duration { return 0 })
	must(err)
	must(db.Complete(ctx, id, at("10:05:01.400")))
	must(db.Transition(ctx, legacySlot, state.StateTriggered, state.Update{At: at("10:05:02"),
		RunID: legacyRun, RunURL: runURL(legacy, legacyRun), Triggered: at("10:05:01")}))
	must(db.Transition(ctx, legacySlot, state.StateRunning, state.Update{At: at("10:05:15"), Started: at("10:05:03")}))
	_, err = db.PlanSlot(ctx, state.Slot{Key: "legacy-export@2026-03-02T10:10:00Z",
		Reason: "overlap queue: waits for run " + legacyRun + " to end"}, at("10:10:00"))
	must(err)
	must(db.SkipSlot(ctx, state.Slot{Key: "legacy-export@2026-03-02T10:10:00Z"},
		"queued when a reload removed its schedule from the config", at("10:12:00")))

	// ticker: paused at 10:14 for two hours (`hexcron pause ticker --for 2h`).
	must(db.SetPause(ctx, state.Pause{Schedule: "ticker", Since: at("10:14:00"), Until: at("12:14:00"),
		By: "alice", Reason: "backfill of the March data"}))
	return path
}

// TestStatusGolden compares status (and next, which plans the same way) on the fixture
// with testdata/golden/; the file name before "." or "-" is the command.
func TestStatusGolden(t *testing.T) {
	dbPath := fillStatusFixtureDB(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"status.txt", []string{"--db", dbPath, "--config", fixtureConfig}},
		{"status.json", []string{"--db", dbPath, "--config", fixtureConfig, "--json"}},
		{"status-nocfg.txt", []string{"--db", dbPath}},
		{"status-nocfg.json", []string{"--db", dbPath, "--json"}},
		{"status-wide.txt", []string{"--db", dbPath, "--config", fixtureConfig, "--wide"}},
		{"next.txt", []string{"--db", dbPath, "--config", fixtureConfig, "--n", "12"}},
		{"next.json", []string{"--db", dbPath, "--config", fixtureConfig, "--n", "4", "--json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, out, errb := testEnv(t, fixtureNow, nil)
			cmd, _, _ := strings.Cut(tc.name, ".")
			cmd, _, _ = strings.Cut(cmd, "-")
			if code := run(append([]string{cmd}, tc.args...), e); code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, errb)
			}
			if errb.Len() > 0 {
				t.Errorf("stderr: %s", errb)
			}
			golden(t, tc.name, out.Bytes())
		})
	}
}

// TestStatusJSONFields parses status --json and checks it field by field against what
// the fixture wrote, with and without the config.
func TestStatusJSONFields(t *testing.T) {
	dbPath := fillStatusFixtureDB(t)
	type last struct {
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
	type pause struct {
		Since  *string `json:"since"`
		Until  *string `json:"until"`
		By     string  `json:"by"`
		Reason string  `json:"reason"`
	}
	type doc struct {
		Now       string `json:"now"`
		Schedules []struct {
			Name     string  `json:"name"`
			Removed  bool    `json:"removed"`
			Last     *last   `json:"last"`
			InFlight []last  `json:"in_flight"`
			Next     *string `json:"next"`
			Paused   *pause  `json:"paused"`
		} `json:"schedules"`
		Budget []struct {
			Rule    string `json:"rule"`
			Used    int    `json:"used"`
			Limit   int    `json:"limit"`
			Reserve int    `json:"reserve"`
		} `json:"budget"`
		Clients []struct {
			Name       string `json:"name"`
			MaxPerHour int    `json:"max_per_hour"`
			LastHour   int    `json:"last_hour"`
			Queued     int    `json:"queued"`
			InFlight   int    `json:"in_flight"`
			Last       *last  `json:"last"`
		} `json:"clients"`
		Leader struct {
			Epoch   int64   `json:"epoch"`
			Live    bool    `json:"live"`
			Host    *string `json:"host"`
			PID     *int    `json:"pid"`
			Since   *string `json:"since"`
			Expires *string `json:"expires"`
		} `json:"leader"`
	}
	parse := func(t *testing.T, args ...string) doc {
		t.Helper()
		e, out, errb := testEnv(t, fixtureNow, nil)
		if code := run(append([]string{"status", "--db", dbPath, "--json"}, args...), e); code != exitOK {
			t.Fatalf("exit %d: %s", code, errb)
		}
		var d doc
		dec := json.NewDecoder(out)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return d
	}
	str := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}

	t.Run("config", func(t *testing.T) {
		d := parse(t, "--config", fixtureConfig)
		if d.Now != "2026-03-02T10:15:00Z" {
			t.Errorf("now = %q", d.Now)
		}
		var names []string
		for _, s := range d.Schedules {
			names = append(names, s.Name)
		}
		// Config order, then what only the database knows.
		if got := strings.Join(names, ","); got != "revenue-dashboard,regional-report,ticker,nightly,legacy-export,old-report" {
			t.Fatalf("schedules = %s", got)
		}
		rev, reg, tick, night, legacy, old := d.Schedules[0], d.Schedules[1], d.Schedules[2], d.Schedules[3], d.Schedules[4], d.Schedules[5]
		for i, s := range d.Schedules {
			if want := i >= 4; s.Removed != want {
				t.Errorf("%s removed = %v, want %v", s.Name, s.Removed, want)
			}
			if s.InFlight == nil {
				t.Errorf("%s in_flight is null, want a list", s.Name)
			}
			if len(s.InFlight) > 0 && s.Name != "legacy-export" {
				t.Errorf("%s in_flight = %+v, want none", s.Name, s.InFlight)
			}
		}
		// The removed schedule's run still going is listed besides its last slot.
		if l := legacy.Last; l == nil || l.State != "skipped" || l.Reason != "queued when a reload removed its schedule from the config" {
			t.Errorf("legacy-export last = %+v", l)
		}
		if f := legacy.InFlight; len(f) != 1 || f[0].Slot != "legacy-export@2026-03-02T10:05:00Z" || f[0].State != "running" ||
			f[0].RunID != "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f0040" || f[0].ElapsedSeconds == nil || *f[0].ElapsedSeconds != 597 {
			t.Errorf("legacy-export in_flight = %+v", f)
		}
		if l := rev.Last; l == nil || l.Slot != "revenue-dashboard@2026-03-02T10:00:00Z" || l.State != "completed" ||
			l.Kind != "scheduled" || str(l.Nominal) != "2026-03-02T10:00:00Z" || str(l.Triggered) != "2026-03-02T10:00:07Z" ||
			l.ElapsedSeconds == nil || *l.ElapsedSeconds != 252.5 || l.RunID != "9c1d0e8e-0a53-4b67-8f4f-0c2a6b2f9002" ||
			l.RunURL != runURL("5a8591dd-4039-49df-9202-96385ba3eff8", l.RunID) || l.Reason != "hex status COMPLETED" {
			t.Errorf("revenue-dashboard last = %+v", l)
		}
		// The plan: the 11:00 firing, 5s late: ticker's 11:00 firing (a 5m window
		// against 15m) takes 11:00:00 and min_spacing is 5s.
		if str(rev.Next) != "2026-03-02T11:00:05Z" {
			t.Errorf("revenue-dashboard next = %s", str(rev.Next))
		}
		if l := reg.Last; l == nil || l.Slot != "regional-report@2026-02-27T11:30:00Z[region=emea]" || l.State != "errored" ||
			l.Reason != "hex status ERRORED" || l.ElapsedSeconds == nil || *l.ElapsedSeconds != 52 {
			t.Errorf("regional-report last = %+v", l)
		}
		// 06:30 New York today (EST, UTC-5), after ticker's 11:30 firing.
		if str(reg.Next) != "2026-03-02T11:30:05Z" {
			t.Errorf("regional-report next = %s", str(reg.Next))
		}
		// Running since 10:10:04: 4m56s so far.
		if l := tick.Last; l == nil || l.State != "running" || l.ElapsedSeconds == nil || *l.ElapsedSeconds != 296 {
			t.Errorf("ticker last = %+v", l)
		}
		// Paused until 12:14: its next firing is the first one after the pause.
		if p := tick.Paused; p == nil || str(p.Since) != "2026-03-02T10:14:00Z" || str(p.Until) != "2026-03-02T12:14:00Z" ||
			p.By != "alice" || p.Reason != "backfill of the March data" {
			t.Errorf("ticker paused = %+v", p)
		}
		if str(tick.Next) != "2026-03-02T12:20:00Z" {
			t.Errorf("ticker next = %s, want 12:20, the first firing after its pause", str(tick.Next))
		}
		for _, s := range d.Schedules {
			if s.Paused != nil && s.Name != "ticker" {
				t.Errorf("%s paused = %+v, want null", s.Name, s.Paused)
			}
		}
		if l := night.Last; l == nil || l.Kind != "manual" || l.State != "triggered" || l.Slot != "nightly@2026-03-02T10:14:30Z+manual" {
			t.Errorf("nightly last = %+v", l)
		}
		// 03:00 Berlin (CET, UTC+1) on 2026-03-03, after ticker's firing.
		if str(night.Next) != "2026-03-03T02:00:05Z" {
			t.Errorf("nightly next = %s", str(night.Next))
		}
		if l := old.Last; l == nil || l.State != "skipped" || l.Reason != "missed while down: older than catchup 1h" || l.Triggered != nil || l.ElapsedSeconds != nil {
			t.Errorf("old-report last = %+v", l)
		}
		if old.Next != nil {
			t.Errorf("old-report (not in the config) next = %s", *old.Next)
		}
		// Sent in (10:14, 10:15]: 10:14:30. In (09:15, 10:15]: 09:20, 10:00:07, 10:00:12, 10:05:01, 10:10:02,
		// 10:12:01 (client ci's request), 10:14:30.
		if len(d.Budget) != 2 || d.Budget[0].Rule != "20/1m" || d.Budget[0].Used != 1 || d.Budget[0].Limit != 20 ||
			d.Budget[1].Rule != "60/1h" || d.Budget[1].Used != 7 || d.Budget[1].Limit != 50 || d.Budget[1].Reserve != 10 {
			t.Errorf("budget = %+v", d.Budget)
		}
		// The gateway's clients, in config order: ci asked twice in the hour (one queued).
		if len(d.Clients) != 2 || d.Clients[0].Name != "ci" || d.Clients[0].MaxPerHour != 10 || d.Clients[0].LastHour != 2 ||
			d.Clients[0].Queued != 1 || d.Clients[0].InFlight != 0 || d.Clients[0].Last == nil ||
			d.Clients[0].Last.Slot != "project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:14:45.500Z+manual" || d.Clients[0].Last.State != "planned" ||
			d.Clients[1].Name != "analysts" || d.Clients[1].LastHour != 0 || d.Clients[1].Last != nil {
			t.Errorf("clients = %+v", d.Clients)
		}
		for _, s := range d.Schedules {
			if strings.HasPrefix(s.Name, "project:") {
				t.Errorf("a gateway request for a project is listed as a schedule: %s", s.Name)
			}
		}
	})

	t.Run("database only", func(t *testing.T) {
		d := parse(t)
		var names []string
		next := map[string]string{}
		for _, s := range d.Schedules {
			names = append(names, s.Name)
			next[s.Name] = str(s.Next)
		}
		if got := strings.Join(names, ","); got != "legacy-export,nightly,old-report,regional-report,revenue-dashboard,ticker" {
			t.Fatalf("schedules = %s", got)
		}
		// Without a config, nothing is known to be removed.
		for _, s := range d.Schedules {
			if s.Removed {
				t.Errorf("%s marked removed without a config", s.Name)
			}
		}
		// The next slots recorded as planned, at their planned instants; ticker's is
		// inside its pause.
		want := map[string]string{"legacy-export": "null", "nightly": "null", "old-report": "null", "regional-report": "null",
			"revenue-dashboard": "2026-03-02T11:00:00Z", "ticker": "null"}
		for n, w := range want {
			if next[n] != w {
				t.Errorf("%s next = %s, want %s", n, next[n], w)
			}
		}
		if len(d.Budget) != 2 || d.Budget[0].Rule != "20/1m" || d.Budget[0].Used != 1 ||
			d.Budget[1].Rule != "60/1h" || d.Budget[1].Used != 7 || d.Budget[1].Limit != 60 {
			t.Errorf("default rules budget = %+v", d.Budget)
		}
		// Without a config, the clients the database knows.
		if len(d.Clients) != 1 || d.Clients[0].Name != "ci" || d.Clients[0].MaxPerHour != 0 || d.Clients[0].LastHour != 2 {
			t.Errorf("clients = %+v", d.Clients)
		}
	})
}

// TestStatusFullRule marks a rule that has no room left.
func TestStatusFullRule(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hexcron.db")
	db, err := state.Open(ctx, path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		sent := fixtureNow.Add(-time.Duration(50-i) * time.Second)
		if _, _, err := db.Admit(ctx, state.Holder{}, sent, sent.Add(-time.Hour), "", func([]state.Attempt) time.Duration { return 0 }); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	e, out, errb := testEnv(t, fixtureNow, nil)
	if code := run([]string{"status", "--db", path}, e); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, want := range []string{"No schedules", "20/1m  20 of 20 used  FULL", "60/1h  20 of 60 used\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestCommandsUsage covers --help, bad flags and a missing database for status,
// history and trigger.
func TestCommandsUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.db")
	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"status", "--help"}, exitOK, "Usage: hexcron status"},
		{[]string{"history", "-h"}, exitOK, "Usage: hexcron history"},
		{[]string{"trigger", "--help"}, exitOK, "Usage: hexcron trigger NAME"},
		{[]string{"status", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"history", "--limit", "x"}, exitUsage, "invalid value"},
		{[]string{"trigger", "--wait"}, exitUsage, "which schedule?"},
		{[]string{"trigger", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{[]string{"trigger", "x", "--param", "novalue"}, exitUsage, `"novalue" is not k=v`},
		{[]string{"status", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"history", "--since", "yesterday"}, exitUsage, "want a duration such as 24h or an RFC 3339 instant"},
		{[]string{"history", "--state", "completed,done"}, exitUsage,
			`unknown state "done": want one of planned, triggering, triggered, running, completed, errored, killed, timed_out, unable_to_allocate, unknown, skipped, failed`},
		{[]string{"status", "--db", missing}, exitError,
			"no database at " + missing + ": is this the daemon's --db? the service's is /var/lib/hexcron/hexcron.db"},
		{[]string{"history", "--db", missing}, exitError, "no database at " + missing},
		{[]string{"trigger", "ticker", "--config", fixtureConfig, "--db", missing}, exitError, "no database at " + missing},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			e, out, errb := testEnv(t, fixtureNow, map[string]string{"HEX_API_TOKEN": "hxtp_test"})
			if code := run(tc.args, e); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb)
			}
			if !strings.Contains(errb.String(), tc.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inStderr, errb)
			}
			if tc.code != exitOK && out.Len() > 0 {
				t.Errorf("stdout on error: %s", out)
			}
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Errorf("%s was created (stat: %v)", missing, err)
			}
		})
	}
}
