package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hexcron/state"
)

func TestHistoryGolden(t *testing.T) {
	dbPath := fillFixtureDB(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"history.txt", []string{"--db", dbPath, "--config", fixtureConfig, "--since", "0"}},
		{"history.json", []string{"--db", dbPath, "--since", "0", "--json"}},
		{"history-utc-24h.txt", []string{"--db", dbPath}}, // default --since 24h, no config: UTC
		{"history-none.txt", []string{"--db", dbPath, "--schedule", "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, out, errb := testEnv(t, fixtureNow, nil)
			if code := run(append([]string{"history"}, tc.args...), e); code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, errb)
			}
			if errb.Len() > 0 {
				t.Errorf("stderr: %s", errb)
			}
			golden(t, tc.name, out.Bytes())
		})
	}
}

// historyRecord is history --json's record, decoded strictly.
type historyRecord struct {
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

func historyJSONOf(t *testing.T, dbPath string, args ...string) []historyRecord {
	t.Helper()
	e, out, errb := testEnv(t, fixtureNow, nil)
	if code := run(append([]string{"history", "--db", dbPath, "--json"}, args...), e); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	var recs []historyRecord
	dec := json.NewDecoder(out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&recs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	return recs
}

func slotsOfRecords(recs []historyRecord) string {
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.Slot)
	}
	return strings.Join(keys, " ")
}

// TestHistoryJSONFields checks every field of a few records against what the
// fixture wrote, and the time parsing of every record.
func TestHistoryJSONFields(t *testing.T) {
	dbPath := fillFixtureDB(t)
	recs := historyJSONOf(t, dbPath, "--since", "0")
	if len(recs) != 12 {
		t.Fatalf("%d records, want 12: %s", len(recs), slotsOfRecords(recs))
	}
	var prev time.Time
	for i, r := range recs {
		if r.Nominal == nil {
			t.Fatalf("record %d has no nominal", i)
		}
		n, err := time.Parse(time.RFC3339, *r.Nominal)
		if err != nil {
			t.Fatalf("record %d nominal: %v", i, err)
		}
		if i > 0 && n.After(prev) {
			t.Errorf("record %d (%s) is newer than the one before: not newest first", i, r.Slot)
		}
		prev = n
		for _, p := range []*string{r.Planned, r.Triggered, r.Started, r.Ended, r.LastAttempt} {
			if p != nil {
				if _, err := time.Parse(time.RFC3339, *p); err != nil {
					t.Errorf("record %s: %v", r.Slot, err)
				}
			}
		}
	}
	by := map[string]historyRecord{}
	for _, r := range recs {
		by[r.Slot] = r
	}
	str := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}

	r := by["revenue-dashboard@2026-03-02T10:00:00Z"]
	if r.Schedule != "revenue-dashboard" || r.Kind != "scheduled" || r.Matrix != nil || r.State != "completed" ||
		r.Reason != "hex status COMPLETED" || str(r.Nominal) != "2026-03-02T10:00:00Z" || str(r.Planned) != "2026-03-02T10:00:07Z" ||
		str(r.Triggered) != "2026-03-02T10:00:07Z" || str(r.Started) != "2026-03-02T10:00:09Z" ||
		str(r.Ended) != "2026-03-02T10:04:21.5Z" || r.ElapsedSeconds == nil || *r.ElapsedSeconds != 252.5 ||
		r.Attempts != 1 || str(r.LastAttempt) != "2026-03-02T10:00:07Z" || r.RunID != "9c1d0e8e-0a53-4b67-8f4f-0c2a6b2f9002" ||
		r.RunURL != runURL("5a8591dd-4039-49df-9202-96385ba3eff8", r.RunID) || r.TraceID != "trace-9002" || r.ProjectVersion != "2" {
		t.Errorf("revenue-dashboard 10:00 = %+v", r)
	}

	r = by["ticker@2026-03-02T10:00:00Z"]
	if r.State != "failed" || r.Reason != "run project: 422 Unprocessable Entity: input parameter\nnot found: region" ||
		r.TraceID != "trace-422" || r.RunID != "" || r.RunURL != "" || r.Triggered != nil || r.Attempts != 1 || r.ElapsedSeconds != nil || r.ProjectVersion != "" {
		t.Errorf("ticker 10:00 = %+v", r)
	}

	r = by["regional-report@2026-02-27T11:30:00Z[region=emea]"]
	if r.Matrix["region"] != "emea" || len(r.Matrix) != 1 || r.State != "errored" || *r.ElapsedSeconds != 52 {
		t.Errorf("regional-report emea = %+v", r)
	}

	r = by["nightly@2026-03-02T10:14:30Z+manual"]
	if r.Kind != "manual" || r.State != "triggered" || r.Ended != nil || r.ElapsedSeconds != nil || str(r.Triggered) != "2026-03-02T10:14:30Z" {
		t.Errorf("nightly manual = %+v", r)
	}

	r = by["ticker@2026-03-02T10:20:00Z"]
	if r.State != "planned" || str(r.Planned) != "2026-03-02T10:20:05Z" || r.Attempts != 0 || r.LastAttempt != nil || r.Triggered != nil {
		t.Errorf("ticker 10:20 planned = %+v", r)
	}

	r = by["old-report@2026-03-01T08:00:00Z"]
	if r.State != "skipped" || r.Reason != "missed while down: older than catchup 1h" || r.Attempts != 0 || r.Client != "" {
		t.Errorf("old-report = %+v", r)
	}

	r = by["project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:12:00.250Z+manual"]
	if r.Client != "ci" || r.Kind != "manual" || r.Schedule != "project:5a8591dd-4039-49df-9202-96385ba3eff8" || r.State != "completed" ||
		str(r.Nominal) != "2026-03-02T10:12:00.25Z" || r.RunID != "3c2b1a00-9e8d-4c7b-a6f5-e4d3c2b10050" {
		t.Errorf("gateway request = %+v", r)
	}
}

