package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
	"hexcron/planner"
	"hexcron/state"
)

// The crash test kills a real daemon process (this test binary re-executed as
// TestCrashHelper) with SIGKILL at each step of the trigger path
//
//	claim (PlanSlot) -> ledger (Admit: slot `triggering`, attempt in flight)
//	-> POST (the run exists at Hex, the answer never arrives) -> 201 received
//	-> recorded (`triggered`)
//
// and then starts a fresh daemon on the same database against the same fake Hex
// (hexsim over loopback HTTP): whatever the step, the slot ends with exactly one run.

// Environment of the helper process.
const (
	envCrashStep   = "HEXCRON_CRASH_STEP"   // where the helper kills itself (see crashStep)
	envCrashDB     = "HEXCRON_CRASH_DB"     // state database file
	envCrashConfig = "HEXCRON_CRASH_CONFIG" // schedules file
	envCrashHex    = "HEXCRON_CRASH_HEX"    // Hex API base URL (the parent's hexsim)
)

// crashStep names the instant at which the helper daemon is killed.
type crashStep string

const (
	stepPlanned  crashStep = "planned"  // the slot row is written (planned); nothing admitted
	stepAdmitted crashStep = "admitted" // Ledger.Admit committed: slot triggering, attempt in flight, no POST yet
	stepPosted   crashStep = "posted"   // POST reached Hex and created the run; the answer hangs (the parent kills)
	stepAnswered crashStep = "answered" // Trigger returned the 201's run; not recorded
	stepRecorded crashStep = "recorded" // the slot is recorded triggered with the run id
)

const (
	crashProject  = "7c0ffee0-1234-4abc-8def-0123456789ab"
	crashToken    = "hxtp_crashtest"
	crashSchedule = "crash-report"
)

