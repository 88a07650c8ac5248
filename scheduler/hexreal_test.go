package scheduler

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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

// Projects of the tests in this file.
const (
	prjRefused = "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
	prjHealthy = "1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d"
	prjOther   = "3e0c6f5d-4a71-4c8d-8e9f-0a1b2c3d4e5f"
	prjMissing = "5f1d7a6e-5b82-4d9e-9f0a-1b2c3d4e5f60"
	prjDraft   = "6a2e8b7f-6c93-4eaf-8a1b-2c3d4e5f6071"
)

// realDaemon is a daemon on hexsim (over an in-memory network) with the Hex client it
// uses, built as `hexcron run` builds them; mod adjusts the client's config.
type realDaemon struct {
	sim  *hexsim.Server
	hc   *hexclient.Client
	dm   *Daemon
	db   *state.DB
	logs *strings.Builder
	path string
	stop func()
}

func newRealDaemon(t *testing.T, simCfg hexsim.Config, config string, mod func(*hexclient.Config)) *realDaemon {
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
	logs := &strings.Builder{}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pn := hexsim.NewPipeNet()
	simCfg.BaseURL = "http://127.0.0.1/api/v1"
	sim := hexsim.New(simCfg)
	stopSim := pn.Serve(sim)
	tr := pn.Transport()
	var once sync.Once
	stop := func() { once.Do(func() { tr.CloseIdleConnections(); stopSim() }) }
	t.Cleanup(stop)
	budget, reads := ClientLimits(conf)
	cfg := hexclient.Config{BaseURL: simCfg.BaseURL, Token: hexclient.StaticToken("hxtp_sim_test"),
		HTTPClient: &http.Client{Transport: tr}, Clock: clock.System{}, Rand: rand.New(rand.NewPCG(1, 2)),
		Logger: logger, Ledger: Ledger{DB: db}, Budget: budget, ReadLimits: reads}
	if mod != nil {
		mod(&cfg)
	}
	hc, err := hexclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := New(Config{Store: db, Hex: hc, Logger: logger, Load: func() (*planner.Config, error) { return planner.LoadFile(path) }})
	if err != nil {
		t.Fatal(err)
	}
	return &realDaemon{sim: sim, hc: hc, dm: dm, db: db, logs: logs, path: path, stop: stop}
}

// run runs the daemon until the returned stop function is called (which waits for it),
// or the test ends.
func (s *realDaemon) run(t *testing.T, reload <-chan struct{}) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.dm.Run(ctx, reload) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (s *realDaemon) slots(t *testing.T) map[string]state.Slot {
	t.Helper()
	all, err := s.db.History(context.Background(), state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]state.Slot{}
	for _, sl := range all {
		out[sl.Key] = sl
	}
	return out
}

func (s *realDaemon) postsTo(project string) []hexsim.Request {
	var out []hexsim.Request
	for _, r := range s.sim.Requests() {
		if r.Op == "RunProject" && strings.Contains(r.Path, project) {
			out = append(out, r)
		}
	}
	return out
}

