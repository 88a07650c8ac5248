package scheduler

import (
	"context"
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
	sim  *hexsim.Server
	db   *state.DB
	conf *planner.Config
	log  *strings.Builder
}

// runDay runs the daemon on config for d of virtual time against a hexsim built by
// simCfg, and returns what is needed to check the outcome. Call inside a bubble.
func runDay(t *testing.T, configPath string, simCfg hexsim.Config, d time.Duration) *dayEnv {
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
	sim, dm, stop := daemonOnSim(t, simCfg, db, conf, configPath, logger, 1)
	defer stop()

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dm.Run(runCtx, nil) }()
	time.Sleep(d)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return &dayEnv{sim: sim, db: db, conf: conf, log: &logs}
}

// daemonOnSim builds hexsim from simCfg, served over an in-memory pipe network, and a
// Daemon wired to it as `hexcron run` wires one: db as its store and trigger ledger,
// conf's trigger rules, the config re-read from configPath. seed seeds the jitter.
// Call inside a synctest bubble; stop closes the connections and hexsim.
func daemonOnSim(t *testing.T, simCfg hexsim.Config, db *state.DB, conf *planner.Config, configPath string,
	logger *slog.Logger, seed uint64) (sim *hexsim.Server, dm *Daemon, stop func()) {
	t.Helper()
	return daemonOnSimWith(t, simCfg, db, conf, configPath, logger, seed, nil)
}

// daemonOnSimWith is daemonOnSim with tune (may be nil) applied to the Hex client's
// config before the client is built.
func daemonOnSimWith(t *testing.T, simCfg hexsim.Config, db *state.DB, conf *planner.Config, configPath string,
	logger *slog.Logger, seed uint64, tune func(*hexclient.Config)) (sim *hexsim.Server, dm *Daemon, stop func()) {
	t.Helper()
	net := hexsim.NewPipeNet()
	simCfg.BaseURL = "http://127.0.0.1/api/v1" // the pipe network ignores the address
	sim = hexsim.New(simCfg)
	stopSim := net.Serve(sim)
	transport := net.Transport()
	var once sync.Once
	stop = func() { once.Do(func() { transport.CloseIdleConnections(); stopSim() }) }
	hcfg := hexclient.Config{
		BaseURL:    simCfg.BaseURL,
		Token:      hexclient.StaticToken("hxtp_sim_test"),
		HTTPClient: &http.Client{Transport: transport},
		Clock:      clock.System{},
		Rand:       rand.New(rand.NewPCG(seed, 2)),
		Logger:     logger,
		Ledger:     Ledger{DB: db},
		Budget:     conf.Budget.Trigger(),
	}
	if tune != nil {
		tune(&hcfg)
	}
	hc, err := hexclient.New(hcfg)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	dm, err = New(Config{
		Store:  db,
		Hex:    hc,
		Logger: logger,
		Load:   func() (*planner.Config, error) { return planner.LoadFile(configPath) },
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return sim, dm, stop
}

// checkOneRunPerSlot reads every slot and hexsim's runs and fails the test for a run
// recorded by two slots or a hexsim run that no slot recorded (a double trigger). It
// returns the slots, the slots by key, and hexsim's runs.
func checkOneRunPerSlot(t *testing.T, db *state.DB, sim *hexsim.Server) ([]state.Slot, map[string]state.Slot, []hexsim.Run) {
	t.Helper()
	slots, err := db.History(context.Background(), state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]state.Slot{}
	byRun := map[string]string{}
	for _, s := range slots {
		byKey[s.Key] = s
		if s.RunID != "" {
			if other, dup := byRun[s.RunID]; dup {
				t.Errorf("run %s recorded for %s and %s", s.RunID, other, s.Key)
			}
			byRun[s.RunID] = s.Key
		}
	}
	runs := sim.Runs()
	for _, r := range runs {
		if _, ok := byRun[r.ID]; !ok {
			t.Errorf("hexsim run %s (created %v) belongs to no slot: a double trigger", r.ID, r.Created)
		}
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
// slow answers, stuck runs and unknown statuses) and checks the three promises: no
// 429, no slot with two runs (no run without its slot), every slot with a final state.
func TestSimulatedDayOfExampleConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		const day = 24 * time.Hour
		env := runDay(t, filepath.Join("..", "schedules.example.yaml"), hexsim.Config{
			Seed:   7,
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
		}, day)
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
		t.Logf("simulated day: %d firings checked, %d runs, %d faults injected, states %v", checked, len(runs), faults, states)
		if t.Failed() {
			_ = os.WriteFile(filepath.Join(os.TempDir(), "hexcron-day.log"), []byte(env.log.String()), 0o600)
			t.Logf("daemon log written to %s", filepath.Join(os.TempDir(), "hexcron-day.log"))
		}
	})
}
