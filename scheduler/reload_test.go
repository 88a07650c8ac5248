package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/planner"
	"hexcron/state"
)

// runProjectTimes returns when hexsim received each RunProject request.
func runProjectTimes(reqs []time.Time) string {
	var b strings.Builder
	for _, t := range reqs {
		b.WriteString(t.Format("15:04:05 "))
	}
	return b.String()
}

// TestReloadDoesNotHoldUpTriggers: while a reload's parse takes long, the loop still
// fires every due slot on time; the parsed config is applied when it is ready.
func TestReloadDoesNotHoldUpTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db := openDB(t, filepath.Join(t.TempDir(), "hexcron.db"))
		cfgPath := writeFenceConfig(t, "* * * * *")
		release := make(chan struct{})
		calls := 0
		load := func() (*planner.Config, error) {
			calls++
			if calls > 1 {
				<-release // a slow parse
			}
			return planner.LoadFile(cfgPath)
		}
		logs := &lockedWriter{w: &strings.Builder{}}
		logger := slog.New(slog.NewTextHandler(logs, nil))
		sim, dm, stop := loadDaemon(t, db, nil, load, logger)
		defer stop()
		reload := make(chan struct{}, 1)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- dm.Run(runCtx, reload) }()

		time.Sleep(30 * time.Second)
		reload <- struct{}{}
		time.Sleep(2 * time.Minute) // the slots of 00:01 and 00:02 are due while the parse waits
		var posts []time.Time
		for _, r := range sim.Requests() {
			if r.Op == "RunProject" {
				posts = append(posts, r.Time)
			}
		}
		start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, due := range []time.Time{start.Add(time.Minute), start.Add(2 * time.Minute)} {
			n := 0
			for _, p := range posts {
				if !p.Before(due) && p.Sub(due) < 5*time.Second {
					n++
				}
			}
			if n != 2 {
				t.Errorf("%d triggers within 5s of %s while the reload was parsing, want 2 (alpha, beta); RunProject at %s",
					n, due.Format("15:04:05"), runProjectTimes(posts))
			}
		}
		if strings.Contains(logs.String(), "msg=reloaded") {
			t.Errorf("reloaded before the parse finished")
		}
		close(release)
		time.Sleep(time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "msg=reloaded") {
			t.Errorf("the parsed config was not applied:\n%s", logs.String())
		}
	})
}

// TestReloadOfHostileConfigKeepsOldOne: a SIGHUP with a matrix bomb or a 50 MB file is
// refused quickly (counted, not built; the size checked before reading) and the
// previous config keeps firing.
func TestReloadOfHostileConfigKeepsOldOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db := openDB(t, filepath.Join(t.TempDir(), "hexcron.db"))
		cfgPath := writeFenceConfig(t, "* * * * *")
		logs := &lockedWriter{w: &strings.Builder{}}
		logger := slog.New(slog.NewTextHandler(logs, nil))
		sim, dm, stop := tenureDaemon(t, db, nil, cfgPath, logger)
		defer stop()
		reload := make(chan struct{}, 1)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- dm.Run(runCtx, reload) }()
		time.Sleep(10 * time.Second)

		var bomb strings.Builder
		bomb.WriteString("schedules:\n  - name: alpha\n    project: " + fenceProjectA + "\n    cron: \"0 0 1 1 *\"\n    matrix:\n")
		for k := range 10 {
			fmt.Fprintf(&bomb, "      k%d: [a, b, c, d, e, f, g, h, i, j]\n", k)
		}
		huge := bytes.Repeat([]byte("- x\n"), 50<<20/4)
		for _, content := range [][]byte{[]byte(bomb.String()), huge} {
			if err := os.WriteFile(cfgPath, content, 0o600); err != nil {
				t.Fatal(err)
			}
			reload <- struct{}{}
			time.Sleep(time.Minute)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(logs.String(), "reload failed; the previous config keeps running"); n != 2 {
			t.Errorf("%d failed reloads logged, want 2:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "10000000000 combinations per firing time") ||
			!strings.Contains(logs.String(), "hexcron reads schedule files of at most 4194304 bytes") {
			t.Errorf("the reasons are not logged:\n%s", logs.String())
		}
		slots, err := db.History(ctx, state.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		triggered := 0
		for _, s := range slots {
			if s.RunID != "" {
				triggered++
			}
		}
		if triggered < 4 || len(sim.Runs()) != triggered {
			t.Errorf("%d slots triggered (hexsim has %d runs); the old config must keep firing every minute", triggered, len(sim.Runs()))
		}
	})
}

// String reads what was written so far, under the writer's lock.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
