package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hexcron/hexclient/hexsim"
	"hexcron/planner"
	"hexcron/state"
)

const triggerProject = "5a8591dd-4039-49df-9202-96385ba3eff8"

// bodyRecorder serves hexsim and keeps the body of every RunProject request.
type bodyRecorder struct {
	h      http.Handler
	mu     sync.Mutex
	bodies []map[string]any
}

func (b *bodyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/runs") {
		data, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		b.mu.Lock()
		b.bodies = append(b.bodies, m)
		b.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	b.h.ServeHTTP(w, r)
}

// triggerSetup serves hexsim over loopback and writes a config pointing at it and an
// empty database. budget is the YAML of the budget's trigger rules.
func triggerSetup(t *testing.T, cfg hexsim.Config, rules string) (sim *hexsim.Server, rec *bodyRecorder, confPath, dbPath string) {
	t.Helper()
	sim = hexsim.New(cfg)
	rec = &bodyRecorder{h: sim}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	confPath = filepath.Join(dir, "schedules.yaml")
	yaml := `hex:
  base_url: ` + srv.URL + `/api/v1
budget:
  triggers: ` + rules + `
  reads:
    - {limit: 600, per: 1m}
defaults:
  window: 10m
schedules:
  - name: report
    project: ` + triggerProject + `
    cron: "0 6 * * *"
    params: {region: emea, limit: 5, source: hexcron}
  - name: regional
    project: 0f1e2d3c-4b5a-4789-8abc-def012345678
    cron: "30 6 * * *"
    matrix:
      region: [emea, amer]
`
	if err := os.WriteFile(confPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath = filepath.Join(dir, "hexcron.db")
	db, err := state.Open(context.Background(), dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return sim, rec, confPath, dbPath
}

// realEnv is an env on the wall clock with a Hex token in HEX_API_TOKEN. Output
// buffers are safe for the client's goroutines.
func realEnv(t *testing.T, token string) (*env, *syncBuf, *syncBuf) {
	out, errb := &syncBuf{}, &syncBuf{}
	empty := t.TempDir()
	return &env{stdout: out, stderr: errb, now: time.Now, getenv: func(k string) string {
		switch k {
		case "HEX_API_TOKEN":
			return token
		case "CONFIGURATION_DIRECTORY":
			return empty
		}
		return ""
	}}, out, errb
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runBounded runs hexcron with args, failing the test if it has not returned within
// limit (a hang guard, not a timing assertion).
func runBounded(t *testing.T, e *env, limit time.Duration, args ...string) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- run(args, e) }()
	select {
	case code := <-done:
		return code
	case <-time.After(limit):
		t.Fatalf("hexcron %v did not return within %s", args, limit)
		return -1
	}
}

// stdoutFields reads "key value" lines.
func stdoutFields(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		k, v, _ := strings.Cut(line, " ")
		m[k] = v
	}
	return m
}

