package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient/hexsim"
	"hexcron/planner"
	"hexcron/state"
)

const queueProject = "22222222-2222-4222-8222-222222222222"

// queueConfig is one schedule every 10 s with overlap queue (and, with extra, more
// schedule lines), its window long enough that a waiting firing is still in the plan's
// open windows when the daemon re-plans.
func queueConfig(overlap, extra string) string {
	return fmt.Sprintf(`budget:
  triggers:
    - {limit: 20, per: 1m}
    - {limit: 600, per: 1h}
schedules:
  - name: slow
    project: %s
    cron: "*/10 * * * * *"
    overlap: %s
    window: 5m
    timeout: 10m
%s`, queueProject, overlap, extra)
}

// logRecords parses the text log lines whose msg is msg into key=value maps.
func logRecords(log, msg string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg="+msg+" ") && !strings.Contains(line, `msg="`+msg+`"`) {
			continue
		}
		rec := map[string]string{}
		for _, f := range splitLogfmt(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				rec[k] = strings.Trim(v, `"`)
			}
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// splitLogfmt splits a slog text line into key=value fields, keeping quoted values whole.
func splitLogfmt(line string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && quoted && i+1 < len(line):
			cur.WriteByte(line[i+1])
			i++
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// TestQueueSurvivesReplans runs a schedule every 10 s whose runs take 25 s, with
// overlap queue, so that a firing almost always waits, and re-plans while it waits:
// by SIGHUP-style reloads every 30 s, or by a short replan interval. Every firing that
// was queued must run once the previous run ends (none is re-planned, skipped as "a
// firing already waits" or lost as "already triggered elsewhere"), and runs never
// overlap.
func TestQueueSurvivesReplans(t *testing.T) {
	for _, tc := range []struct {
		name        string
		reloadEvery time.Duration
		replan      time.Duration
	}{
		{name: "reload every 30s", reloadEvery: 30 * time.Second},
		{name: "replan every 7s", replan: 7 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := startQueueEnv(t, queueConfig("queue", ""), hexsim.Lifecycle{Pending: -1, Running: 25 * time.Second}, tc.replan)
				reloads := 0
				time.Sleep(3 * time.Second) // reloads between firings and run ends, not at their instants
				for range 4 {
					if tc.reloadEvery == 0 {
						time.Sleep(30 * time.Second)
						continue
					}
					time.Sleep(tc.reloadEvery)
					env.rewrite(queueConfig("queue", ""))
					reloads++
				}
				time.Sleep(time.Minute) // no more re-plans forced: let the last waiting firing run
				env.stop()
				log := env.log.String()

				if n := len(logRecords(log, "slot already triggered elsewhere")); n > 0 {
					t.Errorf("%d firings lost as \"slot already triggered elsewhere\"", n)
				}
				if reloads > 0 && len(logRecords(log, "reloaded")) != reloads {
					t.Errorf("%d reloads logged, want %d", len(logRecords(log, "reloaded")), reloads)
				}
				queued := logRecords(log, "queued")
				// A waiting firing leaves the queue when the run it waits for ends, or,
				// when a due firing of the series comes at that same instant and finds
				// the run already recorded ended, first ("nothing left to wait for"):
				// which of the two the loop sees first varies.
				dequeued := append(logRecords(log, "dequeued: previous run ended"), logRecords(log, "dequeued: nothing left to wait for")...)
				atStop := logRecords(log, "queued firing left planned at stop")
				// 3 min 3 s of runs of 25 s, each end seen by the poll 25 s after its
				// trigger: runs start back to back at 0, 25, ..., 175 s (8), every one
				// after the first from the queue (7 dequeued), and the firing of 3:00
				// still waits at the stop; every other firing is skipped.
				if len(queued) != 8 || len(dequeued) != 7 || len(atStop) != 1 {
					t.Errorf("%d firings queued, %d dequeued, %d left at stop; want 8, 7 and 1", len(queued), len(dequeued), len(atStop))
				}
				if len(dequeued)+len(atStop) != len(queued) {
					t.Errorf("%d firings queued, %d dequeued and %d left at stop: every queued firing must be dequeued",
						len(queued), len(dequeued), len(atStop))
				}
				_, byKey, runs := checkOneRunPerSlot(t, env.db, env.sim)
				ran := 0
				for _, q := range queued {
					row := byKey[q["slot"]]
					left := false
					for _, s := range atStop {
						left = left || s["slot"] == q["slot"]
					}
					switch {
					case left:
						if row.State != state.StatePlanned {
							t.Errorf("queued slot %s left at stop is %s (%q), want planned", q["slot"], row.State, row.Reason)
						}
					case row.RunID == "":
						t.Errorf("queued slot %s never ran: %s (%q)", q["slot"], row.State, row.Reason)
					default:
						ran++
					}
				}
				// Exactly the first firing plus every queued one ran, once each.
				if len(runs) != 1+ran || ran != 7 {
					t.Errorf("hexsim has %d runs, %d of them for queued firings; want 8 and 7", len(runs), ran)
				}
				sort.Slice(runs, func(i, j int) bool { return runs[i].Created.Before(runs[j].Created) })
				for i := 1; i < len(runs); i++ {
					if prev := runs[i-1]; prev.EndTime.IsZero() || runs[i].Created.Before(prev.EndTime) {
						t.Errorf("run %s started at %v before run %s ended (%v)", runs[i].ID, runs[i].Created, prev.ID, prev.EndTime)
					}
				}
				// Each reload happened while a firing waited.
				if reloads > 0 {
					stamp := func(r map[string]string) time.Time {
						at, err := time.Parse(time.RFC3339Nano, r["time"])
						if err != nil {
							t.Fatalf("log time %q: %v", r["time"], err)
						}
						return at
					}
					waited := map[string][2]time.Time{} // slot -> queued, dequeued (zero: never)
					for _, q := range queued {
						waited[q["slot"]] = [2]time.Time{stamp(q)}
					}
					for _, q := range dequeued {
						w := waited[q["slot"]]
						w[1] = stamp(q)
						waited[q["slot"]] = w
					}
					during := 0
					for _, r := range logRecords(log, "reloaded") {
						at := stamp(r)
						for _, w := range waited {
							if w[0].Before(at) && (w[1].IsZero() || at.Before(w[1])) {
								during++
								break
							}
						}
					}
					if during != reloads {
						t.Errorf("%d of %d reloads came while a firing waited; the test needs all", during, reloads)
					}
				}
				t.Logf("%d queued, %d dequeued, %d left at stop, %d runs", len(queued), len(dequeued), len(atStop), len(runs))
				env.dumpLog()
			})
		})
	}
}