func TestHistoryFilters(t *testing.T) {
	dbPath := fillFixtureDB(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // slot keys, newest first
	}{
		{"schedule", []string{"--since", "0", "--schedule", "ticker"},
			"ticker@2026-03-02T10:20:00Z ticker@2026-03-02T10:10:00Z ticker@2026-03-02T10:00:00Z"},
		{"one state", []string{"--since", "0", "--state", "completed"},
			"project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:12:00.250Z+manual revenue-dashboard@2026-03-02T10:00:00Z revenue-dashboard@2026-03-02T09:00:00Z regional-report@2026-02-27T11:30:00Z[region=amer]"},
		{"states comma and repeated", []string{"--since", "0", "--state", "failed,skipped", "--state", "errored"},
			"ticker@2026-03-02T10:00:00Z old-report@2026-03-01T08:00:00Z regional-report@2026-02-27T11:30:00Z[region=emea]"},
		// Nominal at or after 09:15; equal nominal instants by slot key, descending.
		{"since duration", []string{"--since", "1h", "--state", "completed,running,failed"},
			"project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:12:00.250Z+manual ticker@2026-03-02T10:10:00Z ticker@2026-03-02T10:00:00Z revenue-dashboard@2026-03-02T10:00:00Z"},
		{"since instant", []string{"--since", "2026-03-01T00:00:00Z", "--schedule", "old-report"},
			"old-report@2026-03-01T08:00:00Z"},
		{"since excludes", []string{"--since", "2026-03-01T08:00:01Z", "--schedule", "old-report"}, ""},
		{"client", []string{"--since", "0", "--client", "ci"},
			"project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:14:45.500Z+manual project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:12:00.250Z+manual"},
		{"unknown client", []string{"--since", "0", "--client", "cd"}, ""},
		{"limit", []string{"--since", "0", "--limit", "2"},
			"revenue-dashboard@2026-03-02T11:00:00Z ticker@2026-03-02T10:20:00Z"},
		{"default 24h", nil,
			"revenue-dashboard@2026-03-02T11:00:00Z ticker@2026-03-02T10:20:00Z project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:14:45.500Z+manual nightly@2026-03-02T10:14:30Z+manual " +
				"project:5a8591dd-4039-49df-9202-96385ba3eff8@2026-03-02T10:12:00.250Z+manual ticker@2026-03-02T10:10:00Z ticker@2026-03-02T10:00:00Z revenue-dashboard@2026-03-02T10:00:00Z revenue-dashboard@2026-03-02T09:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := slotsOfRecords(historyJSONOf(t, dbPath, tc.args...)); got != tc.want {
				t.Errorf("history %v:\n got %s\nwant %s", tc.args, got, tc.want)
			}
		})
	}
}

