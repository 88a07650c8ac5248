package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hexcron/hexclient/hexsim"
)

const (
	checkHealthy  = "5a8591dd-4039-49df-9202-96385ba3eff8"
	checkMissing  = "9d1e3f4a-5b6c-4d7e-8f80-91a2b3c4d5e6"
	checkUnshared = "7b9c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
	checkDraft    = "8c0d2e3f-4a5b-4c6d-9e7f-8091a2b3c4d5"
)

// checkSetup serves hexsim (cfg) over loopback and writes a config whose base_url is
// the server in the given form ("" for the bare host, or "/api/v1", "/", ...).
func checkSetup(t *testing.T, cfg hexsim.Config, form, schedules string) (sim *hexsim.Server, confPath string) {
	t.Helper()
	sim = hexsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	confPath = filepath.Join(t.TempDir(), "schedules.yaml")
	yaml := "hex:\n  base_url: " + srv.URL + form + "\ndefaults:\n  timezone: Europe/Berlin\nschedules:\n" + schedules
	if err := os.WriteFile(confPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return sim, confPath
}

func runCheckCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	e, out, errb := testEnv(t, time.Now(), map[string]string{"HEX_API_TOKEN": "hxtp_check_test"})
	code = runCheck(context.Background(), e, args, nil)
	return code, out.String(), errb.String()
}

// TestCheckNamesEachFailingSchedule: against hexsim with a project that does not
// exist, one not shared with the token's user (hexsim's 403 choice) and one never
// published, `hexcron check` names each schedule with its reason and exits 1; it sends
// no RunProject.
func TestCheckNamesEachFailingSchedule(t *testing.T) {
	sim, conf := checkSetup(t, hexsim.Config{Projects: []hexsim.Project{
		{ID: checkHealthy, Title: "Revenue dashboard", Published: true},
		{ID: checkUnshared, Title: "Finance close", Published: true, Access: hexsim.AccessNone},
		{ID: checkDraft, Title: "Churn model", Published: false},
	}}, "", `  - {name: revenue, project: `+checkHealthy+`, cron: "0 * * * *"}
  - {name: missing, project: `+checkMissing+`, cron: "0 * * * *"}
  - {name: unshared, project: `+checkUnshared+`, cron: "0 * * * *"}
  - {name: draft, project: `+checkDraft+`, cron: "0 3 * * *"}
`)
	code, out, errOut := runCheckCmd(t, "--config", conf)
	if code != exitError {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitError, out, errOut)
	}
	for _, want := range []string{
		"token: ok: Hex accepted the token",
		"missing: FAIL: project " + checkMissing + ": does not exist (404 from Hex)",
		"unshared: FAIL: project " + checkUnshared + ": not visible to the token's user (403 from Hex: You do not have access to this project)",
		"draft: FAIL: project " + checkDraft + ": never published",
		"FAIL: 3 of 4 schedules would fail: missing, unshared, draft",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexpLine(out, `^revenue +Revenue dashboard \(5a8591dd\) +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +OK$`) {
		t.Errorf("no OK row for revenue:\n%s", out)
	}
	for _, r := range sim.Requests() {
		if r.Op == "RunProject" {
			t.Fatalf("check sent a RunProject: %+v", r)
		}
	}
}

// TestCheckCleanConfig: a config whose projects all exist, are shared and published
// exits 0, through each loopback base URL form; --json says the same.
func TestCheckCleanConfig(t *testing.T) {
	for _, form := range []string{"", "/", "/api/v1", "/api/v1/"} {
		t.Run("base_url form "+strings.TrimSpace("host"+form), func(t *testing.T) {
			sim, conf := checkSetup(t, hexsim.Config{Projects: []hexsim.Project{{ID: checkHealthy, Title: "Revenue dashboard", Published: true}}},
				form, `  - {name: revenue, project: `+checkHealthy+`, cron: "0 * * * *"}
  - {name: revenue-eu, project: `+checkHealthy+`, cron: "30 * * * *"}
`)
			code, out, errOut := runCheckCmd(t, "--config", conf)
			if code != exitOK || !strings.Contains(out, "OK: all 2 schedules can run (no RunProject was sent)") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			code, out, _ = runCheckCmd(t, "--config", conf, "--json")
			var r checkJSON
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil || code != exitOK || !r.OK || len(r.Failed) != 0 || len(r.Schedules) != 2 ||
				r.Schedules[0].Verdict != "ok" || r.Schedules[0].PublishedAt == nil || !strings.HasSuffix(r.BaseURL, "/api/v1") {
				t.Fatalf("exit %d, %v: %+v", code, err, r)
			}
			gets := 0
			for _, q := range sim.Requests() {
				if q.Op == "GetProject" {
					gets++
					if q.Path != "/api/v1/projects/"+checkHealthy || q.Status != http.StatusOK {
						t.Fatalf("GetProject %+v", q)
					}
				}
			}
			if gets != 2 { // one per run of check: the project is shared by both schedules
				t.Fatalf("%d GetProject requests for 2 runs of check, want 2", gets)
			}
		})
	}
}

