package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/clock"
	"hexcron/hexclient/hexsim"
	"hexcron/planner"
	"hexcron/state"
)

func TestPruneCutoffs(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	conf := mustParse(t, `
state: {retention: 1m}
schedules:
  - {name: a, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "@hourly", window: 20m, catchup: 2h}
  - {name: b, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: "@hourly", window: 45m, catchup: 30m}
`)
	c := PruneCutoffs(conf, now)
	// 1m is shorter than what the start looks back at: the longest window (45m) plus
	// the longest catchup (2h) plus an hour.
	if want := now.Add(-45*time.Minute - 3*time.Hour); !c.Slots.Equal(want) {
		t.Errorf("slots cutoff with retention 1m = %v, want %v", c.Slots, want)
	}
	if want := now.Add(-LedgerKeep); !c.Ledger.Equal(want) {
		t.Errorf("ledger cutoff = %v, want %v (a day: longer than any default rule)", c.Ledger, want)
	}
	if want := now.Add(-OwnerKeep); !c.Owners.Equal(want) {
		t.Errorf("owners cutoff = %v, want %v", c.Owners, want)
	}
	conf.State.Retention = 90 * 24 * time.Hour
	if c := PruneCutoffs(conf, now); !c.Slots.Equal(now.Add(-90 * 24 * time.Hour)) {
		t.Errorf("slots cutoff with retention 90d = %v", c.Slots)
	}
	conf.Budget.Triggers = append(conf.Budget.Triggers, planner.Rule{Limit: 500, Per: 48 * time.Hour})
	if c := PruneCutoffs(conf, now); !c.Ledger.Equal(conf.Budget.Trigger().Since(now)) || !c.Ledger.Before(now.Add(-48*time.Hour)) {
		t.Errorf("ledger cutoff with a 48h rule = %v, want that rule's reach %v", c.Ledger, conf.Budget.Trigger().Since(now))
	}
	conf.State.Retention = 0
	if c := PruneCutoffs(conf, now); !c.Slots.IsZero() || !c.Ledger.IsZero() || c.Owners.IsZero() {
		t.Errorf("retention 0: cutoffs %+v, want slots and ledger kept, owners pruned", c)
	}
}

