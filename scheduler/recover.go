package scheduler

import (
	"context"
	"errors"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/state"
)

// recoverSlots settles every slot a previous process left in `triggering` (it stopped,
// or was killed, between claiming the slot and recording Hex's answer). A slot whose
// claim belongs to another process that is still registered and live (a `hexcron
// trigger` at work) is left to it; settleOrphans takes it over once that process is
// gone. Each other slot is settled in its own goroutine once the interrupted attempt
// can no longer be in flight: adopt the run Hex has, re-trigger when Hex has none and
// the slot's window is still open, else record it skipped with the reason; when Hex's
// listing cannot tell, record it unknown (Hex may have run it). Runs left in
// triggered/running need nothing here: the poller picks them up from the database.
func (d *Daemon) recoverSlots(ctx, _ context.Context, now time.Time) error {
	pending, err := d.cfg.Store.SlotsInState(ctx, state.StateTriggering)
	if err != nil {
		return err
	}
	var live map[string]state.Owner
	for _, p := range pending {
		if p.Owner != "" && p.Owner != d.me() {
			if live == nil {
				if live, err = d.liveOwners(ctx, now); err != nil {
					return err
				}
			}
			if o, ok := live[p.Owner]; ok {
				d.log.Info("left to the process that claimed it", keySchedule, p.Schedule, keySlot, p.Key,
					"owner", p.Owner, "role", string(o.Role), "pid", o.PID)
				continue
			}
		}
		d.startSettle(ctx, p, "recovering interrupted trigger")
	}
	return nil
}

// settle decides one interrupted slot; see recoverSlots.
func (d *Daemon) settle(ctx context.Context, p state.Slot) {
	c := d.cfg.Clock
	// What Hex said is recorded even when a stop comes in between.
	wctx := context.WithoutCancel(ctx)
	if err := clock.Sleep(ctx, c, p.LastAttempt.Add(d.cfg.Reconcile).Sub(c.Now())); err != nil {
		return
	}
	conf := d.config()
	s := scheduleNamed(conf, p.Schedule)
	project := projectOf(conf, p) // the row's: the attempt went there, whatever the config says now
	if project == "" {
		d.recordSkip(wctx, p, "interrupted mid-trigger and its schedule is gone: cannot ask Hex")
		return
	}
	claimed := func(runID string) bool {
		slot, ok, err := d.cfg.Store.ClaimedRun(ctx, runID)
		return err != nil || (ok && slot != p.Key)
	}
	var run, err = d.cfg.Hex.Reconcile(ctx, project, p.LastAttempt, claimed)
	for attempt := 1; err != nil && attempt < 5 && !errors.Is(err, hexclient.ErrIncompleteListing); attempt++ {
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("reconcile failed; retrying", keySchedule, p.Schedule, keySlot, p.Key, keyAttempt, attempt, keyErr, err)
		if clock.Sleep(ctx, c, time.Duration(attempt)*30*time.Second) != nil {
			return
		}
		run, err = d.cfg.Hex.Reconcile(ctx, project, p.LastAttempt, claimed)
	}
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the slot stays triggering for the next start
		}
		// Hex may have run it: never "skipped", and never triggered again.
		reason := "interrupted mid-trigger and Hex's run listing could not tell whether the attempt created a run: " + err.Error()
		if terr := d.cfg.Store.Transition(wctx, p.Key, state.StateUnknown, state.Update{At: c.Now(), Reason: reason}); terr != nil {
			d.log.Error("record unknown", keySchedule, p.Schedule, keySlot, p.Key, keyErr, terr)
			return
		}
		d.log.Warn("unknown", keySchedule, p.Schedule, keySlot, p.Key, keyReason, reason)
		return
	}
	if run != nil {
		triggered := run.StartTime
		if triggered.IsZero() {
			triggered = p.LastAttempt
		}
		if err := d.cfg.Store.Transition(wctx, p.Key, state.StateTriggered, state.Update{
			At: c.Now(), RunID: run.RunID, RunURL: run.RunURL, TraceID: run.TraceID, Triggered: triggered,
			Reason: "adopted after reconcile", Project: project, Timeout: timeoutOf(conf, p),
			ProjectVersion: run.ProjectVersion,
		}); err != nil {
			d.log.Error("record adopted run", keySchedule, p.Schedule, keySlot, p.Key, keyErr, err)
			return
		}
		d.cfg.Metrics.ObserveTrigger(p.Schedule, outcomeAdopted)
		d.cfg.Metrics.ObserveLateness(p.LastAttempt.Sub(p.Nominal))
		d.log.Info("adopted after reconcile", keySchedule, p.Schedule, keySlot, p.Key, keyRun, run.RunID, keyURL, run.RunURL)
		d.wakePoller()
		return
	}
	now := c.Now()
	if s != nil && p.Kind != state.KindManual {
		deadline := p.Nominal.Add(s.Window)
		if now.Before(deadline) {
			d.log.Info("re-triggering: Hex has no run for the interrupted attempt", keySchedule, p.Schedule, keySlot, p.Key)
			f := planner.Firing{Schedule: p.Schedule, Slot: p.Key, Nominal: p.Nominal, Matrix: p.Matrix,
				Priority: s.Priority, Release: now, Deadline: deadline}
			select {
			case d.events <- retrigger{f: f}:
			case <-ctx.Done():
			}
			return
		}
	}
	if s == nil {
		d.recordSkip(wctx, p, "interrupted mid-trigger; Hex has no run for it and its schedule is gone")
		return
	}
	d.recordSkip(wctx, p, "interrupted mid-trigger; Hex has no run for it and its window has closed")
}

func (d *Daemon) recordSkip(ctx context.Context, p state.Slot, reason string) {
	if err := d.cfg.Store.SkipSlot(ctx, p, reason, d.cfg.Clock.Now()); err != nil {
		d.log.Error("record skipped", keySchedule, p.Schedule, keySlot, p.Key, keyErr, err)
		return
	}
	d.cfg.Metrics.ObserveSkip(p.Schedule, skipInterrupted)
	d.log.Info("skipped", keySchedule, p.Schedule, keySlot, p.Key, keyReason, reason)
}