// TestCheckWarnsButPasses: Hex's own schedule on a project is a warning (exit 0), and
// publish: true notes the "Can Edit" Hex needs.
func TestCheckWarnsButPasses(t *testing.T) {
	_, conf := checkSetup(t, hexsim.Config{Projects: []hexsim.Project{{ID: checkHealthy, Title: "Revenue", Published: true,
		Schedules: []hexsim.HexSchedule{{Cadence: "CUSTOM", Enabled: true, Cron: "0 * * * *"}}}}}, "",
		`  - {name: revenue, project: `+checkHealthy+`, cron: "0 * * * *", update_published_results: true}
`)
	code, out, _ := runCheckCmd(t, "--config", conf)
	if code != exitOK || !strings.Contains(out, "revenue: warning: project "+checkHealthy+": Hex also runs this project on its own schedule (CUSTOM 0 * * * * (UTC))") ||
		!strings.Contains(out, `revenue: note: update_published_results: Hex needs "Can Edit"`) || !regexpLine(out, `^revenue .* WARN$`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestCheckRefusedToken: a 401 names both causes Hex documents (a bad token, a base
// URL of the wrong region or tenant) and exits 1 without asking about any project.
func TestCheckRefusedToken(t *testing.T) {
	sim, conf := checkSetup(t, hexsim.Config{Tokens: []string{"hxtp_someone_else"}}, "/api/v1",
		`  - {name: revenue, project: `+checkHealthy+`, cron: "0 * * * *"}
`)
	code, out, _ := runCheckCmd(t, "--config", conf)
	if code != exitError || !strings.Contains(out, "token: FAIL: Hex refused the token (401): it is revoked, expired or mistyped, or") ||
		!strings.Contains(out, "is not your workspace's host") || !strings.Contains(out, "FAIL: the token or the base URL") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := len(sim.Requests()); n != 1 {
		t.Fatalf("%d requests, want the one ListProjects", n)
	}
}

// TestCheckDryRun: --dry-run sends one dryRun RunProject per project, creating no run;
// a project Hex refuses to run (hexsim's view-only choice) fails.
func TestCheckDryRun(t *testing.T) {
	sim, conf := checkSetup(t, hexsim.Config{Projects: []hexsim.Project{
		{ID: checkHealthy, Title: "Revenue", Published: true},
		{ID: checkUnshared, Title: "View only", Published: true, Access: hexsim.AccessRead},
	}}, "", `  - {name: a, project: `+checkHealthy+`, cron: "0 * * * *"}
  - {name: b, project: `+checkHealthy+`, cron: "30 * * * *"}
  - {name: c, project: `+checkUnshared+`, cron: "0 * * * *"}
`)
	code, out, errOut := runCheckCmd(t, "--config", conf, "--dry-run", "--db", filepath.Join(t.TempDir(), "none.db"))
	if code != exitError { // --db names a missing file: refused
		t.Fatalf("exit %d with a missing --db\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCheckCmd(t, "--config", conf, "--dry-run")
	if code != exitError || !strings.Contains(out, "c: FAIL: project "+checkUnshared+": dry run refused: 403 You do not have permission to run this project") ||
		!strings.Contains(out, "a: note: dry run accepted") || !strings.Contains(errOut, "the dry runs are counted in this process only") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	posts := 0
	for _, r := range sim.Requests() {
		if r.Op == "RunProject" {
			posts++
		}
	}
	if posts != 2 || len(sim.Runs()) != 0 {
		t.Fatalf("%d RunProject (want one per project: 2), %d runs (want none)", posts, len(sim.Runs()))
	}
}

func regexpLine(text, re string) bool {
	return regexp.MustCompile("(?m)" + re).MatchString(text)
}