func TestCrashAtEachStep(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes and runs real-time daemons")
	}
	type after struct {
		posts    int         // RunProject requests Hex received in all
		runs     int         // runs Hex has for the project
		state    state.State // slot state; "" means: a run state (triggered, running or terminal)
		reasonIn string      // substring of the slot's reason
	}
	type before struct {
		state    state.State // slot state right after the kill
		ledger   int         // ledger rows
		inFlight bool        // the (only) ledger row has no completion time
		posts    int         // RunProject requests Hex received
		runs     int         // runs Hex created
		runID    bool        // the slot already records the run id
	}
	cases := []struct {
		name   string
		step   crashStep
		closed bool // the slot's window has closed by the time recovery asks Hex
		before before
		after  after
	}{
		{name: "planned", step: stepPlanned,
			before: before{state: state.StatePlanned},
			after:  after{posts: 1, runs: 1}},
		{name: "admitted", step: stepAdmitted,
			before: before{state: state.StateTriggering, ledger: 1, inFlight: true},
			after:  after{posts: 1, runs: 1}},
		{name: "admitted-window-closed", step: stepAdmitted, closed: true,
			before: before{state: state.StateTriggering, ledger: 1, inFlight: true},
			after:  after{posts: 0, runs: 0, state: state.StateSkipped, reasonIn: "Hex has no run"}},
		{name: "posted-answer-lost", step: stepPosted,
			before: before{state: state.StateTriggering, ledger: 1, inFlight: true, posts: 1, runs: 1},
			after:  after{posts: 1, runs: 1, reasonIn: "adopted"}},
		{name: "answered-not-recorded", step: stepAnswered,
			before: before{state: state.StateTriggering, ledger: 1, posts: 1, runs: 1},
			after:  after{posts: 1, runs: 1, reasonIn: "adopted"}},
		{name: "recorded", step: stepRecorded,
			before: before{state: state.StateTriggered, ledger: 1, posts: 1, runs: 1, runID: true},
			after:  after{posts: 1, runs: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			start := time.Now()
			dir := t.TempDir()
			dbPath := filepath.Join(dir, "hexcron.db")

			// The slot: the latest whole minute, window 10m (open throughout), or a window
			// that closes a few seconds from now (the helper fires well before that, and
			// recovery starts only after it).
			nominal := start.UTC().Truncate(time.Minute)
			window := 10 * time.Minute
			if tc.closed {
				window = start.Add(5 * time.Second).Sub(nominal).Truncate(time.Second)
			}
			cfgPath := writeCrashConfig(t, dir, nominal, window)
			conf, err := planner.LoadFile(cfgPath)
			if err != nil {
				t.Fatalf("load config: %v", err)
			}
			slot := planner.SlotKey(crashSchedule, nominal, nil)

			faults := hexsim.Faults{Delay: 30 * time.Second}
			if tc.step == stepPosted {
				faults.At = map[int]hexsim.Fault{1: hexsim.FaultDelay}
			}
			sim := hexsim.New(hexsim.Config{
				Seed:   1,
				Runs:   hexsim.Lifecycle{Pending: 200 * time.Millisecond, Running: 500 * time.Millisecond},
				Faults: faults,
			})
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			base := srv.URL + "/api/v1"

			// 1. The helper daemon, killed at the step.
			crashHelper(t, tc.step, dbPath, cfgPath, base, sim)
			t.Logf("helper killed at %q after %v", tc.step, time.Since(start).Round(time.Millisecond))

			db, err := state.Open(ctx, dbPath, state.Options{})
			if err != nil {
				t.Fatalf("open state after the kill: %v", err)
			}
			defer db.Close()
			// The killed daemon's lock must be free, as for a restart under systemd.
			if err := db.LockDaemon(); err != nil {
				t.Fatalf("lock after the kill: %v", err)
			}

			// 2. What the kill left: proves the helper died at the intended step.
			got, err := db.Slot(ctx, slot)
			if err != nil {
				t.Fatalf("slot after the kill: %v", err)
			}
			atts, err := db.Attempts(ctx, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			posts, created := runProjects(sim)
			if got.State != tc.before.state || len(atts) != tc.before.ledger || posts != tc.before.posts ||
				len(created) != tc.before.runs || (got.RunID != "") != tc.before.runID {
				t.Fatalf("after the kill: slot %s run %q, %d ledger rows, %d RunProject, %d runs created; want %s, %d rows, %d RunProject, %d runs, run id recorded %v",
					got.State, got.RunID, len(atts), posts, len(created), tc.before.state, tc.before.ledger, tc.before.posts, tc.before.runs, tc.before.runID)
			}
			if tc.before.ledger == 1 && atts[0].Done.IsZero() != tc.before.inFlight {
				t.Fatalf("after the kill: ledger attempt done at %v; want in flight = %v", atts[0].Done, tc.before.inFlight)
			}
			if tc.before.runID && got.RunID != created[0] {
				t.Fatalf("after the kill: slot records run %q, Hex created %q", got.RunID, created[0])
			}

			// 3. Recovery: a fresh daemon on the same database and the same Hex.
			if tc.closed {
				// Recovery must find the window closed: start it after the deadline.
				if err := clock.Sleep(ctx, clock.System{}, time.Until(nominal.Add(window))+50*time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			logs := &crashLog{}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("recovering daemon's log:\n%s", logs.String())
				}
			})
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			recStart := time.Now()
			final := recoverAndWait(t, db, conf, cfgPath, base, log, slot)
			t.Logf("recovered in %v: slot %s run %q reason %q", time.Since(recStart).Round(time.Millisecond), final.State, final.RunID, final.Reason)

			// 4. Exactly one run per slot (or none, recorded skipped, when the window closed).
			posts, created = runProjects(sim)
			var runs []string
			for _, r := range sim.Runs() {
				if r.ProjectID == crashProject {
					runs = append(runs, r.ID)
				}
			}
			if posts != tc.after.posts || len(runs) != tc.after.runs || len(created) != tc.after.runs {
				t.Errorf("Hex got %d RunProject (%d created a run) and has %d runs for the project; want %d RunProject, %d runs",
					posts, len(created), len(runs), tc.after.posts, tc.after.runs)
			}
			switch {
			case tc.after.state != "":
				if final.State != tc.after.state {
					t.Errorf("slot state %s; want %s", final.State, tc.after.state)
				}
				if final.RunID != "" {
					t.Errorf("slot records run %q; want none", final.RunID)
				}
			case final.State == state.StatePlanned || final.State == state.StateTriggering || final.State == state.StateSkipped || final.State == state.StateFailed:
				t.Errorf("slot state %s; want a run (triggered, running or ended)", final.State)
			case len(runs) == 1 && final.RunID != runs[0]:
				t.Errorf("slot records run %q; Hex's run is %q", final.RunID, runs[0])
			}
			if !strings.Contains(final.Reason, tc.after.reasonIn) {
				t.Errorf("slot reason %q; want it to mention %q", final.Reason, tc.after.reasonIn)
			}
			left, err := db.SlotsInState(ctx, state.StateTriggering, state.StatePlanned)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range left {
				t.Errorf("slot %s left %s", s.Key, s.State)
			}
			all, err := db.History(ctx, state.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 {
				t.Errorf("database has %d slots; want only %s", len(all), slot)
			}
			t.Logf("total %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestCrashStopDuringRecovery stops (SIGTERM's path: ctx cancelled) a daemon that is
// still waiting to reconcile a slot a killed process left triggering: the stop must not
// wait out the reconcile delay, must not trigger, and must leave the slot triggering so
// that the next start settles it, with exactly one run.
func TestCrashStopDuringRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes and runs real-time daemons")
	}
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "hexcron.db")
	nominal := time.Now().UTC().Truncate(time.Minute)
	cfgPath := writeCrashConfig(t, dir, nominal, 10*time.Minute)
	conf, err := planner.LoadFile(cfgPath)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	slot := planner.SlotKey(crashSchedule, nominal, nil)
	sim := hexsim.New(hexsim.Config{Seed: 1, Runs: hexsim.Lifecycle{Pending: 200 * time.Millisecond, Running: 500 * time.Millisecond}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	base := srv.URL + "/api/v1"
	crashHelper(t, stepAdmitted, dbPath, cfgPath, base, sim)

	db, err := state.Open(ctx, dbPath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	logs := &crashLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemons' log:\n%s", logs.String())
		}
	})
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hc, err := hexclient.New(crashHexConfig(conf, base, log, Ledger{DB: db}))
	if err != nil {
		t.Fatal(err)
	}
	const reconcile = time.Minute
	notes := &crashNotifier{}
	d, err := New(Config{
		Clock: clock.System{}, Logger: log, Store: db, Hex: hc, Notifier: notes,
		Load:      func() (*planner.Config, error) { return planner.LoadFile(cfgPath) },
		Reconcile: reconcile, Grace: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx, nil) }()
	ready := time.NewTimer(10 * time.Second)
	defer ready.Stop()
	for len(notes.since(time.Time{})) == 0 { // the first STATUS follows READY=1
		select {
		case err := <-done:
			t.Fatalf("Run returned before it was ready: %v", err)
		case <-ready.C:
			t.Fatal("daemon not ready within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopAt := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		t.Logf("stopped %v after the cancel (reconcile delay %v)", time.Since(stopAt).Round(time.Millisecond), reconcile)
	case <-time.After(10 * time.Second):
		t.Fatalf("Run still waiting 10s after the stop: the pending reconcile (%v) holds the shutdown", reconcile)
	}
	got, err := db.Slot(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	if posts, _ := runProjects(sim); got.State != state.StateTriggering || posts != 0 {
		t.Fatalf("after the stop: slot %s, %d RunProject; want triggering (for the next start), 0", got.State, posts)
	}

	// The next start settles it.
	final := recoverAndWait(t, db, conf, cfgPath, base, log, slot)
	posts, created := runProjects(sim)
	if posts != 1 || len(created) != 1 || final.RunID != created[0] {
		t.Errorf("after the restart: slot %s run %q; Hex got %d RunProject creating %v; want one run, recorded", final.State, final.RunID, posts, created)
	}
}

// TestCrashHelper is the daemon that TestCrashAtEachStep kills; it does nothing unless
// run by it.
func TestCrashHelper(t *testing.T) {
	step := crashStep(os.Getenv(envCrashStep))
	if step == "" {
		t.Skip("helper process of TestCrashAtEachStep")
	}
	if err := crashHelperMain(step); err != nil {
		fmt.Fprintf(os.Stderr, "crash helper: %v\n", err)
		os.Exit(3)
	}
	fmt.Fprintf(os.Stderr, "crash helper: daemon stopped without reaching step %s\n", step)
	os.Exit(4)
}

// crashHelperMain runs a real daemon (wired as `hexcron run` wires it) whose store, ledger
// and Hex client kill the process at step.
func crashHelperMain(step crashStep) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfgPath := os.Getenv(envCrashConfig)
	conf, err := planner.LoadFile(cfgPath)
	if err != nil {
		return err
	}
	db, err := state.Open(ctx, os.Getenv(envCrashDB), state.Options{})
	if err != nil {
		return err
	}
	if err := db.LockDaemon(); err != nil {
		return err
	}
	hcfg := crashHexConfig(conf, os.Getenv(envCrashHex), log, crashLedger{Ledger: Ledger{DB: db}, kill: step == stepAdmitted})
	hcfg.Timeout = 15 * time.Second // longer than the parent takes to kill at stepPosted
	hc, err := hexclient.New(hcfg)
	if err != nil {
		return err
	}
	d, err := New(Config{
		Clock:  clock.System{},
		Logger: log,
		Store:  crashStore{Store: db, step: step},
		Hex:    crashHex{Hex: hc, kill: step == stepAnswered},
		Load:   func() (*planner.Config, error) { return planner.LoadFile(cfgPath) },
	})
	if err != nil {
		return err
	}
	return d.Run(ctx, nil)
}

// die is SIGKILL: no deferred function, no flush, no Close.
func die() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// crashStore kills the process right after the slot is first written (stepPlanned) or
// recorded triggered (stepRecorded).
type crashStore struct {
	Store
	step crashStep
}

func (s crashStore) PlanSlot(ctx context.Context, sl state.Slot, now time.Time) (bool, error) {
	ok, err := s.Store.PlanSlot(ctx, sl, now)
	if err == nil && s.step == stepPlanned {
		die()
	}
	return ok, err
}

func (s crashStore) Transition(ctx context.Context, key string, to state.State, u state.Update) error {
	err := s.Store.Transition(ctx, key, to, u)
	if err == nil && to == state.StateTriggered && s.step == stepRecorded {
		die()
	}
	return err
}

// crashLedger kills the process right after an attempt is admitted and committed,
// before the POST.
type crashLedger struct {
	Ledger
	kill bool
}

func (l crashLedger) Admit(ctx context.Context, now, since time.Time, slot string, decide func([]hexclient.Attempt) time.Duration) (int64, time.Duration, error) {
	id, wait, err := l.Ledger.Admit(ctx, now, since, slot, decide)
	if err == nil && wait <= 0 && l.kill {
		die()
	}
	return id, wait, err
}

// crashHex kills the process right after Trigger returned a run, before the daemon
// records it.
type crashHex struct {
	Hex
	kill bool
}

func (h crashHex) Trigger(ctx context.Context, req hexclient.TriggerRequest) (*hexclient.Triggered, error) {
	res, err := h.Hex.Trigger(ctx, req)
	if err == nil && h.kill {
		die()
	}
	return res, err
}

// crashHelper runs the helper daemon for step and returns once SIGKILL ended it; at
// stepPosted the parent sends the SIGKILL as soon as Hex has created the run.
func crashHelper(t *testing.T, step crashStep, dbPath, cfgPath, base string, sim *hexsim.Server) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envCrashStep+"="+string(step), envCrashDB+"="+dbPath, envCrashConfig+"="+cfgPath, envCrashHex+"="+base)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	limit := time.NewTimer(20 * time.Second)
	defer limit.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-exited:
			break wait
		case <-limit.C:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("helper did not reach step %s within 20s; its output:\n%s", step, stderr.String())
		case <-tick.C:
			if step == stepPosted && len(sim.Runs()) > 0 {
				_ = cmd.Process.Kill() // SIGKILL: the POST is in flight, its 201 not yet sent
				err = <-exited
				break wait
			}
		}
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, not SIGKILL at step %s; its output:\n%s", err, step, stderr.String())
	}
}