func openTestDB(t *testing.T, path string) *state.DB {
	t.Helper()
	db, err := state.Open(context.Background(), path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestTriggerLoopback triggers one run against hexsim over real loopback HTTP and
// checks Hex's side (one run, the params sent) and the database's (the manual slot
// triggered with the run id, its project and timeout, one ledger attempt).
func TestTriggerLoopback(t *testing.T) {
	sim, rec, conf, dbPath := triggerSetup(t, hexsim.Config{Tokens: []string{"hxtp_test"}}, "[{limit: 20, per: 1m}, {limit: 60, per: 1h}]")
	e, out, errb := realEnv(t, "hxtp_test")
	start := time.Now()
	code := runBounded(t, e, time.Minute, "trigger", "report", "--config", conf, "--db", dbPath,
		"--param", "region=amer", "--param", "limit=10", "--param", "extra=x")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb)
	}
	f := stdoutFields(out.String())
	runs := sim.Runs()
	if len(runs) != 1 {
		t.Fatalf("hexsim has %d runs, want 1", len(runs))
	}
	var posts []hexsim.Request
	for _, r := range sim.Requests() {
		if r.Op == "RunProject" {
			posts = append(posts, r)
		}
	}
	if len(posts) != 1 || posts[0].RunCreated != runs[0].ID || posts[0].Status != http.StatusCreated {
		t.Fatalf("RunProject requests = %+v", posts)
	}
	if runs[0].ProjectID != triggerProject || runs[0].Trigger != "API" {
		t.Errorf("run = %+v", runs[0])
	}
	if f["run"] != runs[0].ID || !strings.Contains(f["url"], runs[0].ID) {
		t.Errorf("stdout %q does not name run %s", out, runs[0].ID)
	}
	// The schedule's params with --param on top: limit keeps its type (a number).
	if len(rec.bodies) != 1 {
		t.Fatalf("%d bodies", len(rec.bodies))
	}
	params, _ := rec.bodies[0]["inputParams"].(map[string]any)
	if params["region"] != "amer" || params["limit"] != float64(10) || params["source"] != "hexcron" || params["extra"] != "x" {
		t.Errorf("inputParams = %#v", params)
	}

	db := openTestDB(t, dbPath)
	key := f["slot"]
	if !strings.HasPrefix(key, "report@") || !strings.HasSuffix(key, "Z+manual") {
		t.Fatalf("slot %q", key)
	}
	s, err := db.Slot(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != state.StateTriggered || s.Kind != state.KindManual || s.RunID != runs[0].ID || s.RunURL != f["url"] ||
		s.Attempts != 1 || s.Triggered.IsZero() || s.Nominal.Before(start.Truncate(time.Second)) {
		t.Errorf("slot row = %+v", s)
	}
	// What the daemon needs to track the run whatever happens to the schedule.
	if s.Project != triggerProject || s.Timeout != planner.DefaultTimeout {
		t.Errorf("slot records project %q timeout %s; want %s and the schedule's %s", s.Project, s.Timeout, triggerProject, planner.DefaultTimeout)
	}
	atts, err := db.Attempts(context.Background(), start.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || atts[0].Slot != key || atts[0].Done.IsZero() || atts[0].Done.Before(atts[0].Sent) || !atts[0].Sent.Equal(s.Triggered) {
		t.Errorf("ledger = %+v (slot triggered %s)", atts, s.Triggered)
	}
	if strings.Contains(errb.String(), "hxtp_test") || strings.Contains(out.String(), "hxtp_test") {
		t.Error("the token was printed")
	}
}

// TestTriggerWait follows the run to its end with a short hexsim lifecycle and checks
// the recorded final state and the exit code.
func TestTriggerWait(t *testing.T) {
	for _, tc := range []struct {
		outcome hexsim.Outcome
		code    int
		state   state.State
	}{
		{hexsim.OutcomeCompleted, exitOK, state.StateCompleted},
		{hexsim.OutcomeErrored, exitError, state.StateErrored},
	} {
		t.Run(string(tc.outcome), func(t *testing.T) {
			t.Parallel()
			sim, _, conf, dbPath := triggerSetup(t, hexsim.Config{
				Runs: hexsim.Lifecycle{Pending: 300 * time.Millisecond, Running: 700 * time.Millisecond,
					Outcomes: map[hexsim.Outcome]float64{tc.outcome: 1}},
			}, "[{limit: 20, per: 1m}]")
			e, out, errb := realEnv(t, "hxtp_anyone")
			code := runBounded(t, e, time.Minute, "trigger", "report", "--wait", "--timeout", "40s", "--config", conf, "--db", dbPath)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errb)
			}
			f := stdoutFields(out.String())
			if f["status"] != string(tc.outcome) {
				t.Errorf("stdout status %q, want %s:\n%s", f["status"], tc.outcome, out)
			}
			if !strings.Contains(errb.String(), "is PENDING") && !strings.Contains(errb.String(), "is RUNNING") {
				t.Errorf("stderr does not show the run's progress:\n%s", errb)
			}
			runs := sim.Runs()
			if len(runs) != 1 || runs[0].Status != string(tc.outcome) {
				t.Fatalf("hexsim runs = %+v", runs)
			}
			s, err := openTestDB(t, dbPath).Slot(context.Background(), f["slot"])
			if err != nil {
				t.Fatal(err)
			}
			if s.State != tc.state || s.RunID != runs[0].ID || s.Reason != "hex status "+string(tc.outcome) ||
				s.Elapsed <= 0 || s.Ended.IsZero() || s.Ended.Before(s.Triggered) {
				t.Errorf("slot row = %+v", s)
			}
		})
	}
}

