package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
	"hexcron/state"
)

const gwProject = "5a8591dd-4039-49df-9202-96385ba3eff8"

// gwConfig has a budget of 3 triggers a minute and 6 an hour, one schedule (priority
// 5) at 00:05 with a 30s window, and a gateway client ci (priority 0, wait 40s, at
// most quota requests an hour; quota 0: no cap).
func gwConfig(quota string) string {
	return `budget:
  triggers: [{limit: 3, per: 1m}, {limit: 6, per: 1h}]
schedules:
  - name: important
    project: 11111111-1111-4111-8111-111111111111
    cron: "5 0 * * *"
    window: 30s
    priority: 5
  - name: matrixed
    project: 22222222-2222-4222-8222-222222222222
    cron: "0 12 1 1 *"
    matrix: {region: [emea, amer]}
    params: {limit: 10}
gateway:
  listen: 127.0.0.1:8470
  clients:
    - name: ci
      token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      projects: [` + gwProject + `]
      schedules: [matrixed]
      wait: 40s
` + quota
}

// gwSim is hexsim with the config's caps, runs that take ten minutes.
func gwSim() hexsim.Config {
	return hexsim.Config{Seed: 1,
		Limits: hexsim.Limits{Trigger: []hexsim.Rule{{Limit: 3, Per: time.Minute}, {Limit: 6, Per: time.Hour}}},
		Runs:   hexsim.Lifecycle{Pending: time.Second, Running: 10 * time.Minute, Outcomes: map[hexsim.Outcome]float64{hexsim.OutcomeCompleted: 1}}}
}

// startGW starts the env's daemon with the gateway path on (its database).
func (e *queueEnv) startGW() {
	e.t.Helper()
	dm := e.pipe.daemon(e.t, e.db, e.conf, e.path, e.logger, 1, func(c *Config) { c.Gateway = e.db })
	ctx, cancel := context.WithCancel(context.Background())
	e.dm, e.cancel, e.done, e.reload, e.up = dm, cancel, make(chan error, 1), make(chan struct{}), true
	go func() { e.done <- dm.Run(ctx, e.reload) }()
	e.t.Cleanup(func() {
		if e.up {
			e.stop()
		}
	})
	for dm.gw == nil || !dm.gw.open.Load() {
		time.Sleep(time.Millisecond)
	}
}

func (e *queueEnv) submit(r Request) Reply {
	e.t.Helper()
	out, err := e.dm.Submit(context.Background(), r)
	if err != nil {
		e.t.Fatalf("Submit: %v", err)
	}
	return out
}

func projectRun(key string) Request {
	return Request{Client: "ci", Project: gwProject, Body: hexclient.RunRequest{InputParams: map[string]any{"a": 1}}, Key: key, Hash: "h", Wait: -1}
}

// runsCreated counts hexsim's runs.
func (e *queueEnv) runsCreated() int { return len(e.sim.Runs()) }

// sim429s counts the RunProject 429s hexsim answered.
func (e *queueEnv) sim429s() int {
	n := 0
	for _, r := range e.sim.Requests() {
		if r.Op == "RunProject" && r.Status == 429 {
			n++
		}
	}
	return n
}

// TestGatewaySubmitTriggers: a request with room is triggered at once; its slot is a
// manual slot of its client with Hex's run; the run is found by its client only, and
// cancelled through the daemon.
func TestGatewaySubmitTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQueueEnv(t, gwConfig(""), gwSim(), 0)
		defer e.dumpLog()
		e.startGW()
		out := e.submit(projectRun(""))
		if out.Kind != ReplyTriggered || out.Slot.RunID == "" {
			t.Fatalf("outcome %+v", out)
		}
		s := e.slot(out.Slot.Key)
		if s.Client != "ci" || s.Kind != state.KindManual || s.Schedule != "project:"+gwProject || s.Project != gwProject ||
			s.State != state.StateTriggered || !strings.HasSuffix(s.Key, "+manual") {
			t.Fatalf("slot %+v", s)
		}
		if run, ok := e.sim.Run(s.RunID); !ok || run.ProjectID != gwProject {
			t.Fatalf("hexsim has no run %s", s.RunID)
		}
		if got, err := e.dm.RunOf(context.Background(), "ci", s.RunID); err != nil || got.Key != s.Key {
			t.Fatalf("RunOf = %+v, %v", got, err)
		}
		if _, err := e.dm.RunOf(context.Background(), "cd", s.RunID); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("RunOf by another client = %v", err)
		}
		if _, err := e.dm.Cancel(context.Background(), "ci", s.RunID); err != nil {
			t.Fatal(err)
		}
		if run, _ := e.sim.Run(s.RunID); !run.Cancelled {
			t.Error("hexsim's run was not cancelled")
		}
		if got := e.slot(s.Key); got.State != state.StateKilled || !strings.Contains(got.Reason, "client ci") {
			t.Errorf("after cancel: %+v", got)
		}
		if _, err := e.dm.Cancel(context.Background(), "ci", s.RunID); !errors.Is(err, ErrRunEnded) {
			t.Errorf("cancel again = %v", err)
		}
		// A schedule's run: its params, the matrix value picked, an override.
		out = e.submit(Request{Client: "ci", Schedule: "matrixed", Params: map[string]any{"region": "amer", "limit": 3}, Wait: -1})
		if out.Kind != ReplyTriggered {
			t.Fatalf("schedule run: %+v", out)
		}
		if s := e.slot(out.Slot.Key); s.Schedule != "matrixed" || s.Matrix["region"] != "amer" || s.Project != "22222222-2222-4222-8222-222222222222" {
			t.Errorf("schedule run's slot %+v", s)
		}
		var rerr *RequestError
		if _, err := e.dm.Submit(context.Background(), Request{Client: "ci", Schedule: "matrixed", Wait: -1}); !errors.As(err, &rerr) ||
			!strings.Contains(rerr.Reason, "pick the combination with params region (one of emea, amer)") {
			t.Errorf("no matrix pick: %v", err)
		}
		if _, err := e.dm.Submit(context.Background(), Request{Client: "ci", Schedule: "nope", Wait: -1}); !errors.As(err, &rerr) || !rerr.NotFound {
			t.Errorf("unknown schedule: %v", err)
		}
		e.stop()
	})
}