// Recovery's daemon timings: a short Reconcile delay, and a replan and a STATUS line
// every few hundred milliseconds so that the test can see the plan stay empty.
const (
	crashReconcile = 300 * time.Millisecond
	crashReplan    = 200 * time.Millisecond
	crashBeat      = 100 * time.Millisecond
)

// recoverAndWait runs a fresh daemon until slot has left planned and triggering and
// the daemon has replanned at least once since with nothing planned and nothing in
// flight; it stops the daemon and returns the slot.
func recoverAndWait(t *testing.T, db *state.DB, conf *planner.Config, cfgPath, base string, log *slog.Logger, slot string) state.Slot {
	t.Helper()
	hc, err := hexclient.New(crashHexConfig(conf, base, log, Ledger{DB: db}))
	if err != nil {
		t.Fatal(err)
	}
	notes := &crashNotifier{}
	d, err := New(Config{
		Clock:     clock.System{},
		Logger:    log,
		Store:     db,
		Hex:       hc,
		Notifier:  notes,
		Load:      func() (*planner.Config, error) { return planner.LoadFile(cfgPath) },
		Reconcile: crashReconcile,
		Replan:    crashReplan,
		Heartbeat: crashBeat,
		Grace:     2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("Run did not return within 15s of the stop")
		}
	}
	defer stop()

	limit := time.NewTimer(20 * time.Second)
	defer limit.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var settled time.Time // when the slot was first seen out of planned and triggering
	for {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("Run returned before the slot settled: %v", err)
		case <-limit.C:
			s, _ := db.Slot(context.Background(), slot)
			t.Fatalf("slot %s after 20s of recovery (settled at %v)", s.State, settled)
		case <-tick.C:
		}
		if settled.IsZero() {
			s, err := db.Slot(context.Background(), slot)
			if err != nil {
				t.Fatalf("read slot: %v", err)
			}
			if s.State == state.StatePlanned || s.State == state.StateTriggering {
				continue
			}
			settled = time.Now()
		}
		// After the slot settled, every STATUS must say that nothing is planned and
		// nothing is in flight; wait for one sent two replans after the first.
		var first time.Time
		quiet := false
		for _, n := range notes.since(settled) {
			if !strings.Contains(n.status, "nothing planned") || !strings.Contains(n.status, " 0 triggers in flight") {
				t.Fatalf("after the slot settled the daemon still has work: %q", n.status)
			}
			if first.IsZero() {
				first = n.at
			}
			quiet = quiet || n.at.Sub(first) >= 2*crashReplan
		}
		if !quiet {
			continue
		}
		// Stopping waits for every trigger and settle goroutine, so what Hex saw
		// afterwards is final.
		stop()
		s, err := db.Slot(context.Background(), slot)
		if err != nil {
			t.Fatalf("read slot: %v", err)
		}
		return s
	}
}

