package scheduler

import (
	"context"
	"errors"
	"time"

	"hexcron/planner"
	"hexcron/state"
)

// A run hexcron started (the daemon, or `hexcron trigger`) is tracked until it ends,
// and cancelled at its timeout, whatever happens to its schedule: the poller reads the
// project and the timeout from the run's row, where the trigger wrote them, and falls
// back to the config only for rows written before schema 3.

// pinRuns writes, on every run not ended whose row lacks them (rows from before schema
// 3), the project and timeout of its schedule in conf. It runs at start and, with the
// config about to be replaced, at every reload, so that a reload removing a schedule
// never leaves one of its runs untracked.
func (d *Daemon) pinRuns(ctx context.Context, conf *planner.Config, now time.Time) {
	runs, err := d.cfg.Store.ActiveRuns(ctx)
	if err != nil {
		d.log.Error("read active runs", keyErr, err)
		return
	}
	for _, r := range runs {
		if r.Project != "" && r.Timeout > 0 {
			continue
		}
		s := scheduleNamed(conf, r.Schedule)
		if s == nil {
			continue
		}
		u := state.Update{At: now}
		if r.Project == "" {
			u.Project = s.Project
		}
		if r.Timeout <= 0 {
			u.Timeout = s.Timeout
		}
		// The same state: only the fields change. If the poller moved the run on
		// meanwhile, the refused transition means it ended or started running; a run
		// still going is pinned by the next call.
		if err := d.cfg.Store.Transition(ctx, r.Key, r.State, u); err != nil && !errors.Is(err, state.ErrIllegalTransition) {
			d.log.Error("record run's project and timeout", keySchedule, r.Schedule, keySlot, r.Key, keyErr, err)
		}
	}
}

// projectOf is the Hex project of run r: the one its row records, else (a row from
// before schema 3) its schedule's in conf, "" when neither is known.
func projectOf(conf *planner.Config, r state.Slot) string {
	if r.Project != "" {
		return r.Project
	}
	if s := scheduleNamed(conf, r.Schedule); s != nil {
		return s.Project
	}
	return ""
}

// timeoutOf is the timeout of run r: the one its row records, else its schedule's in
// conf, 0 (none) when neither is known.
func timeoutOf(conf *planner.Config, r state.Slot) time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	if s := scheduleNamed(conf, r.Schedule); s != nil {
		return s.Timeout
	}
	return 0
}