// TestTriggerWaitsForBudget fills the 2/2s rule in the ledger (as another process
// would) and checks that trigger says it waits, and that its attempt was sent only
// after the rule's window had passed, by the recorded times.
func TestTriggerWaitsForBudget(t *testing.T) {
	sim, _, conf, dbPath := triggerSetup(t, hexsim.Config{}, "[{limit: 20, per: 1m}, {limit: 2, per: 2s}]")
	ctx := context.Background()
	db, err := state.Open(ctx, dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var filled []state.Attempt
	for range 2 {
		now := time.Now()
		id, wait, err := db.Admit(ctx, state.Holder{}, now, now.Add(-time.Hour), "", func([]state.Attempt) time.Duration { return 0 })
		if err != nil || wait != 0 {
			t.Fatal(err, wait)
		}
		if err := db.Complete(ctx, id, now); err != nil {
			t.Fatal(err)
		}
	}
	if filled, err = db.Attempts(ctx, time.Now().Add(-time.Minute)); err != nil || len(filled) != 2 {
		t.Fatal(err, filled)
	}
	db.Close()

	e, out, errb := realEnv(t, "hxtp_anyone")
	code := runBounded(t, e, time.Minute, "trigger", "report", "--config", conf, "--db", dbPath)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb)
	}
	stderr := errb.String()
	notice := strings.Index(stderr, "hexcron trigger: waiting for trigger budget: 2/2s rule full until ")
	if notice < 0 {
		t.Fatalf("stderr does not say it waits for the budget:\n%s", stderr)
	}
	if len(sim.Runs()) != 1 {
		t.Fatalf("hexsim runs = %d", len(sim.Runs()))
	}
	atts, err := openTestDB(t, dbPath).Attempts(ctx, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 3 || atts[2].Slot != stdoutFields(out.String())["slot"] {
		t.Fatalf("ledger = %+v", atts)
	}
	// Two attempts done at filled[1].Done fill the 2/2s rule until at least 2s later.
	if earliest := filled[1].Done.Add(2 * time.Second); atts[2].Sent.Before(earliest) {
		t.Errorf("trigger sent at %s, before the 2/2s rule had room (%s)", atts[2].Sent.Format(time.StampMilli), earliest.Format(time.StampMilli))
	}
}

func TestTriggerRefusals(t *testing.T) {
	sim, _, conf, dbPath := triggerSetup(t, hexsim.Config{Faults: hexsim.Faults{At: map[int]hexsim.Fault{1: hexsim.FaultUnprocessable}}},
		"[{limit: 20, per: 1m}]")

	t.Run("no token", func(t *testing.T) {
		e, _, errb := realEnv(t, "")
		if code := run([]string{"trigger", "report", "--config", conf, "--db", dbPath}, e); code != exitError {
			t.Errorf("exit %d", code)
		}
		for _, want := range []string{"$CREDENTIALS_DIRECTORY/hex-token", "$HEX_API_TOKEN", "hex.token_file"} {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, errb)
			}
		}
	})
	t.Run("unknown schedule", func(t *testing.T) {
		e, _, errb := realEnv(t, "hxtp_anyone")
		if code := run([]string{"trigger", "nope", "--config", conf, "--db", dbPath}, e); code != exitUsage {
			t.Errorf("exit %d", code)
		}
		if !strings.Contains(errb.String(), `no schedule "nope"`) || !strings.Contains(errb.String(), "report, regional") {
			t.Errorf("stderr:\n%s", errb)
		}
	})
	t.Run("matrix needs a combination", func(t *testing.T) {
		e, _, errb := realEnv(t, "hxtp_anyone")
		if code := run([]string{"trigger", "regional", "--config", conf, "--db", dbPath}, e); code != exitUsage {
			t.Errorf("exit %d", code)
		}
		if !strings.Contains(errb.String(), "--param region=emea|amer") {
			t.Errorf("stderr:\n%s", errb)
		}
	})
	if n := len(sim.Requests()); n != 0 {
		t.Fatalf("refused before sending, yet hexsim saw %d requests", n)
	}
	t.Run("hex refuses", func(t *testing.T) {
		e, out, errb := realEnv(t, "hxtp_anyone")
		if code := runBounded(t, e, time.Minute, "trigger", "report", "--config", conf, "--db", dbPath); code != exitError {
			t.Fatalf("exit %d; stderr:\n%s", code, errb)
		}
		if out.String() != "" {
			t.Errorf("stdout: %s", out)
		}
		slots, err := openTestDB(t, dbPath).History(context.Background(), state.Filter{Schedule: "report"})
		if err != nil || len(slots) != 1 {
			t.Fatal(err, slots)
		}
		if s := slots[0]; s.State != state.StateFailed || !strings.Contains(s.Reason, "422") || s.Kind != state.KindManual || s.Attempts != 1 {
			t.Errorf("slot = %+v", s)
		}
		if len(sim.Runs()) != 0 {
			t.Errorf("hexsim runs: %+v", sim.Runs())
		}
	})
}

