package scheduler

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"hexcron/planner"
	"hexcron/state"
)

// A queued firing (overlap queue) waits in d.queued, one per series, with its row
// `planned` and a reason starting with queuedReason. It leaves the queue in exactly one
// of these ways, each with a row and a log line:
//   - the run it waits for ends: dispatched at once, its window starting then;
//   - a reload removes its schedule or its matrix values: recorded skipped (requeue);
//   - a reload changes the schedule's overlap policy: released to the plan, where the
//     new policy decides (requeue);
//   - the daemon stops: the row stays planned with its reason, and the next start
//     queues it again or records it skipped (restoreQueued).
// Re-planning never touches it (replan skips the waiting slots).

// requeue settles the queued firings against the config a reload just put in force.
func (d *Daemon) requeue(ctx context.Context, conf *planner.Config, now time.Time) {
	for _, f := range sortedFirings(d.queued) {
		s := conf.Schedule(f.Schedule)
		switch {
		case s == nil:
			delete(d.queued, seriesOf(f))
			d.skip(ctx, f, "queued when a reload removed its schedule from the config")
		case !hasCombination(s, f.Matrix):
			delete(d.queued, seriesOf(f))
			d.skip(ctx, f, "queued when a reload removed its matrix values from the schedule")
		case s.Overlap != OverlapQueue:
			delete(d.queued, seriesOf(f))
			f.Priority, f.Release, f.Deadline = s.Priority, now, now.Add(s.Window)
			d.extra[f.Slot] = f
			d.log.Info("queued firing released: a reload changed the overlap policy", keySchedule, f.Schedule, keySlot, f.Slot,
				keyReason, "overlap is now "+s.Overlap)
		}
	}
}

// restoreQueued runs once at start, after thinOpenWindows. A row still planned with a
// queued reason is a firing that waited for the previous run of its series when the
// last process stopped (or died). While its window is still open the plan fires it like
// any slot (and the overlap policy queues it again). Otherwise, if its schedule still
// queues and hexcron was down no longer than the schedule's catchup, it is released now
// like a catch-up firing: the overlap policy queues it again behind the run it waited
// for if that run is still going, else it fires. In every other case it is recorded
// skipped with the reason.
func (d *Daemon) restoreQueued(ctx context.Context, lastAlive, now time.Time) error {
	planned, err := d.cfg.Store.SlotsInState(ctx, state.StatePlanned)
	if err != nil {
		return err
	}
	conf := d.config()
	var down time.Duration
	if !lastAlive.IsZero() && lastAlive.Before(now) {
		down = now.Sub(lastAlive)
	}
	for _, p := range planned {
		if p.Kind == state.KindManual || !strings.HasPrefix(p.Reason, queuedReason) {
			continue
		}
		if _, ok := d.extra[p.Key]; ok {
			continue
		}
		f := planner.Firing{Schedule: p.Schedule, Slot: p.Key, Nominal: p.Nominal, Matrix: p.Matrix, Release: now}
		s := scheduleNamed(conf, p.Schedule)
		if s != nil {
			if !p.Nominal.Add(s.Window).Before(now) {
				continue // window still open: planned normally
			}
			f.Priority, f.Deadline = s.Priority, now.Add(s.Window)
		}
		var reason string
		switch {
		case s == nil:
			reason = "queued when hexcron stopped; its schedule is no longer in the config"
		case s.Overlap != OverlapQueue:
			reason = "queued when hexcron stopped; the schedule's overlap is now " + s.Overlap
		case !hasCombination(s, p.Matrix):
			reason = "queued when hexcron stopped; its matrix values are no longer in the schedule"
		case s.Catchup <= 0:
			reason = "queued when hexcron stopped; catchup is off"
		case down > s.Catchup:
			reason = fmt.Sprintf("queued when hexcron stopped; down for %s, longer than catchup %s", down.Round(time.Second), s.Catchup)
		}
		if reason != "" {
			d.skip(ctx, f, reason)
			continue
		}
		d.extra[p.Key] = f
		d.log.Info("queued firing restored", keySchedule, p.Schedule, keySlot, p.Key, "down_for", down.Round(time.Second))
	}
	return nil
}

// hasCombination reports whether matrix m is one of s's combinations (nil for a
// schedule without a matrix).
func hasCombination(s *planner.Schedule, m map[string]string) bool {
	for _, c := range s.Fanout() {
		if maps.Equal(c, m) {
			return true
		}
	}
	return false
}
