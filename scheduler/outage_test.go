package scheduler

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hexcron/clock"
	"hexcron/state"
)

// flakyStore is a real SQLite Store that answers ErrUnreachable while down is set.
type flakyStore struct {
	*state.DB
	down atomic.Bool
}

func (f *flakyStore) err() error {
	if f.down.Load() {
		return state.Error("op", "postgres://test", state.ErrUnreachable, "nothing was changed", nil)
	}
	return nil
}

func (f *flakyStore) Transition(ctx context.Context, key string, to state.State, u state.Update) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.DB.Transition(ctx, key, to, u)
}

func (f *flakyStore) SkipSlot(ctx context.Context, s state.Slot, reason string, at time.Time) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.DB.SkipSlot(ctx, s, reason, at)
}

func (f *flakyStore) PlanSlot(ctx context.Context, s state.Slot, now time.Time) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.DB.PlanSlot(ctx, s, now)
}

func (f *flakyStore) ActiveRuns(ctx context.Context) ([]state.Slot, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.DB.ActiveRuns(ctx)
}

// TestOutageKeepsWritesInOrder: while the database is unreachable, the daemon's writes
// are kept in memory and the runs in flight still listed (with what was kept applied);
// when it answers again they are written in order. The outage is one ERROR and its end
// one INFO, however many calls met it.
func TestOutageKeepsWritesInOrder(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()+"/hexcron.db")
	fs := &flakyStore{DB: db}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	g := newGuardedStore(fs, log, clock.System{}, nil)

	const a, b, c = "a@2026-12-01T09:00:00Z", "b@2026-12-01T09:00:00Z", "c@2026-12-01T09:00:00Z"
	for _, k := range []string{a, b} {
		if _, err := g.PlanSlot(ctx, state.Slot{Key: k}, t0); err != nil {
			t.Fatal(err)
		}
		if err := g.Transition(ctx, k, state.StateTriggering, state.Update{At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Transition(ctx, b, state.StateTriggered, state.Update{At: t0, RunID: "run-b", Triggered: t0}); err != nil {
		t.Fatal(err)
	}
	if runs, err := g.ActiveRuns(ctx); err != nil || len(runs) != 1 || runs[0].RunID != "run-b" {
		t.Fatalf("active runs = %+v, %v", runs, err)
	}

	fs.down.Store(true)
	steps := []func() error{
		func() error {
			return g.Transition(ctx, a, state.StateTriggered, state.Update{At: t0, RunID: "run-a", Triggered: t0, Project: "p"})
		},
		func() error { return g.Transition(ctx, a, state.StateRunning, state.Update{At: t0.Add(time.Second)}) },
		func() error {
			return g.Transition(ctx, b, state.StateCompleted, state.Update{At: t0.Add(time.Second), Ended: t0})
		},
		func() error { _, err := g.PlanSlot(ctx, state.Slot{Key: c}, t0); return err },
		func() error { return g.SkipSlot(ctx, state.Slot{Key: c}, "window closed", t0.Add(2*time.Second)) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("write %d during the outage: %v, want it kept (nil)", i, err)
		}
	}
	if g.Kept() != len(steps) {
		t.Errorf("%d writes kept, want %d", g.Kept(), len(steps))
	}
	runs, err := g.ActiveRuns(ctx)
	if err != nil || len(runs) != 1 || runs[0].Key != a || runs[0].State != state.StateRunning || runs[0].RunID != "run-a" {
		t.Errorf("active runs during the outage = %+v, %v; want a running (b ended, in memory)", runs, err)
	}
	if s, _ := db.Slot(ctx, a); s.State != state.StateTriggering {
		t.Errorf("slot a is %s in the database during the outage: nothing may be written", s.State)
	}

	fs.down.Store(false)
	g.Flush(ctx)
	if g.Kept() != 0 {
		t.Errorf("%d writes still kept after the database answered", g.Kept())
	}
	for key, want := range map[string]state.State{a: state.StateRunning, b: state.StateCompleted, c: state.StateSkipped} {
		if s, err := db.Slot(ctx, key); err != nil || s.State != want {
			t.Errorf("slot %s after the outage: %s, %v; want %s", key, s.State, err, want)
		}
	}
	if s, _ := db.Slot(ctx, a); s.RunID != "run-a" || s.Project != "p" {
		t.Errorf("slot a lost its kept fields: %+v", s)
	}
	text := logs.String()
	if n := strings.Count(text, "level=ERROR"); n != 1 || !strings.Contains(text, "the database is unreachable") {
		t.Errorf("%d ERROR lines for one outage, want 1:\n%s", n, text)
	}
	if n := strings.Count(text, "the database answers again"); n != 1 {
		t.Errorf("%d end-of-outage lines, want 1:\n%s", n, text)
	}
}

// TestDemoteHandler: WARN and ERROR lines whose error is the database being
// unreachable go to DEBUG (the outage has its one ERROR); others are untouched.
func TestDemoteHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(demoteHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	down := state.Error("op", "x", state.ErrUnreachable, "", nil)
	log.Error("write heartbeat", keyErr, down)
	log.Error("record failed", keyErr, context.DeadlineExceeded)
	got := buf.String()
	if !strings.Contains(got, `level=DEBUG msg="write heartbeat"`) || !strings.Contains(got, `level=ERROR msg="record failed"`) {
		t.Errorf("demoted log:\n%s", got)
	}
}