// TestProject403HourBesideHealthy runs, for one simulated hour, schedules of a project
// that Hex refuses with 403 beside schedules of healthy projects, under each of
// hexsim's 403 choices: at most 2 RunProject requests reach the refusing project, the
// healthy schedules all fire, the refused slot fails with Hex's reason and trace id and
// the later ones are skipped saying so, one ERROR is logged, and nothing pauses. Then
// access is fixed and the config reloaded: the project fires again.
func TestProject403HourBesideHealthy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		access hexsim.Access
	}{
		{"choice project shared for viewing", hexsim.AccessRead},
		{"choice project not shared", hexsim.AccessNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				projects := []hexsim.Project{{ID: prjRefused, Title: "Refused", Published: true, Access: tc.access},
					{ID: prjHealthy, Title: "Healthy", Published: true, Version: 7}, {ID: prjOther, Title: "Other", Published: true}}
				s := newRealDaemon(t, hexsim.Config{Seed: 5, Projects: projects, Runs: hexsim.Lifecycle{Pending: time.Second, Running: time.Minute}}, `
defaults:
  window: 4m
schedules:
  - {name: refused, project: `+prjRefused+`, cron: "*/5 * * * *"}
  - {name: refused-matrix, project: `+prjRefused+`, cron: "2 * * * *", matrix: {region: [emea, amer, apac]}}
  - {name: healthy, project: `+prjHealthy+`, cron: "*/5 * * * *"}
  - {name: other, project: `+prjOther+`, cron: "3-59/5 * * * *"}
`, nil)
				// The start fires the newest slot whose window is still open (other's
				// 23:58, a 1-minute run): other's slots are 5 minutes apart so that no
				// slot of the hour meets a run of its own still going.
				reload := make(chan struct{}, 1)
				stop := s.run(t, reload)
				time.Sleep(time.Hour - time.Second)

				posts := s.postsTo(prjRefused)
				if len(posts) == 0 || len(posts) > 2 {
					t.Fatalf("%d RunProject requests to the refusing project in the hour, want 1 or 2", len(posts))
				}
				for _, p := range posts {
					if p.Status != http.StatusForbidden {
						t.Fatalf("a RunProject to the refusing project answered %d", p.Status)
					}
				}
				slots := s.slots(t)
				conf, _ := planner.LoadFile(s.path)
				fired := 0
				for _, name := range []string{"healthy", "other"} {
					sc := conf.Schedule(name)
					for _, n := range sc.Between(start, start.Add(55*time.Minute)) {
						key := planner.SlotKey(name, n, nil)
						sl, ok := slots[key]
						if !ok || sl.RunID == "" {
							t.Fatalf("healthy slot %s did not fire: %+v", key, sl)
						}
						if name == "healthy" && sl.State == state.StateCompleted && sl.ProjectVersion != "7" {
							t.Errorf("slot %s recorded project version %q, want Hex's 7", key, sl.ProjectVersion)
						}
						fired++
					}
				}
				failed, skipped := 0, 0
				skipRE := regexp.MustCompile(`^403 from Hex at \S+: .+; fix access, then reload$`)
				for key, sl := range slots {
					if !strings.HasPrefix(key, "refused") {
						continue
					}
					switch sl.State {
					case state.StateFailed:
						failed++
						if !strings.HasPrefix(sl.Reason, "403 from Hex: ") || sl.TraceID == "" || !strings.HasSuffix(sl.Reason, "; fix access, then reload") {
							t.Errorf("refused slot %s: reason %q, trace %q", key, sl.Reason, sl.TraceID)
						}
					case state.StateSkipped:
						skipped++
						if !skipRE.MatchString(sl.Reason) {
							t.Errorf("held slot %s: reason %q", key, sl.Reason)
						}
					case state.StatePlanned:
					default:
						t.Errorf("slot %s of the refusing project is %s (%s)", key, sl.State, sl.Reason)
					}
				}
				if failed != len(posts) || skipped < 10 {
					t.Fatalf("%d refused slots failed, %d skipped; want %d failed (one per request) and the rest skipped", failed, skipped, len(posts))
				}
				// One ERROR for the outage (when the project is not shared, the
				// preflight's GetProject gets the 403 first; the RunProject's is a WARN).
				logs := s.logs.String()
				if n := strings.Count(logs, "level=ERROR"); n != 1 {
					t.Fatalf("%d ERROR lines in the hour, want 1 (the outage):\n%s", n, logs)
				}
				if strings.Contains(logs, "triggering is paused") {
					t.Fatal("a 403 paused all triggering")
				}
				t.Logf("%s: %d RunProject to the refusing project, %d refused slots skipped, %d healthy slots fired", tc.name, len(posts), skipped, fired)

				// Access fixed, config reloaded: the next slot of the project fires.
				for _, p := range projects {
					p.Access = hexsim.AccessFull
					s.sim.SetProject(p)
				}
				reload <- struct{}{}
				time.Sleep(10 * time.Minute)
				stop()
				ok := false
				for _, p := range s.postsTo(prjRefused) {
					ok = ok || p.Status == http.StatusCreated
				}
				if !ok {
					t.Fatal("after the fix and a reload, the project never fired")
				}
			})
		})
	}
}

// TestTokenWithoutRunScope: a token that may read but not run (hexsim's choice) is
// refused with 403 on every project; each project is held on its own (at most 2
// RunProject an hour to each), reads and polls go on, and nothing pauses.
func TestTokenWithoutRunScope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRealDaemon(t, hexsim.Config{ReadOnlyTokens: []string{"hxtp_sim_test"}}, `
schedules:
  - {name: a, project: `+prjRefused+`, cron: "*/5 * * * *"}
  - {name: b, project: `+prjHealthy+`, cron: "*/10 * * * *"}
`, nil)
		stop := s.run(t, nil)
		time.Sleep(2*time.Hour - time.Second)
		stop()
		for _, p := range []string{prjRefused, prjHealthy} {
			posts := s.postsTo(p)
			for i := range posts {
				n := 0
				for _, q := range posts[i:] {
					if q.Time.Sub(posts[i].Time) < time.Hour {
						n++
					}
				}
				if n > 2 {
					t.Fatalf("project %s: %d RunProject within an hour of %s", p, n, posts[i].Time)
				}
			}
			if len(posts) < 2 {
				t.Fatalf("project %s: %d RunProject in 2h, want the first and an hourly probe", p, len(posts))
			}
		}
		logs := s.logs.String()
		if n := strings.Count(logs, "level=ERROR"); n != 2 || strings.Contains(logs, "triggering is paused") {
			t.Fatalf("%d ERROR lines (want 2, one per project), or a pause:\n%s", n, logs)
		}
	})
}

