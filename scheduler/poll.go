package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/state"
)

// poll tracks every run not yet terminal (this daemon's and those `hexcron trigger`
// started) until ctx is done: status polls through the client's read budget, less often
// as runs age, one GetProjectRuns where it covers several runs of a project, and a
// CancelRun for a run past its schedule's timeout.
func (d *Daemon) poll(ctx context.Context) {
	c := d.cfg.Clock
	last := map[string]time.Time{} // run id -> last polled
	warned := map[string]bool{}    // run id -> unknown status already logged
	for ctx.Err() == nil {
		now := c.Now()
		runs, err := d.cfg.Store.ActiveRuns(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("poll: read active runs", keyErr, err)
				_ = clock.Sleep(ctx, c, 5*time.Second)
			}
			continue
		}
		d.cfg.Metrics.SetRunsInFlight(len(runs))
		conf := d.config()
		next := now.Add(time.Minute)
		var due []state.Slot
		live := map[string]bool{}
		for _, r := range runs {
			if r.RunID == "" {
				continue
			}
			live[r.RunID] = true
			if timeout := timeoutOf(conf, r); timeout > 0 {
				end := r.Triggered.Add(timeout)
				if !now.Before(end) {
					d.timeout(ctx, r, timeout)
					continue
				}
				next = minTime(next, end)
			}
			at := nextPollAt(r, last[r.RunID])
			if at.After(now) {
				next = minTime(next, at)
				continue
			}
			due = append(due, r)
		}
		for id := range last {
			if !live[id] {
				delete(last, id)
				delete(warned, id)
			}
		}
		if len(due) > 0 {
			d.pollOnce(ctx, due, last, warned)
			continue
		}
		t := c.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
		case <-d.pollWake:
		case <-t.C():
		}
		t.Stop()
	}
}

// nextPollAt is when run r should next be polled, given when it was last polled.
func nextPollAt(r state.Slot, lastPolled time.Time) time.Time {
	if lastPolled.IsZero() {
		return r.Triggered.Add(firstPollDelay)
	}
	return lastPolled.Add(pollInterval(lastPolled.Sub(r.Triggered)))
}

// pollOnce makes one read call for the most overdue run: a GetProjectRuns when other
// due runs share its project (those it finds are settled by the same call), else a
// GetRunStatus.
func (d *Daemon) pollOnce(ctx context.Context, due []state.Slot, last map[string]time.Time, warned map[string]bool) {
	conf := d.config()
	sort.Slice(due, func(i, j int) bool {
		return nextPollAt(due[i], last[due[i].RunID]).Before(nextPollAt(due[j], last[due[j].RunID]))
	})
	first := due[0]
	project := projectOf(conf, first)
	if project == "" {
		last[first.RunID] = d.cfg.Clock.Now()
		d.end(ctx, first, state.StateUnknown, endedBy(d.cfg.Clock.Now(), "schedule removed from the config before hexcron recorded the run's project: run no longer tracked"))
		return
	}
	var group []state.Slot
	for _, r := range due {
		if projectOf(conf, r) == project {
			group = append(group, r)
		}
	}
	if len(group) >= 2 {
		limit := min(100, max(25, 2*len(group)))
		page, err := d.cfg.Hex.GetProjectRuns(ctx, project, hexclient.RunsQuery{Limit: limit, RunTriggerFilter: "API"})
		now := d.cfg.Clock.Now()
		if err == nil {
			byID := map[string]hexclient.RunStatus{}
			for _, s := range page.Runs {
				byID[s.RunID] = s
			}
			found := 0
			for _, r := range group {
				if s, ok := byID[r.RunID]; ok {
					last[r.RunID] = now
					d.apply(ctx, r, &s, warned)
					found++
				}
			}
			if found > 0 {
				return // the rest, if any, get a GetRunStatus of their own next round
			}
		} else if ctx.Err() != nil {
			return
		} else if !heldQuietly(err) {
			d.log.Warn("poll: list runs", keyProject, project, keyErr, err)
		}
	}
	s, err := d.cfg.Hex.GetRunStatus(ctx, project, first.RunID)
	last[first.RunID] = d.cfg.Clock.Now()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		var apiErr *hexclient.APIError
		if errors.As(err, &apiErr) && apiErr.Status == 404 {
			d.end(ctx, first, state.StateUnknown, endedBy(d.cfg.Clock.Now(), "hex answered 404 for the run: "+apiErr.Reason))
			return
		}
		if !heldQuietly(err) {
			d.log.Warn("poll: run status", keySchedule, first.Schedule, keySlot, first.Key, keyRun, first.RunID, keyErr, err)
		}
		return
	}
	d.apply(ctx, first, s, warned)
}

// apply records what a poll learned about run r.
func (d *Daemon) apply(ctx context.Context, r state.Slot, s *hexclient.RunStatus, warned map[string]bool) {
	st, known := StateOfStatus(s.Status)
	switch {
	case !known:
		if !warned[r.RunID] {
			warned[r.RunID] = true
			d.log.Warn("unknown run status; treated as not finished", keySchedule, r.Schedule, keySlot, r.Key, keyRun, r.RunID, keyStatus, string(s.Status))
		}
	case st == state.StateRunning:
		if r.State != state.StateRunning {
			if err := d.cfg.Store.Transition(ctx, r.Key, state.StateRunning, state.Update{At: d.cfg.Clock.Now(), Started: s.StartTime, ProjectVersion: s.ProjectVersion}); err != nil {
				d.log.Error("record running", keySchedule, r.Schedule, keySlot, r.Key, keyErr, err)
				return
			}
			d.log.Debug("running", keySchedule, r.Schedule, keySlot, r.Key, keyRun, r.RunID)
		}
	case st.Terminal():
		_, u := RunEnd(s, d.cfg.Clock.Now())
		d.end(ctx, r, st, u)
	}
}