// TestGatewayNoRoom: with the minute's budget used, a request that cannot be admitted
// within its wait gets the ledger's prediction at once; without a key it is recorded
// skipped, with one it stays queued, is triggered at its turn, and a retry with the key
// gets that run. Hex never answers 429.
func TestGatewayNoRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQueueEnv(t, gwConfig(""), gwSim(), 0)
		defer e.dumpLog()
		e.startGW()
		for i := range 3 {
			if out := e.submit(projectRun("")); out.Kind != ReplyTriggered {
				t.Fatalf("request %d: %+v", i, out)
			}
		}
		start := time.Now()
		r := projectRun("")
		r.Wait = 10 * time.Second
		out := e.submit(r)
		if out.Kind != ReplyNoRoom || out.Queued {
			t.Fatalf("no key: %+v", out)
		}
		// The three triggers count until 2s after each answer: the fourth fits a minute
		// and the skew margin after the first.
		if out.RetryAfter < 55*time.Second || out.RetryAfter > 65*time.Second {
			t.Errorf("Retry-After %s, want about 1m (the minute rule frees then)", out.RetryAfter)
		}
		if time.Since(start) > time.Second {
			t.Errorf("the 429 took %s: it is known at once", time.Since(start))
		}
		if s := e.slot(out.Slot.Key); s.State != state.StateSkipped || !strings.Contains(s.Reason, "answered 429") {
			t.Errorf("unkeyed request's slot %+v", s)
		}
		keyed := projectRun("build-7")
		keyed.Wait = 10 * time.Second
		out = e.submit(keyed)
		if out.Kind != ReplyNoRoom || !out.Queued || out.RetryAfter < 55*time.Second {
			t.Fatalf("keyed: %+v", out)
		}
		if s := e.slot(out.Slot.Key); s.State != state.StatePlanned {
			t.Fatalf("keyed request's slot %+v", s)
		}
		time.Sleep(out.RetryAfter)
		again := e.submit(keyed)
		if again.Kind != ReplyTriggered || again.Slot.Key != out.Slot.Key {
			t.Fatalf("retry with the key: %+v (want the queued slot %s triggered)", again, out.Slot.Key)
		}
		if e.runsCreated() != 4 || e.sim429s() != 0 {
			t.Errorf("hexsim: %d runs, %d 429s; want 4 and 0", e.runsCreated(), e.sim429s())
		}
		e.stop()
	})
}

// TestGatewayNeverPushesOutHigherPriority: a request of a lower-priority client never
// takes a trigger a higher-priority schedule needs in its window, even one before that
// window (the hour's budget): the schedule fires in its window, and the request is
// told to come back when the schedule's window has closed. Without the check the plan
// places the request first (its deadline is earlier) and the schedule cannot fit.
func TestGatewayNeverPushesOutHigherPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQueueEnv(t, gwConfig(""), gwSim(), 0)
		defer e.dumpLog()
		e.startGW()
		// Five of the hour's six: the schedule (00:05:00, 30s window, priority 5) needs the last.
		for i := range 5 {
			if i == 3 {
				time.Sleep(65 * time.Second)
			}
			if out := e.submit(projectRun("")); out.Kind != ReplyTriggered {
				t.Fatalf("request %d: %+v", i, out)
			}
		}
		time.Sleep(time.Date(2000, 1, 1, 0, 4, 50, 0, time.UTC).Sub(time.Now()))
		r := projectRun("")
		r.Wait = 15 * time.Second // deadline 00:05:05, before the schedule's 00:05:30
		out := e.submit(r)
		if out.Kind != ReplyNoRoom || out.RetryAfter != 40*time.Second || !strings.Contains(out.Reason, "important@2000-01-01T00:05:00Z (priority 5") {
			t.Fatalf("low-priority request at 00:04:50: %+v; want 429 until the schedule's window closes (40s)", out)
		}
		time.Sleep(time.Minute)
		s := e.slot("important@2000-01-01T00:05:00Z")
		if s.RunID == "" || s.Triggered.After(time.Date(2000, 1, 1, 0, 5, 30, 0, time.UTC)) {
			t.Errorf("the schedule's slot: %+v", s)
		}
		if e.sim429s() != 0 || e.runsCreated() != 6 {
			t.Errorf("hexsim: %d runs, %d 429s; want 6 and 0", e.runsCreated(), e.sim429s())
		}
		e.stop()
	})
}