// soakDir is where the retention soak keeps its database: a tmpfs when the machine has
// one (the soak measures sizes, not fsync latency, and writes a few million
// transactions), else the test's temporary directory.
func soakDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "hexcron-retention-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// TestRetentionSoak writes, hour by simulated hour, the rows the daemon writes for every
// firing of the soak's 300-schedule config (about 800 a day: a plan row, an admitted
// attempt in the ledger and its answer, the run's id, URL and trace id, its end; one in
// twenty skipped with a reason), and prunes every hour as the daemon does (Prune). In
// CI it simulates 14 days with a retention of 2 days (a year with 30 days, scaled
// down); with HEXCRON_SOAK=year, 365 days with a retention of 30 days. It checks that the database file stops growing once
// the retention has passed (its size over the last part of the run stays within 10% of
// its size one retention after it filled), that live slots are never pruned whatever
// their age, and that history stays complete inside the retention; it reports the
// longest prune batch and how long `history` queries take at the end.
func TestRetentionSoak(t *testing.T) {
	days, retention := 14, 2*24*time.Hour
	if os.Getenv("HEXCRON_SOAK") == "year" {
		days, retention = 365, 30*24*time.Hour
	}
	conf, err := planner.Parse("soak.yaml", []byte(soakConfig(soakSeed)))
	if err != nil {
		t.Fatal(err)
	}
	conf.State.Retention = retention
	ctx := context.Background()
	path := filepath.Join(soakDir(t), "hexcron.db")
	db, err := state.Open(ctx, path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wall := time.Now()
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(soakSeed, 12))
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}

	// Live slots from the first hour that never end: pruning must leave them.
	live := map[string]state.State{}
	for i, st := range []state.State{state.StatePlanned, state.StateTriggering, state.StateTriggered, state.StateRunning} {
		key := fmt.Sprintf("stuck-%d@%s", i, start.Format(time.RFC3339))
		live[key] = st
		if _, err := db.PlanSlot(ctx, state.Slot{Key: key}, start); err != nil {
			t.Fatal(err)
		}
		if st != state.StatePlanned {
			if _, _, err := db.Admit(ctx, state.Holder{}, start, start, key, func([]state.Attempt) time.Duration { return 0 }); err != nil {
				t.Fatal(err)
			}
		}
		if st == state.StateTriggered || st == state.StateRunning {
			if err := db.Transition(ctx, key, st, state.Update{At: start, RunID: uuid(), Triggered: start}); err != nil {
				t.Fatal(err)
			}
		}
	}

	type sample struct {
		day   int
		bytes int64
		slots int
	}
	var samples []sample
	var longest time.Duration
	var pruned, prunedLedger int64
	batches := 0
	firings := 0
	for day := range days {
		from := start.Add(time.Duration(day) * 24 * time.Hour)
		var due []planner.Firing
		for i := range conf.Schedules {
			s := &conf.Schedules[i]
			for _, n := range s.Between(from, from.Add(24*time.Hour)) {
				due = append(due, s.Firings(n)...)
			}
		}
		sort.Slice(due, func(i, j int) bool { return due[i].Nominal.Before(due[j].Nominal) })
		next := 0
		for h := range 24 {
			hourEnd := from.Add(time.Duration(h+1) * time.Hour)
			for ; next < len(due) && due[next].Nominal.Before(hourEnd); next++ {
				writeFiring(t, db, conf, due[next], rng, uuid)
				firings++
			}
			r, err := Prune(ctx, db, conf, hourEnd, clock.System{})
			if err != nil {
				t.Fatal(err)
			}
			longest = max(longest, r.Longest)
			pruned += r.Slots
			prunedLedger += r.Ledger
			batches += r.Batches
			if h == 23 {
				all, err := db.History(ctx, state.Filter{Since: start})
				if err != nil {
					t.Fatal(err)
				}
				samples = append(samples, sample{day: day + 1, bytes: r.Bytes, slots: len(all)})
			}
		}
	}
	end := start.Add(time.Duration(days) * 24 * time.Hour)

	// Flat: from one retention after the first prune on, within 10% of that size.
	full := int(retention/(24*time.Hour)) * 2
	ref := samples[full-1].bytes
	var peak int64
	for _, s := range samples[full-1:] {
		peak = max(peak, s.bytes)
		if s.bytes > ref*11/10 {
			t.Errorf("day %d: database %d bytes, more than 10%% over day %d's %d: it still grows", s.day, s.bytes, full, ref)
		}
	}
	// Live slots stay, whatever their age.
	for key, st := range live {
		got, err := db.Slot(ctx, key)
		if err != nil || got.State != st {
			t.Errorf("live slot %s: %v, %v; want it kept %s", key, got.State, err, st)
		}
	}
	// Everything inside the retention is still there.
	inside, err := db.History(ctx, state.Filter{Since: end.Add(-retention + 24*time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	wantInside := 0
	for i := range conf.Schedules {
		s := &conf.Schedules[i]
		for _, n := range s.Between(end.Add(-retention+24*time.Hour), end) {
			wantInside += len(s.Firings(n))
		}
	}
	if len(inside) != wantInside {
		t.Errorf("%d slots with nominal in the last %s, want %d (every firing inside the retention)", len(inside), retention-24*time.Hour, wantInside)
	}

	// `history` at the end: the default (last 24h), one schedule's whole history, and the
	// last run per schedule (status).
	timeIt := func(name string, f func() (int, error)) {
		t0 := time.Now()
		n, err := f()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("at the end: %s: %d rows in %v", name, n, time.Since(t0).Round(time.Microsecond))
	}
	timeIt("history --since 24h", func() (int, error) {
		s, err := db.History(ctx, state.Filter{Since: end.Add(-24 * time.Hour)})
		return len(s), err
	})
	timeIt("history --schedule sync-001 --since 0", func() (int, error) {
		s, err := db.History(ctx, state.Filter{Schedule: "sync-001"})
		return len(s), err
	})
	timeIt("history --since 0 --limit 100", func() (int, error) {
		s, err := db.History(ctx, state.Filter{Limit: 100})
		return len(s), err
	})
	timeIt("last run per schedule (status)", func() (int, error) {
		m, err := db.LastRunPerSchedule(ctx)
		return len(m), err
	})
	var b strings.Builder
	for _, s := range samples {
		if s.day%max(1, days/12) == 0 || s.day == days || s.day == full {
			fmt.Fprintf(&b, " day %d: %.1f MiB (%d slots);", s.day, float64(s.bytes)/(1<<20), s.slots)
		}
	}
	t.Logf("%d simulated days, retention %s: %d firings written, %d slots and %d ledger rows pruned in %d batches; longest batch %v",
		days, planner.FormatDuration(retention), firings, pruned, prunedLedger, batches, longest)
	t.Logf("database size (after each day's last prune):%s peak after day %d: %.1f MiB", b.String(), full, float64(peak)/(1<<20))
	t.Logf("wall clock: %v", time.Since(wall).Round(time.Millisecond))
}

// writeFiring writes the rows the daemon writes for one firing: one in twenty skipped
// with a reason, the rest planned, admitted (with a ledger row and its answer),
// triggered and ended a few minutes later.
func writeFiring(t *testing.T, db *state.DB, conf *planner.Config, f planner.Firing, rng *rand.Rand, uuid func() string) {
	t.Helper()
	ctx := context.Background()
	s := conf.Schedule(f.Schedule)
	row := slotOf(f, state.KindScheduled)
	row.Project, row.Timeout = s.Project, s.Timeout
	at := f.Nominal.Add(time.Duration(rng.IntN(30)) * time.Second)
	if rng.IntN(20) == 0 {
		if err := db.SkipSlot(ctx, row, "overlap skip: previous run "+uuid()+" still going", at); err != nil {
			t.Fatal(err)
		}
		return
	}
	if at.After(f.Nominal) {
		row.Planned = at
		row.PlanReason = "rule 60/1h full around the nominal instant (41 before, 19 placed ahead of it)"
	}
	if _, err := db.PlanSlot(ctx, row, f.Nominal.Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	id, _, err := db.Admit(ctx, state.Holder{}, at, at.Add(-time.Hour), f.Slot, func([]state.Attempt) time.Duration { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Complete(ctx, id, at.Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	run := uuid()
	if err := db.Transition(ctx, f.Slot, state.StateTriggered, state.Update{At: at.Add(time.Second), RunID: run,
		RunURL: "https://app.hex.tech/acme/app/" + s.Project + "/latest?runId=" + run, TraceID: uuid(), Triggered: at,
		Project: s.Project, Timeout: s.Timeout}); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Duration(1+rng.IntN(15)) * time.Minute
	end, reason := state.StateCompleted, "hex status COMPLETED"
	if rng.IntN(10) == 0 {
		end, reason = state.StateErrored, "hex status ERRORED"
	}
	if err := db.Transition(ctx, f.Slot, end, state.Update{At: at.Add(elapsed), Reason: reason, Started: at.Add(20 * time.Second),
		Ended: at.Add(elapsed), Elapsed: elapsed, ProjectVersion: "42"}); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonPrunesAtStartAndHourly: the daemon prunes in the background at start and
// then every hour: with retention 1m (the shortest), terminal slots older than what
// its start looks back at (window 5m, catchup 1h, plus an hour) go, recent ones stay,
// and each prune that deleted something logs one line. (Live slots are never pruned:
// TestPruneHistoryRules and TestRetentionSoak.)
func TestDaemonPrunesAtStartAndHourly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		config := `state: {retention: 1m}
schedules:
  - {name: tick, project: ` + queueProject + `, cron: "*/10 * * * *", window: 5m, catchup: 1h}
`
		env := newQueueEnv(t, config, hexsim.Config{Seed: 1, Runs: hexsim.Lifecycle{Pending: time.Second, Running: time.Minute}}, 0)
		ctx := context.Background()
		start := time.Now()
		// An old terminal slot: pruned by the prune at start.
		old := "tick@" + start.Add(-10*24*time.Hour).UTC().Format(time.RFC3339)
		if err := env.db.SkipSlot(ctx, state.Slot{Key: old}, "missed while down", start.Add(-10*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		env.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, err := env.db.Slot(ctx, old); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("old skipped slot after the prune at start: %v, want it pruned", err)
		}
		time.Sleep(6 * time.Hour)
		synctest.Wait()
		env.stop()
		now := time.Now()
		slots, err := env.db.History(ctx, state.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		horizon := now.Add(-5*time.Minute - 2*time.Hour - PruneEvery) // look-back, plus up to an hour since the last prune
		for _, s := range slots {
			if s.State.Terminal() && s.Updated.Before(horizon) {
				t.Errorf("slot %s (%s, updated %v) survived the hourly prune", s.Key, s.State, s.Updated)
			}
		}
		if n := len(slots); n < 12 || n > 25 {
			t.Errorf("%d slots left after 6h of a schedule every 10m: want those of the last 2-3 hours", n)
		}
		// At start (the old slot), then every hour once slots are older than the look-back.
		if n := len(logRecords(env.log.String(), "pruned the database")); n < 5 {
			t.Errorf("%d prune lines in 6h, want at least 5: at start, and each hour from the third", n)
		}
	})
}
