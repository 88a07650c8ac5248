package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
	"hexcron/planner"
	"hexcron/state"
)

// dayEnv is a daemon, hexsim and a real SQLite file inside one synctest bubble: hexsim
// is served over an in-memory network (real HTTP, no sockets), so virtual time
// advances whenever everything waits.
type dayEnv struct {
	sim    *hexsim.Server
	db     *state.DB
	conf   *planner.Config
	log    *strings.Builder
	atStop runAudit // the slots and runs as the stop left them, before the restart
}

// runDay runs the daemon on config for d of virtual time against a hexsim built by
// simCfg, stops it, and settles what the stop left with one restart (see
// restartAndSettle); it returns what is needed to check the outcome. Call inside a
// bubble.
func runDay(t *testing.T, configPath string, simCfg hexsim.Config, clientSeed int64, d time.Duration) *dayEnv {
	t.Helper()
	conf, err := planner.LoadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := state.Open(ctx, filepath.Join(t.TempDir(), "hexcron.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := simOnPipe(t, simCfg)
	defer p.stop()
	runDaemonFor(t, p.daemon(t, db, conf, configPath, logger, uint64(clientSeed)), d, nil)
	atStop := p.restartAndSettle(t, db, conf, configPath, logger, uint64(clientSeed))
	return &dayEnv{sim: p.sim, db: db, conf: conf, log: &logs, atStop: atStop}
}

// pipeBaseURL is hexsim's API base on the pipe network (which ignores the address).
const pipeBaseURL = "http://127.0.0.1/api/v1"

// pipeSim is hexsim served over an in-memory pipe network, for the daemons of one
// synctest bubble.
type pipeSim struct {
	sim       *hexsim.Server
	transport *http.Transport
	stop      func() // closes the connections and hexsim
	// tuneClient, when set, changes the Hex client's config of every daemon wired to
	// the sim before the client is built.
	tuneClient func(*hexclient.Config)
}

// simOnPipe builds hexsim from simCfg and serves it over an in-memory pipe network.
// Call inside a synctest bubble, and call stop before the bubble ends.
func simOnPipe(t *testing.T, simCfg hexsim.Config) *pipeSim {
	t.Helper()
	net := hexsim.NewPipeNet()
	simCfg.BaseURL = pipeBaseURL
	sim := hexsim.New(simCfg)
	stopSim := net.Serve(sim)
	transport := net.Transport()
	var once sync.Once
	return &pipeSim{sim: sim, transport: transport,
		stop: func() { once.Do(func() { transport.CloseIdleConnections(); stopSim() }) }}
}

// daemon wires a fresh Hex client and Daemon to the sim as `hexcron run` wires them:
// db as the store and trigger ledger, conf's trigger rules, the config re-read from
// configPath. seed seeds the client's jitter; tweak, when given, changes the daemon's
// config before New.
func (p *pipeSim) daemon(t *testing.T, db *state.DB, conf *planner.Config, configPath string, logger *slog.Logger, seed uint64, tweak ...func(*Config)) *Daemon {
	t.Helper()
	budget, reads := ClientLimits(conf)
	hcfg := hexclient.Config{
		BaseURL:    pipeBaseURL,
		Token:      hexclient.StaticToken("hxtp_sim_test"),
		HTTPClient: &http.Client{Transport: p.transport},
		Clock:      clock.System{},
		Rand:       rand.New(rand.NewPCG(seed, 2)),
		Logger:     logger,
		Ledger:     Ledger{DB: db},
		Budget:     budget,
		ReadLimits: reads,
	}
	if p.tuneClient != nil {
		p.tuneClient(&hcfg)
	}
	hc, err := hexclient.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Store:  db,
		Hex:    hc,
		Logger: logger,
		Load:   func() (*planner.Config, error) { return planner.LoadFile(configPath) },
	}
	for _, f := range tweak {
		f(&cfg)
	}
	dm, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dm
}

// runDaemonFor runs dm for d of virtual time, calls atEnd (when not nil) with the
// daemon still running, then stops it as SIGTERM does (its context cancelled) and
// waits until Run returned.
func runDaemonFor(t *testing.T, dm *Daemon, d time.Duration, atEnd func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dm.Run(ctx, nil) }()
	time.Sleep(d)
	if atEnd != nil {
		atEnd()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// settleLimit bounds the restart of restartAndSettle: recovery asks Hex about a slot
// left triggering 45s (the reconcile delay) after its last attempt, retries a failed
// listing after 30s, 60s, 90s and 120s, and re-triggers a slot Hex has no run for
// within its window, which is at most 2h in these tests.
const settleLimit = 3 * time.Hour

// restartAndSettle ends a virtual-time run whose daemon has just stopped. A stop may
// interrupt a trigger before it knows its run (an ambiguous answer whose reconcile the
// grace period cut short): the slot stays triggering, its run unrecorded, and "the
// next start reconciles it". So it audits the slots and hexsim's runs as the stop left
// them, where only such slots may excuse an unrecorded run (auditRuns with settled
// false; a problem fails the test), then turns hexsim's faults off and runs a fresh
// daemon on the same database against the same hexsim until no slot is left
// triggering (checked every virtual minute, at least one, at most settleLimit) before
// stopping it: its recovery reconciles every slot left triggering, and with no fault
// left nothing it triggers can be ambiguous, so its own stop interrupts nothing. The
// caller then requires the settled invariant (checkOneRunPerSlot). It returns the
// audit at the stop.
func (p *pipeSim) restartAndSettle(t *testing.T, db *state.DB, conf *planner.Config, configPath string, logger *slog.Logger, seed uint64) runAudit {
	t.Helper()
	ctx := context.Background()
	slots, err := db.History(ctx, state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	atStop := auditRuns(slots, p.sim.Runs(), projectsOf(conf), false)
	for _, e := range atStop.problems {
		t.Errorf("at the stop: %s", e)
	}
	p.sim.ClearFaults()
	dm := p.daemon(t, db, conf, configPath, logger.With("incarnation", "restart"), seed)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dm.Run(runCtx, nil) }()
	for waited := time.Minute; ; waited += time.Minute {
		time.Sleep(time.Minute)
		synctest.Wait() // whatever was due at this instant has been done
		left, err := db.SlotsInState(ctx, state.StateTriggering)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 || waited >= settleLimit {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run (restart): %v", err)
	}
	return atStop
}

// projectsOf returns the project of each schedule of conf, by name.
func projectsOf(conf *planner.Config) func(schedule string) string {
	m := map[string]string{}
	for _, s := range conf.Schedules {
		m[s.Name] = s.Project
	}
	return func(schedule string) string { return m[schedule] }
}

// checkOneRunPerSlot reads every slot and hexsim's runs once everything is settled (a
// restart's recovery reconciled what the last stop left) and fails the test for a run
// recorded by two slots, a recorded run hexsim does not have, a hexsim run that no slot
// recorded (a double trigger) or a slot still triggering (auditRuns with settled
// true). It returns the slots, the slots by key, and hexsim's runs.
func checkOneRunPerSlot(t *testing.T, db *state.DB, sim *hexsim.Server) ([]state.Slot, map[string]state.Slot, []hexsim.Run) {
	t.Helper()
	slots, err := db.History(context.Background(), state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]state.Slot{}
	for _, s := range slots {
		byKey[s.Key] = s
	}
	runs := sim.Runs()
	for _, e := range auditRuns(slots, runs, nil, true).problems {
		t.Error(e)
	}
	return slots, byKey, runs
}

// lockedWriter serialises writes to a strings.Builder shared by goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestSimulatedDayOfExampleConfig runs schedules.example.yaml for a simulated day
// against hexsim with faults on (5xx after and before create, dropped connections,
// slow answers, stuck runs and unknown statuses), stops the daemon and restarts it once
// on the same database so that recovery reconciles what the stop interrupted
// (restartAndSettle), and checks the three promises: no 429, no slot with two runs (no
// run without its slot, no slot left triggering), every slot with a final state, and
// the log budget (checkLogBudget: at most 6 lines at INFO or above per triggered slot).
func TestSimulatedDayOfExampleConfig(t *testing.T) {
	forEachSeed(t, simSeeds{sim: 7, client: 1}, simulatedDay)
}

// simulatedDay is one run of TestSimulatedDayOfExampleConfig with seeds.
func simulatedDay(t *testing.T, seeds simSeeds) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		const day = 24 * time.Hour
		env := runDay(t, filepath.Join("..", "schedules.example.yaml"), hexsim.Config{
			Seed:   seeds.sim,
			Limits: hexsim.Limits{Window: hexsim.WindowRolling},
			Runs: hexsim.Lifecycle{
				Pending: 5 * time.Second, PendingJitter: 30 * time.Second,
				Running: time.Minute, RunningJitter: 10 * time.Minute,
				Outcomes: map[hexsim.Outcome]float64{
					hexsim.OutcomeCompleted: 85, hexsim.OutcomeErrored: 5, hexsim.OutcomeStuck: 4,
					hexsim.OutcomeUnknown: 3, hexsim.OutcomeNoKernel: 2, hexsim.OutcomeKilled: 1,
				},
			},
			Faults: hexsim.Faults{Probabilities: map[hexsim.Fault]float64{
				hexsim.Fault5xxAfterCreate: 0.03, hexsim.Fault5xxBeforeCreate: 0.03,
				hexsim.FaultDrop: 0.02, hexsim.FaultDelay: 0.02,
			}},
		}, seeds.client, day)
		end := start.Add(day)

		faults := 0
		for _, r := range env.sim.Requests() {
			if r.Status == http.StatusTooManyRequests {
				t.Errorf("429 at %v for %s", r.Time, r.Op)
			}
			if r.Fault != "" && r.Fault != string(hexsim.FaultNone) {
				faults++
			}
		}
		if faults < 5 {
			t.Errorf("only %d faults injected; the test would not exercise recovery", faults)
		}

		slots, byKey, runs := checkOneRunPerSlot(t, env.db, env.sim)
		// The journal stays readable: at most maxInfoPerSlot lines at INFO or above per
		// triggered slot, in all and for each slot.
		checkLogBudget(t, env.log.String(), slots)
		// Every firing whose window and timeout passed well before the end has a row
		// in a final state.
		states := map[state.State]int{}
		checked := 0
		for i := range env.conf.Schedules {
			s := &env.conf.Schedules[i]
			for _, n := range s.Between(start, end.Add(-3*time.Hour)) {
				for _, f := range s.Firings(n) {
					checked++
					row, ok := byKey[f.Slot]
					if !ok {
						t.Errorf("slot %s has no row", f.Slot)
						continue
					}
					states[row.State]++
					if !row.State.Terminal() {
						t.Errorf("slot %s still %s at the end of the day", f.Slot, row.State)
					}
					if (row.State == state.StateSkipped || row.State == state.StateFailed || row.State == state.StateUnknown) && row.Reason == "" {
						t.Errorf("slot %s %s without a reason", f.Slot, row.State)
					}
				}
			}
		}
		if checked < 100 {
			t.Fatalf("only %d firings checked", checked)
		}
		if states[state.StateCompleted] < checked/2 {
			t.Errorf("only %d of %d slots completed: %v", states[state.StateCompleted], checked, states)
		}
		if states[state.StateTimedOut] == 0 {
			t.Errorf("no stuck run was timed out: %v", states)
		}
		for _, s := range slots {
			if s.State == state.StateSkipped {
				t.Logf("skipped %s: %s", s.Key, s.Reason)
			}
		}
		// Every firing queued under overlap: queue ran (or still waits at the end):
		// none is planned again by a replan and lost.
		queued, ran := logRecords(env.log.String(), "queued"), 0
		for _, q := range queued {
			switch row := byKey[q["slot"]]; {
			case row.RunID != "":
				ran++
			case row.State != state.StatePlanned:
				t.Errorf("queued slot %s never ran: %s (%q)", row.Key, row.State, row.Reason)
			}
		}
		if n := len(logRecords(env.log.String(), "slot already triggered elsewhere")); n > 0 {
			t.Errorf("%d firings lost as \"slot already triggered elsewhere\"", n)
		}
		t.Logf("%d firings queued (overlap: queue), %d of them ran", len(queued), ran)
		t.Logf("simulated day: %d firings checked, %d runs, %d faults injected, states %v", checked, len(runs), faults, states)
		t.Logf("at the stop: %d slot(s) left triggering and %d hexsim run(s) recorded by no slot yet, for the restart to reconcile",
			env.atStop.triggering, env.atStop.awaiting)
		if t.Failed() {
			out := filepath.Join(os.TempDir(), fmt.Sprintf("hexcron-day-%d.log", seeds.sim))
			_ = os.WriteFile(out, []byte(env.log.String()), 0o600)
			t.Logf("daemon log written to %s", out)
		}
	})
}