// queueEnv is a daemon on hexsim with its config file and database, for the queue
// and removed-schedule tests; the daemon can be stopped and started again on the same
// database and hexsim.
type queueEnv struct {
	t      *testing.T
	sim    *hexsim.Server
	db     *state.DB
	conf   *planner.Config
	path   string // the config file
	log    *strings.Builder
	logger *slog.Logger
	pipe   *pipeSim
	reload chan struct{}
	dm     *Daemon
	replan time.Duration
	cancel context.CancelFunc
	done   chan error
	up     bool // the daemon runs
}

// startQueueEnv writes config, starts hexsim with runs shaped by runs and the daemon
// on a fresh database (replan, when set, overrides the replan interval). Call inside a
// bubble; the test's cleanup stops hexsim.
func startQueueEnv(t *testing.T, config string, runs hexsim.Lifecycle, replan time.Duration) *queueEnv {
	t.Helper()
	env := newQueueEnv(t, config, hexsim.Config{Seed: 1, Runs: runs}, replan)
	env.start()
	return env
}

// newQueueEnv is startQueueEnv, with the whole hexsim config, without starting the
// daemon.
func newQueueEnv(t *testing.T, config string, simCfg hexsim.Config, replan time.Duration) *queueEnv {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "schedules.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := planner.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(context.Background(), filepath.Join(dir, "hexcron.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	env := &queueEnv{t: t, db: db, conf: conf, path: path, log: &strings.Builder{}, replan: replan}
	env.logger = slog.New(slog.NewTextHandler(&lockedWriter{w: env.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env.pipe = simOnPipe(t, simCfg)
	env.sim = env.pipe.sim
	t.Cleanup(env.pipe.stop)
	return env
}

// start starts a daemon on the env's database, config and hexsim.
func (e *queueEnv) start() {
	e.t.Helper()
	dm := e.pipe.daemon(e.t, e.db, e.conf, e.path, e.logger, 1, func(c *Config) {
		if e.replan > 0 {
			c.Replan = e.replan
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.dm, e.cancel, e.done, e.reload, e.up = dm, cancel, make(chan error, 1), make(chan struct{}), true
	go func() { e.done <- dm.Run(ctx, e.reload) }()
	e.t.Cleanup(func() { // inside the bubble: a test that failed early still stops it
		if e.up {
			e.stop()
		}
	})
}

// rewrite replaces the config file and sends a reload (SIGHUP).
func (e *queueEnv) rewrite(config string) {
	e.t.Helper()
	if err := os.WriteFile(e.path, []byte(config), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.reload <- struct{}{}
}

// stop stops the daemon (as SIGTERM does).
func (e *queueEnv) stop() {
	e.t.Helper()
	e.up = false
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("Run: %v", err)
	}
}

// slot reads one slot row.
func (e *queueEnv) slot(key string) state.Slot {
	e.t.Helper()
	s, err := e.db.Slot(context.Background(), key)
	if err != nil {
		e.t.Fatalf("slot %s: %v", key, err)
	}
	return s
}

// dumpLog prints the daemon's log when the test failed.
func (e *queueEnv) dumpLog() {
	if e.t.Failed() {
		e.t.Logf("daemon log:\n%s", e.log.String())
	}
}

// TestQueueReloadSettlesWaitingFiring: a reload while a firing waits settles it by the
// new config, with a row and a log line: removed schedule, skipped; overlap changed,
// released to the plan, where the new policy decides.
func TestQueueReloadSettlesWaitingFiring(t *testing.T) {
	const other = `  - name: other
    project: 33333333-3333-4333-8333-333333333333
    cron: "0 12 * * *"
`
	const waiting = "slow@2000-01-01T00:00:30Z" // queued at 0:30 behind the run started at 0:25
	for _, tc := range []struct {
		name     string
		config   string
		state    state.State // of the waiting slot at the end
		reasonIn string
		logMsg   string
	}{
		{name: "schedule removed", config: "schedules:\n" + other,
			state: state.StateSkipped, reasonIn: "queued when a reload removed its schedule from the config", logMsg: "skipped"},
		{name: "overlap now skip", config: queueConfig("skip", other),
			state: state.StateSkipped, reasonIn: "overlap skip: previous run", logMsg: "queued firing released: a reload changed the overlap policy"},
		{name: "overlap now allow", config: queueConfig("allow", other),
			state: state.StateCompleted, reasonIn: "hex status COMPLETED", logMsg: "overlap allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := startQueueEnv(t, queueConfig("queue", other), hexsim.Lifecycle{Pending: -1, Running: 25 * time.Second}, 0)
				defer env.dumpLog()
				time.Sleep(33 * time.Second)
				if row := env.slot(waiting); row.State != state.StatePlanned {
					t.Fatalf("before the reload %s is %s (%q); want planned (queued)", waiting, row.State, row.Reason)
				} else if !strings.HasPrefix(row.Reason, queuedReason) {
					t.Errorf("before the reload %s has reason %q; want it marked queued", waiting, row.Reason)
				}
				env.rewrite(tc.config)
				time.Sleep(time.Minute)
				env.stop()
				row := env.slot(waiting)
				if row.State != tc.state || !strings.Contains(row.Reason, tc.reasonIn) {
					t.Errorf("%s is %s (%q); want %s with %q", waiting, row.State, row.Reason, tc.state, tc.reasonIn)
				}
				found := false
				for _, r := range logRecords(env.log.String(), tc.logMsg) {
					found = found || r["slot"] == waiting
				}
				if !found {
					t.Errorf("no %q line for %s", tc.logMsg, waiting)
				}
				// The run the firing waited for is tracked to its end in every case.
				if row := env.slot("slow@2000-01-01T00:00:00Z"); row.State != state.StateCompleted {
					t.Errorf("the run it waited for is %s (%q), want completed", row.State, row.Reason)
				}
				checkOneRunPerSlot(t, env.db, env.sim)
			})
		})
	}
}

// TestQueuedFiringAcrossRestart: a firing that waits when the daemon stops stays
// planned, marked queued; the next start queues it again behind the run it waited for
// (which then ends, and it runs), or records it skipped with the reason when its
// schedule no longer queues or hexcron was down longer than its catchup.
func TestQueuedFiringAcrossRestart(t *testing.T) {
	// Window 10 s: the firing queued at 0:30 is out of its window when the daemon stops at
	// 0:45, so neither the plan nor catch-up fires it again: only the queue can.
	short := func(overlap, catchup string) string {
		return strings.Replace(queueConfig(overlap, ""), "    window: 5m\n", "    window: 10s\n    catchup: "+catchup+"\n", 1)
	}
	const waiting = "slow@2000-01-01T00:00:30Z"
	for _, tc := range []struct {
		name     string
		restart  string        // the config at restart
		down     time.Duration // how long the daemon is stopped
		state    state.State   // of the waiting slot at the end
		reasonIn string
	}{
		{name: "restored", restart: short("queue", "1h"), down: 3 * time.Second, state: state.StateCompleted, reasonIn: "hex status COMPLETED"},
		{name: "down longer than catchup", restart: short("queue", "1m"), down: 2 * time.Minute, state: state.StateSkipped,
			reasonIn: "queued when hexcron stopped; down for 2m0s, longer than catchup 1m0s"},
		{name: "catchup off", restart: short("queue", "0s"), down: 3 * time.Second, state: state.StateSkipped,
			reasonIn: "queued when hexcron stopped; catchup is off"},
		{name: "overlap changed", restart: short("skip", "1h"), down: 3 * time.Second, state: state.StateSkipped,
			reasonIn: "queued when hexcron stopped; the schedule's overlap is now skip"},
		{name: "schedule removed", restart: "schedules: []\n", down: 3 * time.Second, state: state.StateSkipped,
			reasonIn: "queued when hexcron stopped; its schedule is no longer in the config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := startQueueEnv(t, short("queue", "1h"), hexsim.Lifecycle{Pending: -1, Running: 25 * time.Second}, 0)
				defer env.dumpLog()
				time.Sleep(45 * time.Second)
				env.stop()
				if row := env.slot(waiting); row.State != state.StatePlanned {
					t.Fatalf("after the stop %s is %s (%q); want planned (queued)", waiting, row.State, row.Reason)
				} else if !strings.HasPrefix(row.Reason, queuedReason) {
					t.Errorf("after the stop %s has reason %q; want it marked queued", waiting, row.Reason)
				}
				if n := len(logRecords(env.log.String(), "queued firing left planned at stop")); n != 1 {
					t.Errorf("%d \"queued firing left planned at stop\" lines, want 1", n)
				}
				time.Sleep(tc.down)
				if err := os.WriteFile(env.path, []byte(tc.restart), 0o600); err != nil {
					t.Fatal(err)
				}
				env.start()
				time.Sleep(time.Minute)
				env.stop()
				row := env.slot(waiting)
				if row.State != tc.state || !strings.Contains(row.Reason, tc.reasonIn) {
					t.Errorf("%s is %s (%q); want %s with %q", waiting, row.State, row.Reason, tc.state, tc.reasonIn)
				}
				// The run it waited for (slot 0:00, started at 0:25) ended at 0:50; the
				// restored firing started after that, never alongside.
				before := env.slot("slow@2000-01-01T00:00:00Z")
				if before.State != state.StateCompleted {
					t.Errorf("the run it waited for is %s (%q), want completed", before.State, before.Reason)
				}
				if tc.state == state.StateCompleted {
					if run, ok := env.sim.Run(row.RunID); !ok || run.Created.Before(before.Ended) {
						t.Errorf("restored firing's run created %v, before the run it waited for ended at %v", run.Created, before.Ended)
					}
					if len(logRecords(env.log.String(), "queued firing restored")) != 1 {
						t.Error("no \"queued firing restored\" line")
					}
				}
				checkOneRunPerSlot(t, env.db, env.sim)
			})
		})
	}
}

