package scheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"hexcron/planner"
	"hexcron/state"
)

// maxMissedRows bounds how many missed slots of one series are written as skipped
// after a long downtime (the count of the rest is logged).
const maxMissedRows = 1000

// catchUp runs once at start. For every series, the slots whose windows closed while
// the daemon was down (between the last heartbeat and now) are missed: the most recent
// one, if within the schedule's catchup duration, becomes an extra firing that the
// planner places like any other (released now, deadline now+window), never a burst;
// the others are recorded skipped, "missed while down". Slots whose windows are still
// open are planned normally.
func (d *Daemon) catchUp(ctx context.Context, lastAlive, now time.Time) error {
	if lastAlive.IsZero() || !lastAlive.Before(now) {
		return nil
	}
	conf := d.config()
	handled, err := handledSlots(ctx, d.cfg.Store, lastAlive.Add(-maxWindow(conf)-time.Minute))
	if err != nil {
		return err
	}
	for i := range conf.Schedules {
		s := &conf.Schedules[i]
		// missed[c] lists the missed firings of matrix combination c, oldest first.
		missed := make([][]planner.Firing, len(s.Fanout()))
		for _, n := range s.Between(lastAlive.Add(-s.Window), now) {
			if !n.Add(s.Window).Before(now) {
				break // window still open: planned normally
			}
			for c, f := range s.Firings(n) {
				if !handled[f.Slot] {
					missed[c] = append(missed[c], f)
				}
			}
		}
		for _, fs := range missed {
			if len(fs) == 0 {
				continue
			}
			older := fs
			if last := fs[len(fs)-1]; s.Catchup > 0 && now.Sub(last.Nominal) <= s.Catchup {
				older = fs[:len(fs)-1]
				last.Release, last.Deadline = now, now.Add(s.Window)
				d.extra[last.Slot] = last
				// Its row now: if this process dies before firing it, the next start
				// (whose heartbeat is past this slot) finds it planned and settles it.
				if _, err := d.cfg.Store.PlanSlot(ctx, slotOf(last, state.KindCatchup), now); err != nil {
					return err
				}
				d.log.Info("catching up missed slot", keySchedule, s.Name, keySlot, last.Slot, keyNominal, d.local(last.Nominal), "down_since", d.local(lastAlive))
			}
			for i, f := range older {
				if i >= maxMissedRows {
					d.log.Warn("more missed slots not recorded", keySchedule, s.Name, "count", len(older)-maxMissedRows)
					break
				}
				reason := "missed while down"
				if i == len(fs)-1 {
					reason = fmt.Sprintf("missed while down; older than catchup %s", s.Catchup)
				}
				if err := d.cfg.Store.SkipSlot(ctx, slotOf(f, state.KindScheduled), reason, now); err != nil {
					return err
				}
				d.log.Info("skipped", keySchedule, s.Name, keySlot, f.Slot, keyReason, reason)
			}
		}
	}
	return nil
}

// sweepPlanned runs once at start, after catchUp: a slot row still `planned` whose
// window has closed was written by a process that stopped (or was killed) before it
// triggered the slot, for instance while it waited for the budget, and no catch-up
// covers it when the heartbeat had already moved past its window. Each is recorded
// skipped with the reason, so that none stays planned forever. Manual slots are left
// to `hexcron trigger` (and to recovery); this start's own catch-up firings are kept.
func (d *Daemon) sweepPlanned(ctx context.Context, now time.Time) error {
	planned, err := d.cfg.Store.SlotsInState(ctx, state.StatePlanned)
	if err != nil {
		return err
	}
	conf := d.config()
	for _, p := range planned {
		if p.Kind == state.KindManual {
			continue
		}
		if _, ok := d.extra[p.Key]; ok {
			continue
		}
		if strings.HasPrefix(p.Reason, queuedReason) {
			continue // a queued firing: restoreQueued decides
		}
		window := maxWindow(conf)
		if s := scheduleNamed(conf, p.Schedule); s != nil {
			window = s.Window
		}
		end := p.Nominal.Add(window)
		if p.Planned.After(end) {
			end = p.Planned // a catch-up firing: planned after its nominal window
		}
		if !end.Before(now) {
			continue // still open: the plan fires it
		}
		reason := "missed while down: planned by an earlier process that stopped before triggering it"
		if err := d.cfg.Store.SkipSlot(ctx, p, reason, now); err != nil {
			return err
		}
		d.log.Info("skipped", keySchedule, p.Schedule, keySlot, p.Key, keyReason, reason)
	}
	return nil
}

// thinOpenWindows runs once at start, after catchUp. Slots whose nominal instant has
// passed but whose window is still open are planned normally, but of one series only
// the most recent may fire: the older ones (a window longer than the interval, or a
// first start) and a catch-up firing of the same series are recorded skipped, so that a
// start never bursts several runs of one schedule.
func (d *Daemon) thinOpenWindows(ctx context.Context, now time.Time) error {
	conf := d.config()
	handled, err := handledSlots(ctx, d.cfg.Store, now.Add(-maxWindow(conf)-time.Minute))
	if err != nil {
		return err
	}
	catchups := map[string]planner.Firing{} // series -> this start's catch-up firing
	for _, f := range d.extra {
		catchups[seriesOf(f)] = f
	}
	for i := range conf.Schedules {
		s := &conf.Schedules[i]
		open := make([][]planner.Firing, len(s.Fanout()))
		for _, n := range s.Between(now.Add(-s.Window), now) {
			for c, f := range s.Firings(n) {
				if !handled[f.Slot] {
					open[c] = append(open[c], f)
				}
			}
		}
		for _, fs := range open {
			if len(fs) == 0 {
				continue
			}
			newest := fs[len(fs)-1]
			older := fs[:len(fs)-1]
			if c, ok := catchups[seriesOf(newest)]; ok {
				older = append([]planner.Firing{c}, older...)
				delete(d.extra, c.Slot)
			}
			for _, f := range older {
				reason := "missed while down; a newer slot of the schedule (" + newest.Slot + ") fires instead"
				if err := d.cfg.Store.SkipSlot(ctx, slotOf(f, state.KindScheduled), reason, now); err != nil {
					return err
				}
				d.log.Info("skipped", keySchedule, s.Name, keySlot, f.Slot, keyReason, reason)
			}
		}
	}
	return nil
}
