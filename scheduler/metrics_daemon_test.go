package scheduler

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	dto "github.com/prometheus/client_model/go"

	"hexcron/hexclient/hexsim"
	"hexcron/planner"
	"hexcron/state"
)

// TestDaemonMetricsAcrossRestart runs the daemon on hexsim for a few virtual minutes,
// checks its metrics against the database, then starts a second daemon (a restart: new
// process, new metrics) on the same database: before anything runs, its
// hexcron_last_success_timestamp_seconds already says what the first one's said, so a
// stale-schedule alert neither resolves nor fires because of a restart. A schedule the
// database knows but the config no longer has gets no series.
func TestDaemonMetricsAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, "schedules.yaml")
		write := func(text string) {
			if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		const minutely = "  - {name: minutely, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: \"* * * * *\"}\n"
		const hourly = "  - {name: hourly, project: 9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c, cron: \"0 * * * *\", window: 59m}\n"
		write("schedules:\n" + minutely + hourly)
		conf, err := planner.LoadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		db, err := state.Open(ctx, filepath.Join(dir, "hexcron.db"), state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		simCfg := hexsim.Config{Seed: 3, Runs: hexsim.Lifecycle{Pending: time.Second, Running: 5 * time.Second}}
		logger := slog.New(slog.DiscardHandler)

		// run starts a daemon with fresh metrics, calls during once it is up and idle
		// (before any time passes), lets it work for d of virtual time and stops it.
		run := func(d time.Duration, during func(m *Metrics)) *Metrics {
			m := NewMetrics("test")
			p := simOnPipe(t, simCfg)
			defer p.stop()
			dm := p.daemon(t, db, conf, cfgPath, logger, 1)
			dm.cfg.Metrics = m
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- dm.Run(runCtx, nil) }()
			synctest.Wait()
			if during != nil {
				during(m)
			}
			time.Sleep(d)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			return m
		}

		m1 := run(10*time.Minute, nil)
		fams := gather(t, m1)
		slots, err := db.History(ctx, state.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		completed := map[string]int{}
		triggered := map[string]int{}
		lastEnded := map[string]time.Time{}
		for _, s := range slots {
			if s.RunID != "" {
				triggered[s.Schedule]++
			}
			if s.State == state.StateCompleted {
				completed[s.Schedule]++
				if s.Ended.After(lastEnded[s.Schedule]) {
					lastEnded[s.Schedule] = s.Ended
				}
			}
		}
		if completed["minutely"] < 5 || completed["hourly"] < 1 {
			t.Fatalf("completed runs per schedule: %v; the test needs several", completed)
		}
		lateness := uint64(0)
		for _, name := range []string{"minutely", "hourly"} {
			got := value(sample(t, fams, "hexcron_triggers_total", map[string]string{"schedule": name, "outcome": "created"})) +
				value(sample(t, fams, "hexcron_triggers_total", map[string]string{"schedule": name, "outcome": "adopted"}))
			if int(got) != triggered[name] {
				t.Errorf("%s: created+adopted = %v, the database has %d slots with a run", name, got, triggered[name])
			}
			lateness += uint64(got)
			if got := value(sample(t, fams, "hexcron_runs_total", map[string]string{"schedule": name, "status": "completed"})); int(got) != completed[name] {
				t.Errorf("%s: runs completed = %v, the database has %d", name, got, completed[name])
			}
			if got, want := value(sample(t, fams, "hexcron_last_success_timestamp_seconds", map[string]string{"schedule": name})),
				unixSeconds(lastEnded[name]); got != want {
				t.Errorf("%s: last success %v, the database's latest end %v", name, got, want)
			}
		}
		if h := sample(t, fams, "hexcron_trigger_lateness_seconds", nil).GetHistogram(); h.GetSampleCount() != lateness {
			t.Errorf("lateness observations %d, want one per triggered slot (%d)", h.GetSampleCount(), lateness)
		}
		if v := value(sample(t, fams, "hexcron_next_firing_timestamp_seconds", nil)); v < unixSeconds(time.Now()) {
			t.Errorf("next firing %v is before the stop (%v)", v, unixSeconds(time.Now()))
		}

		// The restart: the config no longer has hourly (its rows stay in the database).
		write("schedules:\n" + minutely)
		if conf, err = planner.LoadFile(cfgPath); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		var fams2 map[string]*dto.MetricFamily
		run(time.Second, func(m2 *Metrics) { fams2 = gather(t, m2) })
		want := unixSeconds(lastEnded["minutely"].Truncate(time.Millisecond)) // the database keeps milliseconds
		if got := value(sample(t, fams2, "hexcron_last_success_timestamp_seconds", map[string]string{"schedule": "minutely"})); got != want {
			t.Errorf("after the restart: last success of minutely = %v, want %v (from the database)", got, want)
		}
		for _, name := range []string{"hexcron_last_success_timestamp_seconds", "hexcron_triggers_total", "hexcron_schedule_interval_seconds"} {
			for _, s := range series(fams2, name) {
				if strings.Contains(s, "hourly") {
					t.Errorf("%s{%s} exported for a schedule not in the config", name, s)
				}
			}
		}
		if got := value(sample(t, fams2, "hexcron_loop_last_run_timestamp_seconds", nil)); got != unixSeconds(restarted) {
			t.Errorf("loop last ran at %v, want the start %v", got, unixSeconds(restarted))
		}
		if got := fams2["hexcron_runs_total"].GetMetric(); len(got) != 6 || countersSum(got) != 0 {
			t.Errorf("after the restart: %d runs_total series summing to %v, want the 6 of minutely at 0", len(got), countersSum(got))
		}
	})
}

func countersSum(ms []*dto.Metric) float64 {
	var s float64
	for _, m := range ms {
		s += m.GetCounter().GetValue()
	}
	return s
}