// TestQueuedBehindFailedTrigger: a firing queued behind a trigger still in flight runs
// as soon as that trigger ends without a run (here Hex refuses it with a 422), not
// after some later run of the schedule, and before any later firing.
func TestQueuedBehindFailedTrigger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newQueueEnv(t, queueConfig("queue", ""), hexsim.Config{Seed: 1,
			Runs:   hexsim.Lifecycle{Pending: -1, Running: 25 * time.Second},
			Faults: hexsim.Faults{At: map[int]hexsim.Fault{1: hexsim.FaultUnprocessable}},
		}, 0)
		defer env.dumpLog()
		env.start()
		time.Sleep(5 * time.Second)
		env.stop()
		// At the start the newest open slot (23:59:50) and the 0:00 one are both due:
		// the first is triggered, the second queued behind that trigger.
		if row := env.slot("slow@1999-12-31T23:59:50Z"); row.State != state.StateFailed {
			t.Errorf("first slot is %s (%q), want failed by the 422", row.State, row.Reason)
		}
		queued := logRecords(env.log.String(), "queued")
		if len(queued) != 1 || queued[0]["slot"] != "slow@2000-01-01T00:00:00Z" || !strings.Contains(queued[0]["reason"], "(being triggered)") {
			t.Fatalf("queued lines %v; want the 0:00 slot queued behind the trigger in flight", queued)
		}
		row := env.slot("slow@2000-01-01T00:00:00Z")
		if row.RunID == "" {
			t.Fatalf("the queued slot is %s (%q); it should run as soon as the trigger failed", row.State, row.Reason)
		}
		if run, _ := env.sim.Run(row.RunID); !run.Created.Before(time.Date(2000, 1, 1, 0, 0, 5, 0, time.UTC)) {
			t.Errorf("its run was created at %v, want at once", run.Created)
		}
		if n := len(logRecords(env.log.String(), "dequeued: previous trigger created no run")); n != 1 {
			t.Errorf("%d \"dequeued: previous trigger created no run\" lines, want 1", n)
		}
		checkOneRunPerSlot(t, env.db, env.sim)
	})
}