// TestTriggerRecordTolerant: a daemon on the same database may record the run's end
// first; recording the same end again is silent, a different one is a note, never an
// error.
func TestTriggerRecordTolerant(t *testing.T) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "hexcron.db")
	db, err := state.Open(ctx, dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := fixtureNow
	key := "report@2026-03-02T10:15:00Z+manual"
	if _, err := db.PlanSlot(ctx, state.Slot{Key: key, Kind: state.KindManual}, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Admit(ctx, state.Holder{}, now, now.Add(-time.Hour), key, func([]state.Attempt) time.Duration { return 0 }); err != nil {
		t.Fatal(err)
	}
	if err := db.Transition(ctx, key, state.StateTriggered, state.Update{At: now, RunID: "r1", Triggered: now}); err != nil {
		t.Fatal(err)
	}
	// The daemon's poll got there first.
	if err := db.Transition(ctx, key, state.StateCompleted, state.Update{At: now.Add(time.Minute), Reason: "hex status COMPLETED", Elapsed: time.Minute}); err != nil {
		t.Fatal(err)
	}
	e, _, errb := testEnv(t, now, nil)
	mt := &manualTrigger{e: e, db: db}
	mt.record(key, state.StateRunning, state.Update{At: now.Add(2 * time.Minute)})
	mt.record(key, state.StateCompleted, state.Update{At: now.Add(2 * time.Minute), Reason: "hex status COMPLETED"})
	if errb.Len() != 0 {
		t.Errorf("same end recorded twice printed: %s", errb)
	}
	mt.record(key, state.StateErrored, state.Update{At: now.Add(2 * time.Minute)})
	if !strings.Contains(errb.String(), "note: the database already records slot "+key+" as completed") {
		t.Errorf("stderr: %s", errb)
	}
	if s, err := db.Slot(ctx, key); err != nil || s.State != state.StateCompleted {
		t.Errorf("slot = %+v, %v", s, err)
	}
}

// TestTriggerWaitTimeout stops waiting for a run that never ends without cancelling
// it, and leaves its slot live for the daemon.
func TestTriggerWaitTimeout(t *testing.T) {
	sim, _, conf, dbPath := triggerSetup(t, hexsim.Config{
		Runs: hexsim.Lifecycle{Pending: 100 * time.Millisecond, Outcomes: map[hexsim.Outcome]float64{hexsim.OutcomeStuck: 1}},
	}, "[{limit: 20, per: 1m}]")
	e, out, errb := realEnv(t, "hxtp_anyone")
	code := runBounded(t, e, time.Minute, "trigger", "report", "--wait", "--timeout", "1500ms", "--config", conf, "--db", dbPath)
	if code != exitError {
		t.Fatalf("exit %d; stderr:\n%s", code, errb)
	}
	if !strings.Contains(errb.String(), "still RUNNING after 1.5s; stopped waiting (the run is not cancelled") {
		t.Errorf("stderr:\n%s", errb)
	}
	runs := sim.Runs()
	if len(runs) != 1 || runs[0].Status != hexsim.StatusRunning || runs[0].Cancelled {
		t.Errorf("hexsim runs = %+v", runs)
	}
	s, err := openTestDB(t, dbPath).Slot(context.Background(), stdoutFields(out.String())["slot"])
	if err != nil || s.State != state.StateRunning || s.Started.IsZero() {
		t.Errorf("slot = %+v, %v", s, err)
	}
}

// TestTriggerView: a schedule with a view sends Hex's viewId (and no inputParams);
// --param with it is a usage error, as Hex refuses viewId with inputParams.
func TestTriggerView(t *testing.T) {
	sim := hexsim.New(hexsim.Config{})
	rec := &bodyRecorder{h: sim}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	dir := t.TempDir()
	confPath := filepath.Join(dir, "schedules.yaml")
	if err := os.WriteFile(confPath, []byte("hex:\n  base_url: "+srv.URL+"\nschedules:\n  - {name: v, project: "+triggerProject+
		", cron: \"0 6 * * *\", view: saved-view-1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "hexcron.db")
	db, err := state.Open(context.Background(), dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	e, _, errb := realEnv(t, "hxtp_view")
	if code := runBounded(t, e, 30*time.Second, "trigger", "v", "--config", confPath, "--db", dbPath, "--param", "region=emea"); code != exitUsage ||
		!strings.Contains(errb.String(), "Hex refuses viewId together with inputParams") {
		t.Fatalf("exit %d: %s", code, errb)
	}
	e, _, errb = realEnv(t, "hxtp_view")
	if code := runBounded(t, e, 30*time.Second, "trigger", "v", "--config", confPath, "--db", dbPath); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bodies) != 1 || rec.bodies[0]["viewId"] != "saved-view-1" || rec.bodies[0]["inputParams"] != nil {
		t.Fatalf("RunProject bodies %v", rec.bodies)
	}
}