// TestHistorySlotStory: history --slot tells one slot's story from the database: where
// and why it was planned, each attempt the ledger keeps, why it waited, that its run
// was adopted, and how it ended; --json carries the same; an unknown key is an error,
// and --slot takes no filters.
func TestHistorySlotStory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hexcron.db")
	db, err := state.Open(ctx, path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const key = "revenue-dashboard@2026-03-02T09:00:00Z"
	nominal := at("09:00:00")
	_, err = db.PlanSlot(ctx, state.Slot{Key: key, Planned: nominal.Add(40 * time.Second), Project: "5a8591dd-4039-49df-9202-96385ba3eff8",
		PlanReason: "rule 60/1h full around the nominal instant (41 before, 19 placed ahead of it)"}, nominal.Add(-10*time.Minute))
	must(err)
	for _, sent := range []time.Time{nominal.Add(52 * time.Second), nominal.Add(70 * time.Second)} {
		id, _, err := db.Admit(ctx, state.Holder{}, sent, sent.Add(-time.Hour), key, func([]state.Attempt) time.Duration { return 0 })
		must(err)
		must(db.Complete(ctx, id, sent.Add(1500*time.Millisecond)))
	}
	must(db.Transition(ctx, key, state.StateTriggered, state.Update{At: nominal.Add(85 * time.Second), RunID: "9c1d0e8e-0a53-4b67-8f4f-0c2a6b2f9009",
		RunURL: runURL("5a8591dd-4039-49df-9202-96385ba3eff8", "9c1d0e8e-0a53-4b67-8f4f-0c2a6b2f9009"), TraceID: "trace-77",
		Triggered: nominal.Add(52 * time.Second), Adopted: true, WaitReason: "the trigger budget (rule 20/1m full)"}))
	must(db.Transition(ctx, key, state.StateRunning, state.Update{At: nominal.Add(2 * time.Minute), Started: nominal.Add(90 * time.Second), ProjectVersion: "7"}))
	must(db.Transition(ctx, key, state.StateCompleted, state.Update{At: nominal.Add(6 * time.Minute), Reason: "hex status COMPLETED",
		Ended: nominal.Add(5*time.Minute + 40*time.Second), Elapsed: 4*time.Minute + 10*time.Second}))
	db.Close()

	e, out, errb := testEnv(t, fixtureNow, nil)
	if code := run([]string{"history", "--db", path, "--config", fixtureConfig, "--slot", key}, e); code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errb)
	}
	golden(t, "history-slot.txt", out.Bytes())

	e, out, errb = testEnv(t, fixtureNow, nil)
	if code := run([]string{"history", "--db", path, "--slot", key, "--json"}, e); code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errb)
	}
	var story struct {
		historyRecord
		PlanReason string `json:"plan_reason"`
		WaitReason string `json:"wait_reason"`
		Adopted    bool   `json:"adopted"`
		Ledger     []struct {
			Sent     *string `json:"sent"`
			Answered *string `json:"answered"`
		} `json:"ledger"`
	}
	dec := json.NewDecoder(out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&story); err != nil {
		t.Fatal(err)
	}
	if story.Slot != key || !story.Adopted || story.WaitReason == "" || !strings.HasPrefix(story.PlanReason, "rule 60/1h") ||
		len(story.Ledger) != 2 || story.Ledger[1].Sent == nil || *story.Ledger[1].Sent != "2026-03-02T09:01:10Z" || story.State != "completed" {
		t.Errorf("story = %+v", story)
	}

	e, _, errb = testEnv(t, fixtureNow, nil)
	if code := run([]string{"history", "--db", path, "--slot", "nope@2026-03-02T09:00:00Z"}, e); code != exitError ||
		!strings.Contains(errb.String(), "no slot nope@2026-03-02T09:00:00Z in the database (never recorded, or older than state.retention and pruned)") {
		t.Errorf("unknown slot: exit %d, stderr %s", code, errb)
	}
	e, _, errb = testEnv(t, fixtureNow, nil)
	if code := run([]string{"history", "--db", path, "--slot", key, "--schedule", "x"}, e); code != exitUsage {
		t.Errorf("--slot with --schedule: exit %d, stderr %s", code, errb)
	}
}