// TestQueuedFiringGoesFirstWhenItsRunEndedUnseen: when the run a firing waits for is
// recorded ended by another process (as `hexcron trigger --wait` does for a manual
// run), no end reaches the queue. The next firing of the schedule then finds nothing
// going: the waiting firing is triggered first, and the new one queues behind it.
func TestQueuedFiringGoesFirstWhenItsRunEndedUnseen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startQueueEnv(t, queueConfig("queue", ""), hexsim.Lifecycle{Pending: -1, Running: 25 * time.Second}, 0)
		defer env.dumpLog()
		time.Sleep(33 * time.Second)
		const running, waiting, next = "slow@2000-01-01T00:00:00Z", "slow@2000-01-01T00:00:30Z", "slow@2000-01-01T00:00:40Z"
		if row := env.slot(waiting); row.State != state.StatePlanned {
			t.Fatalf("%s is %s (%q), want queued", waiting, row.State, row.Reason)
		}
		// Another process records the run the firing waits for as ended.
		if err := env.db.Transition(context.Background(), running, state.StateCompleted,
			state.Update{At: time.Now(), Reason: "hex status COMPLETED", Ended: time.Now()}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // past the 0:40 firing
		env.stop()
		w, n := env.slot(waiting), env.slot(next)
		if w.RunID == "" {
			t.Fatalf("%s is %s (%q); it should have run when the next firing found nothing going", waiting, w.State, w.Reason)
		}
		if n.RunID != "" || n.State != state.StatePlanned || !strings.HasPrefix(n.Reason, queuedReason) {
			t.Errorf("%s is %s (run %q, %q); want it queued behind %s", next, n.State, n.RunID, n.Reason, waiting)
		}
		found := false
		for _, r := range logRecords(env.log.String(), "dequeued: nothing left to wait for") {
			found = found || r["slot"] == waiting
		}
		if !found {
			t.Errorf("no \"dequeued: nothing left to wait for\" line for %s", waiting)
		}
		checkOneRunPerSlot(t, env.db, env.sim)
	})
}
