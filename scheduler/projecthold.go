package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/state"
)

// outcomeOfHex records the trigger outcomes that are about Hex's view of a project
// rather than about the slot, and reports whether it handled err:
//
//   - Hex answered 403 to this slot's request: the slot failed, with Hex's reason and
//     trace id, logged as a WARN. The client now holds the project (one probe an
//     hour) and logged the one ERROR of the outage, with what to do.
//   - The project is held after a 403 and nothing was sent: the slot is skipped, "403
//     from Hex at T: <reason>; fix access, then reload".
//   - An ambiguous attempt cannot be resolved (the run listing cannot be read
//     completely): the slot is unknown, never "skipped": Hex may have run it.
func (d *Daemon) outcomeOfHex(ctx context.Context, f planner.Firing, err error, now time.Time) bool {
	var refused *hexclient.ProjectRefusedError
	var unresolved *hexclient.UnresolvedError
	switch {
	case errors.As(err, &refused) && refused.Sent:
		reason := fmt.Sprintf("403 from Hex: %s; fix access, then reload", dash(refused.Reason()))
		d.cfg.Metrics.ObserveTrigger(f.Schedule, outcomeFailed)
		if terr := d.cfg.Store.Transition(ctx, f.Slot, state.StateFailed, state.Update{At: now, Reason: reason, TraceID: refused.TraceID()}); terr != nil {
			d.log.Error("record failed", keySlot, f.Slot, keyErr, terr)
		}
		d.log.Warn("failed", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, reason, keyTraceID, refused.TraceID(),
			"project_held_until", d.local(refused.NextProbe))
		return true
	case errors.As(err, &refused):
		d.skip(ctx, f, skipForbidden, fmt.Sprintf("403 from Hex at %s: %s; fix access, then reload",
			d.local(refused.At).Format(time.RFC3339), dash(refused.Reason())))
		return true
	case errors.As(err, &unresolved):
		reason := "the trigger's outcome is unknown: " + unresolved.Err.Error() + "; Hex may have run it (look for the run in Hex)"
		d.cfg.Metrics.ObserveTrigger(f.Schedule, outcomeUnknown)
		if terr := d.cfg.Store.Transition(ctx, f.Slot, state.StateUnknown, state.Update{At: now, Reason: reason}); terr != nil {
			d.log.Error("record unknown", keySlot, f.Slot, keyErr, terr)
		}
		d.log.Warn("unknown", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, reason)
		return true
	}
	return false
}

// Pacing of the daemon's background preflight: it is the least urgent reader there is.
// At start it waits out one window of Hex's all-calls cap (a process that just stopped
// may have filled it, and the read budget starts empty), then it sends one read every
// preflightPace (a fifth of the 60/min all-calls cap), so it never crowds out the polls
// of runs and the reconciles.
const (
	preflightStartDelay = time.Minute
	preflightPace       = 5 * time.Second
)

// startPreflight runs the preflight (Check) for conf in the background, cancelling
// one still running for an earlier config, and logs what it finds. It never delays a
// firing: its reads go through the read budget like any other, paced (see above).
// atStart is true for the check of the config the daemon starts with.
func (d *Daemon) startPreflight(ctx context.Context, conf *planner.Config, atStart bool) {
	if d.cfg.NoPreflight {
		return
	}
	if d.stopPreflight != nil {
		d.stopPreflight()
	}
	pctx, cancel := context.WithCancel(ctx)
	d.stopPreflight = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		wait := time.Duration(0)
		if atStart {
			wait = preflightStartDelay
		}
		pace := func(ctx context.Context) error {
			err := clock.Sleep(ctx, d.cfg.Clock, wait)
			wait = preflightPace
			return err
		}
		r := Check(pctx, conf, d.cfg.Hex, CheckOptions{Pace: pace})
		if pctx.Err() != nil {
			return // superseded by a reload, or stopping
		}
		logCheck(d.log, r)
	}()
}