// TestPreflightAtStart: the daemon checks every project at start and logs one WARN per
// problem (a missing, an unshared and an unpublished project, naming their schedules);
// it still starts and fires the healthy schedule.
func TestPreflightAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRealDaemon(t, hexsim.Config{Projects: []hexsim.Project{
			{ID: prjHealthy, Title: "Healthy", Published: true},
			{ID: prjRefused, Title: "Private", Published: true, Access: hexsim.AccessNone},
			{ID: prjDraft, Title: "Draft"},
		}}, `
schedules:
  - {name: healthy, project: `+prjHealthy+`, cron: "*/5 * * * *"}
  - {name: missing, project: `+prjMissing+`, cron: "*/5 * * * *"}
  - {name: private, project: `+prjRefused+`, cron: "0 6 * * *"}
  - {name: draft, project: `+prjDraft+`, cron: "0 6 * * *"}
  - {name: draft-too, project: `+prjDraft+`, cron: "0 7 * * *"}
`, nil)
		stop := s.run(t, nil)
		// The preflight waits a minute (the all-calls window a previous process may
		// have filled), then reads one project every 5 s.
		start := time.Now()
		time.Sleep(preflightStartDelay + 5*preflightPace)
		stop()
		logs := s.logs.String()
		for _, line := range strings.Split(logs, "\n") {
			if !strings.Contains(line, `msg="preflight:`) {
				continue
			}
			rec := map[string]string{}
			for _, f := range splitLogfmt(line) {
				if k, v, ok := strings.Cut(f, "="); ok {
					rec[k] = v
				}
			}
			if at, err := time.Parse(time.RFC3339Nano, rec["time"]); err != nil || at.Before(start.Add(preflightStartDelay)) {
				t.Errorf("preflight line at %q (%v): before a minute had passed since the start at %s", rec["time"], err, start)
			}
		}
		for _, want := range []string{
			`msg="preflight: the project's triggers would fail: does not exist (404 from Hex)`,
			`project=` + prjMissing + ` schedules=missing`,
			`msg="preflight: the project's triggers would fail: not visible to the token's user (403 from Hex`,
			`project=` + prjRefused + ` schedules=private`,
			`msg="preflight: the project's triggers would fail: never published`,
			`project=` + prjDraft + ` schedules=draft,draft-too`,
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q", want)
			}
		}
		if n := strings.Count(logs, `msg="preflight:`); n != 3 {
			t.Errorf("%d preflight lines, want 3 (one per problem):\n%s", n, logs)
		}
		fired := false
		for key, sl := range s.slots(t) {
			fired = fired || (strings.HasPrefix(key, "healthy@") && sl.RunID != "")
		}
		if !fired {
			t.Error("the healthy schedule did not fire")
		}
	})
}

// TestReloadRefusesBaseURLChange: a reload that changes hex.base_url is refused (the
// Hex client is built at start) and says a restart applies it; the old config runs on.
func TestReloadRefusesBaseURLChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sched = "schedules:\n  - {name: a, project: " + prjHealthy + ", cron: \"*/5 * * * *\"}\n"
		s := newRealDaemon(t, hexsim.Config{}, "hex:\n  base_url: http://127.0.0.1\n"+sched, nil)
		reload := make(chan struct{}, 1)
		stop := s.run(t, reload)
		time.Sleep(time.Minute)
		if err := os.WriteFile(s.path, []byte("hex:\n  base_url: https://eu.hex.tech\n"+sched+
			"  - {name: b, project: "+prjHealthy+", cron: \"*/5 * * * *\"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		reload <- struct{}{}
		time.Sleep(10 * time.Minute)
		stop()
		logs := s.logs.String()
		if !strings.Contains(logs, "reload refused: hex.base_url changed from http://127.0.0.1/api/v1 to https://eu.hex.tech/api/v1") ||
			!strings.Contains(logs, "needs a restart") {
			t.Fatalf("no refusal in the log:\n%s", logs)
		}
		for key := range s.slots(t) {
			if strings.HasPrefix(key, "b@") {
				t.Fatalf("slot %s of the refused config was planned", key)
			}
		}
	})
}

// TestUnresolvableTriggerIsUnknown: a 500 after Hex created the run, and a run listing
// (unordered, hexsim's choice) longer than the client's page bound: the slot is
// recorded unknown with the reason, never skipped and never sent again.
func TestUnresolvableTriggerIsUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRealDaemon(t, hexsim.Config{ListOrder: hexsim.ListUnordered,
			Faults: hexsim.Faults{Next: []hexsim.Fault{hexsim.Fault5xxAfterCreate}}}, `
schedules:
  - {name: a, project: `+prjHealthy+`, cron: "0 * * * *", window: 30m}
`, func(c *hexclient.Config) { c.ReconcilePages = 2 })
		for range 300 {
			s.sim.AddRun(prjHealthy, hexsim.TriggerAPI)
		}
		time.Sleep(2 * time.Minute) // the older runs are older than the skew; the 00:00 slot's window is open
		stop := s.run(t, nil)
		time.Sleep(50 * time.Minute)
		stop()
		var sl state.Slot
		for key, v := range s.slots(t) {
			if strings.HasPrefix(key, "a@") {
				sl = v
			}
		}
		if sl.State != state.StateUnknown || !strings.Contains(sl.Reason, "run listing") || !strings.Contains(sl.Reason, "Hex may have run it") {
			t.Fatalf("slot %+v, want unknown with the reason", sl)
		}
		if n := len(s.postsTo(prjHealthy)); n != 1 {
			t.Fatalf("%d RunProject requests, want 1 (never re-sent on a partial listing)", n)
		}
	})
}