// end records a run's final state (u: RunEnd's, or hexcron's reason), frees a kernel
// for held triggers, and tells the loop (for queue policies and max_running).
func (d *Daemon) end(ctx context.Context, r state.Slot, st state.State, u state.Update) {
	if err := d.cfg.Store.Transition(ctx, r.Key, st, u); err != nil {
		var te *state.TransitionError
		if errors.As(err, &te) && te.From.Terminal() {
			// Another process recorded its end first (a daemon that took over, or
			// `hexcron trigger --wait`): nothing left to do.
			d.log.Debug("run end already recorded", keySchedule, r.Schedule, keySlot, r.Key, keyRun, r.RunID, "state", string(te.From))
			return
		}
		d.log.Error("record run end", keySchedule, r.Schedule, keySlot, r.Key, keyErr, err)
		return
	}
	d.cfg.Metrics.ObserveRun(r.Schedule, string(st))
	if st == state.StateCompleted {
		d.cfg.Metrics.SetLastSuccess(r.Schedule, u.Ended)
	}
	attrs := []any{keySchedule, r.Schedule, keySlot, r.Key, keyRun, r.RunID}
	if u.Elapsed > 0 {
		attrs = append(attrs, keyElapsed, planner.FormatDuration(u.Elapsed))
	}
	if st == state.StateCompleted {
		d.log.Info(string(st), attrs...)
	} else {
		d.log.Warn(string(st), append(attrs, keyReason, u.Reason)...)
	}
	d.cfg.Hex.KernelFreed()
	select {
	case d.events <- runEnded{series: seriesOfSlot(r.Key)}:
	case <-ctx.Done():
	}
}

// endedBy is the record of a run hexcron ended itself (timeout, 404, schedule gone).
func endedBy(now time.Time, reason string) state.Update {
	return state.Update{At: now, Reason: reason, Ended: now}
}

// timeout cancels a run still going after its schedule's timeout and records it.
func (d *Daemon) timeout(ctx context.Context, r state.Slot, timeout time.Duration) {
	if err := d.cfg.Hex.CancelRun(ctx, projectOf(d.config(), r), r.RunID); err != nil {
		var apiErr *hexclient.APIError
		if !(errors.As(err, &apiErr) && apiErr.Status == 404) {
			if ctx.Err() == nil && !heldQuietly(err) {
				d.log.Warn("timeout: cancel failed; will retry", keySchedule, r.Schedule, keySlot, r.Key, keyRun, r.RunID, keyErr, err)
			}
			return
		}
	}
	d.end(ctx, r, state.StateTimedOut, endedBy(d.cfg.Clock.Now(), fmt.Sprintf("still going after timeout %s; cancelled", planner.FormatDuration(timeout))))
}

// StateOfStatus maps a Hex run status to a slot state; an unknown status is not known
// (and so never terminal). It is the one mapping, for the daemon's polls and
// `hexcron trigger --wait`.
func StateOfStatus(status hexclient.Status) (state.State, bool) {
	switch status {
	case hexclient.StatusPending:
		return state.StateTriggered, true
	case hexclient.StatusRunning:
		return state.StateRunning, true
	case hexclient.StatusCompleted:
		return state.StateCompleted, true
	case hexclient.StatusErrored:
		return state.StateErrored, true
	case hexclient.StatusKilled:
		return state.StateKilled, true
	case hexclient.StatusUnableToAllocateKernel:
		return state.StateUnableToAllocate, true
	}
	return "", false
}

// StatusOfState is StateOfStatus the other way: the Hex run status a slot state stands
// for (the trigger gateway answers run status from hexcron's tracking with it). A run
// hexcron lost track of (unknown) is ERRORED: nobody can say it completed; a run
// hexcron cancelled at its timeout is KILLED; a slot not yet running is PENDING.
func StatusOfState(s state.State) hexclient.Status {
	switch s {
	case state.StateRunning:
		return hexclient.StatusRunning
	case state.StateCompleted:
		return hexclient.StatusCompleted
	case state.StateErrored, state.StateUnknown:
		return hexclient.StatusErrored
	case state.StateKilled, state.StateTimedOut:
		return hexclient.StatusKilled
	case state.StateUnableToAllocate:
		return hexclient.StatusUnableToAllocateKernel
	}
	return hexclient.StatusPending
}

// RunEnd is how a run Hex reports ended is recorded at now: the state its status maps
// to (StateUnknown for a status hexcron does not know), the reason "hex status S",
// Hex's start, end (now when Hex gives none), elapsed time (end minus start when Hex
// gives none) and project version.
func RunEnd(rs *hexclient.RunStatus, now time.Time) (state.State, state.Update) {
	st, ok := StateOfStatus(rs.Status)
	if !ok || !st.Terminal() {
		st = state.StateUnknown
	}
	u := state.Update{At: now, Reason: "hex status " + string(rs.Status), Started: rs.StartTime, Ended: rs.EndTime,
		Elapsed: rs.Elapsed, ProjectVersion: rs.ProjectVersion}
	if u.Ended.IsZero() {
		u.Ended = now
	}
	if u.Elapsed == 0 && !rs.StartTime.IsZero() && rs.EndTime.After(rs.StartTime) {
		u.Elapsed = rs.EndTime.Sub(rs.StartTime)
	}
	return st, u
}

// heldQuietly reports whether err is a request to a project held after a 403 that was
// not sent: the hold logged its ERROR once; each poll it holds back needs no line.
func heldQuietly(err error) bool {
	var refused *hexclient.ProjectRefusedError
	return errors.As(err, &refused) && !refused.Sent
}
