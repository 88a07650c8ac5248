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

const (
	fenceProjectA = "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
	fenceProjectB = "5a8591dd-4039-49df-9202-96385ba3eff8"
)

// tenureDaemon is a daemon on hexsim (served over an in-memory pipe network, inside a
// synctest bubble) whose ledger admits under ten (nil: none), as `hexcron run` wires
// it, reading the config at configPath.
func tenureDaemon(t *testing.T, db *state.DB, ten *Tenure, configPath string, logger *slog.Logger) (*hexsim.Server, *Daemon, func()) {
	return loadDaemon(t, db, ten, func() (*planner.Config, error) { return planner.LoadFile(configPath) }, logger)
}

// loadDaemon is tenureDaemon with its own Load.
func loadDaemon(t *testing.T, db *state.DB, ten *Tenure, load func() (*planner.Config, error), logger *slog.Logger) (*hexsim.Server, *Daemon, func()) {
	t.Helper()
	net := hexsim.NewPipeNet()
	base := "http://127.0.0.1/api/v1"
	sim := hexsim.New(hexsim.Config{BaseURL: base, Seed: 3, Runs: hexsim.Lifecycle{Pending: time.Second, Running: 20 * time.Second}})
	stopSim := net.Serve(sim)
	transport := net.Transport()
	var once sync.Once
	stop := func() { once.Do(func() { transport.CloseIdleConnections(); stopSim() }) }
	hc, err := hexclient.New(hexclient.Config{
		BaseURL:         base,
		Token:           hexclient.StaticToken("hxtp_fence_test"),
		HTTPClient:      &http.Client{Transport: transport},
		Clock:           clock.System{},
		Rand:            rand.New(rand.NewPCG(1, 2)),
		Logger:          logger,
		Ledger:          Ledger{DB: db, Tenure: ten},
		VisibilityDelay: time.Second,
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	dm, err := New(Config{
		Store:     db,
		Hex:       hc,
		Logger:    logger,
		Tenure:    ten,
		Reconcile: 5 * time.Second,
		Load:      load,
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return sim, dm, stop
}

func writeFenceConfig(t *testing.T, cron string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schedules.yaml")
	yaml := `schedules:
  - name: alpha
    project: ` + fenceProjectA + `
    cron: "` + cron + `"
    window: 30s
  - name: beta
    project: ` + fenceProjectB + `
    cron: "` + cron + `"
    window: 30s
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openDB(t *testing.T, path string) *state.DB {
	t.Helper()
	db, err := state.Open(context.Background(), path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestFencedDaemonStopsTriggering: two daemons reach one database (the flock did not
// keep the second out). When the second takes the lease, the first logs one ERROR and
// never triggers again; what it had planned is left planned for the leader.
func TestFencedDaemonStopsTriggering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "hexcron.db")
		dbA := openDB(t, path)
		cfgPath := writeFenceConfig(t, "* * * * *")
		tenA, err := Register(ctx, TenureConfig{Store: dbA, Role: state.RoleDaemon, Lead: true, Clock: clock.System{}})
		if err != nil {
			t.Fatal(err)
		}
		var logs strings.Builder
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))
		sim, dm, stop := tenureDaemon(t, dbA, tenA, cfgPath, logger)
		defer stop()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- dm.Run(runCtx, nil) }()

		time.Sleep(150 * time.Second) // slots of 00:00, 00:01 and 00:02 fire
		before := len(sim.Runs())
		if before < 4 {
			t.Fatalf("only %d runs before the takeover", before)
		}
		// A second daemon reaches the database and takes the lease.
		dbB := openDB(t, path)
		if err := dbB.LockDaemon(); err != nil {
			t.Fatal(err)
		}
		tenB, err := Register(ctx, TenureConfig{Store: dbB, Role: state.RoleDaemon, Lead: true, Clock: clock.System{}})
		if err != nil {
			t.Fatal(err)
		}
		if tenB.Epoch() != tenA.Epoch()+1 {
			t.Fatalf("epochs %d then %d", tenA.Epoch(), tenB.Epoch())
		}
		takeover := time.Now()
		time.Sleep(4 * time.Minute)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}

		for _, r := range sim.Requests() {
			if r.Op == "RunProject" && r.Time.After(takeover) {
				t.Errorf("RunProject at %v, after the lease was taken at %v", r.Time, takeover)
			}
		}
		if n := strings.Count(logs.String(), "this daemon no longer leads the database"); n != 1 {
			t.Errorf("%d fencing ERRORs, want 1:\n%s", n, logs.String())
		}
		slots, err := dbA.History(ctx, state.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range slots {
			if s.Nominal.After(takeover) && s.State != state.StatePlanned {
				t.Errorf("slot %s is %s: the fenced daemon acted on it", s.Key, s.State)
			}
		}
		if l, err := dbA.CurrentLease(ctx); err != nil || l.Owner != tenB.Owner() {
			t.Errorf("lease after the fenced daemon stopped: %+v %v; it must not release the new leader's lease", l, err)
		}
	})
}

// TestRecoveryLeavesLiveClaims: a `hexcron trigger` that is still registered keeps its
// claim: the daemon's recovery neither reconciles nor re-triggers it. A claim whose
// process died (its registration expired) is reconciled at start, and the live one is
// reconciled as soon as its process exits and deletes its registration.
func TestRecoveryLeavesLiveClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db := openDB(t, filepath.Join(t.TempDir(), "hexcron.db"))
		cfgPath := writeFenceConfig(t, "0 12 15 6 *")
		now := time.Now()

		// A trigger process that died an hour ago, mid-trigger of beta.
		dead, err := db.RegisterOwner(ctx, state.RoleTrigger, "vm", 111, now.Add(-time.Hour), DefaultOwnerTTL)
		if err != nil {
			t.Fatal(err)
		}
		deadKey := planner.SlotKey("beta", now.Add(-time.Hour), nil) + "+manual"
		if _, _, err := db.Admit(ctx, state.Holder{Owner: dead.ID}, now.Add(-time.Hour), now.Add(-2*time.Hour), deadKey,
			func([]state.Attempt) time.Duration { return 0 }); err != nil {
			t.Fatal(err)
		}
		// A trigger process at work on alpha: registered and renewing.
		live, err := Register(ctx, TenureConfig{Store: db, Role: state.RoleTrigger, Clock: clock.System{}})
		if err != nil {
			t.Fatal(err)
		}
		keepCtx, stopKeep := context.WithCancel(ctx)
		kept := make(chan struct{})
		go func() { defer close(kept); live.Keep(keepCtx) }()
		liveKey := planner.SlotKey("alpha", now.Truncate(time.Second), nil) + "+manual"
		if _, _, err := (Ledger{DB: db, Tenure: live}).Admit(ctx, now, now.Add(-time.Hour), liveKey,
			func([]hexclient.Attempt) time.Duration { return 0 }); err != nil {
			t.Fatal(err)
		}

		tenD, err := Register(ctx, TenureConfig{Store: db, Role: state.RoleDaemon, Lead: true, Clock: clock.System{}})
		if err != nil {
			t.Fatal(err)
		}
		var logs strings.Builder
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))
		sim, dm, stop := tenureDaemon(t, db, tenD, cfgPath, logger)
		defer stop()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- dm.Run(runCtx, nil) }()

		time.Sleep(3 * time.Minute)
		s, _ := db.Slot(ctx, deadKey)
		if s.State != state.StateSkipped {
			t.Errorf("the dead process's claim is %s (%s), want settled (skipped: Hex has no run)", s.State, s.Reason)
		}
		s, _ = db.Slot(ctx, liveKey)
		if s.State != state.StateTriggering || s.Owner != live.Owner() {
			t.Errorf("the live process's claim is %s owned by %q: the daemon took it over", s.State, s.Owner)
		}
		for _, r := range sim.Requests() {
			// The preflight's GetProject is about the project, not the claim: it may come.
			if strings.Contains(r.Path, fenceProjectA) && r.Op != "GetProject" {
				t.Errorf("%s %s while the trigger process was alive", r.Op, r.Path)
			}
		}
		if !strings.Contains(logs.String(), "left to the process that claimed it") {
			t.Errorf("no log line for the claim left alone:\n%s", logs.String())
		}

		// The trigger process exits with its outcome unknown: it deletes its row.
		stopKeep()
		<-kept
		released := time.Now()
		if err := live.Release(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Minute)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		s, _ = db.Slot(ctx, liveKey)
		if s.State != state.StateSkipped {
			t.Errorf("after its process exited the claim is %s, want settled", s.State)
		}
		listed := false
		for _, r := range sim.Requests() {
			if strings.Contains(r.Path, fenceProjectA) {
				listed = listed || (r.Op == "GetProjectRuns" && !r.Time.Before(released))
				if r.Op == "RunProject" {
					t.Errorf("a manual slot was re-triggered by the daemon")
				}
			}
		}
		if !listed {
			t.Errorf("the orphaned claim was not reconciled with Hex's run list")
		}
	})
}