// TestGatewayQuota: beyond max_per_hour a request is refused with the time until the
// oldest of the hour's requests leaves it; nothing is recorded for it.
func TestGatewayQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQueueEnv(t, gwConfig("      max_per_hour: 2\n"), gwSim(), 0)
		defer e.dumpLog()
		e.startGW()
		first := time.Now()
		e.submit(projectRun(""))
		time.Sleep(10 * time.Minute)
		e.submit(projectRun(""))
		time.Sleep(5 * time.Minute)
		out := e.submit(projectRun("k"))
		if out.Kind != ReplyQuota || out.RetryAfter != first.Add(time.Hour).Sub(time.Now()) {
			t.Fatalf("third request: %+v; want quota, Retry-After %s", out, first.Add(time.Hour).Sub(time.Now()))
		}
		if n := e.runsCreated(); n != 3 { // the two requests and the schedule at 00:05
			t.Errorf("%d runs", n)
		}
		time.Sleep(out.RetryAfter)
		if out := e.submit(projectRun("k")); out.Kind != ReplyTriggered {
			t.Errorf("after Retry-After: %+v", out)
		}
		e.stop()
	})
}

// TestGatewayOneKeyOneRun: concurrent requests with one key make one run, and every
// one of them gets it; after a restart the key still returns it.
func TestGatewayOneKeyOneRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQueueEnv(t, gwConfig(""), gwSim(), 0)
		defer e.dumpLog()
		e.startGW()
		var wg sync.WaitGroup
		outs := make([]Reply, 6)
		for i := range outs {
			wg.Add(1)
			go func() { defer wg.Done(); outs[i] = e.submit(projectRun("deploy-42")) }()
		}
		wg.Wait()
		for i, o := range outs {
			if o.Kind != ReplyTriggered || o.Slot.RunID != outs[0].Slot.RunID {
				t.Fatalf("request %d: %+v (first got run %s)", i, o, outs[0].Slot.RunID)
			}
		}
		if n := e.runsCreated(); n != 1 {
			t.Fatalf("%d runs for one key", n)
		}
		other := projectRun("deploy-42")
		other.Hash = "another body"
		if out := e.submit(other); out.Kind != ReplyKeyReused {
			t.Errorf("same key, other request: %+v", out)
		}
		e.stop()
		e.startGW()
		if out := e.submit(projectRun("deploy-42")); out.Kind != ReplyTriggered || out.Slot.RunID != outs[0].Slot.RunID {
			t.Errorf("after a restart: %+v", out)
		}
		if n := e.runsCreated(); n != 1 {
			t.Errorf("%d runs after the restart", n)
		}
		e.stop()
	})
}

// TestGatewayQueueSurvivesRestart: a keyed request queued for want of room is kept
// across a stop and triggered after the start; an unkeyed one still planned at a stop
// is recorded skipped at the next start.
func TestGatewayQueueSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQueueEnv(t, gwConfig(""), gwSim(), 0)
		defer e.dumpLog()
		e.startGW()
		for range 3 {
			e.submit(projectRun(""))
		}
		r := projectRun("nightly-build")
		r.Wait = 0
		out := e.submit(r)
		if out.Kind != ReplyNoRoom || !out.Queued {
			t.Fatalf("%+v", out)
		}
		e.stop()
		// An unkeyed request whose call died with the process.
		lost := state.Submission{Slot: state.Slot{Key: "project:" + gwProject + "@2000-01-01T00:00:00.500Z+manual",
			Schedule: "project:" + gwProject, Kind: state.KindManual, Project: gwProject, Client: "ci", Deadline: time.Now().Add(time.Hour)}}
		if _, err := e.db.Submit(context.Background(), lost, time.Now(), time.Now(), func([]time.Time) time.Duration { return 0 }); err != nil {
			t.Fatal(err)
		}
		e.startGW()
		if s := e.slot(lost.Slot.Key); s.State != state.StateSkipped {
			t.Errorf("unkeyed request after the restart: %+v", s)
		}
		time.Sleep(out.RetryAfter + 5*time.Second)
		s := e.slot(out.Slot.Key)
		if s.RunID == "" {
			t.Fatalf("the queued request was not triggered after the restart: %+v", s)
		}
		if again := e.submit(r); again.Kind != ReplyTriggered || again.Slot.RunID != s.RunID {
			t.Errorf("retry: %+v", again)
		}
		if e.sim429s() != 0 || e.runsCreated() != 4 {
			t.Errorf("hexsim: %d runs, %d 429s", e.runsCreated(), e.sim429s())
		}
		e.stop()
	})
}