// crashNotifier keeps the daemon's STATUS lines with the instant each was sent.
type crashNotifier struct {
	mu    sync.Mutex
	notes []crashNote
}

type crashNote struct {
	at     time.Time
	status string
}

func (n *crashNotifier) Notify(s string) {
	status, ok := strings.CutPrefix(s, "STATUS=")
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, crashNote{at: time.Now(), status: status})
}

func (n *crashNotifier) WatchdogInterval() time.Duration { return 0 }

// since returns the STATUS lines sent after t.
func (n *crashNotifier) since(t time.Time) []crashNote {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []crashNote
	for _, x := range n.notes {
		if x.at.After(t) {
			out = append(out, x)
		}
	}
	return out
}

// crashHexConfig is the Hex client `hexcron run` builds from conf (see hexClientConfig
// in cmd_run.go), with short waits.
func crashHexConfig(conf *planner.Config, base string, log *slog.Logger, ledger hexclient.Ledger) hexclient.Config {
	budget, reads := ClientLimits(conf)
	return hexclient.Config{
		BaseURL:         base,
		Token:           hexclient.StaticToken(crashToken),
		Clock:           clock.System{},
		Logger:          log,
		Ledger:          ledger,
		Budget:          budget,
		ReadLimits:      reads,
		Timeout:         5 * time.Second,
		VisibilityDelay: 200 * time.Millisecond,
	}
}

// runProjects counts the RunProject requests Hex received and lists the runs they created.
func runProjects(sim *hexsim.Server) (posts int, created []string) {
	for _, r := range sim.Requests() {
		if r.Op != "RunProject" {
			continue
		}
		posts++
		if r.RunCreated != "" {
			created = append(created, r.RunCreated)
		}
	}
	return posts, created
}

// writeCrashConfig fills testdata/crash.yaml.tmpl for a daily slot at nominal (UTC).
func writeCrashConfig(t *testing.T, dir string, nominal time.Time, window time.Duration) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "crash.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, struct {
		Project      string
		Minute, Hour int
		Window       string
	}{crashProject, nominal.Minute(), nominal.Hour(), fmt.Sprintf("%ds", int(window/time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "schedules.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// crashLog collects a daemon's log lines from several goroutines.
type crashLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *crashLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *crashLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
