package scheduler

import (
	"context"
	"fmt"
	"time"

	"hexcron/state"
)

// Pauses. `hexcron pause NAME` writes a row to the database; the loop reads the pauses
// in force every Config.PauseCheck and again before it acts on a due firing, so a pause
// or a resume takes effect within seconds, without a reload, and survives restarts and
// reloads. A firing of a paused schedule is recorded skipped with the pause in its
// reason when it comes due; it is planned as usual (so a pause that ends finds the rest
// of the plan unchanged).

// pauseView is the loop's copy of the pauses in force. Owned by the loop goroutine.
type pauseView struct {
	byName  map[string]state.Pause
	read    time.Time // when it was last read (zero: never)
	next    time.Time // when the loop reads it again
	failing bool      // the last read failed (logged once per episode)
}

// PauseReason is the reason a paused schedule's skipped firings carry, and status
// shows: "paused since T by USER until T2: REASON" (times RFC 3339 in loc; by, until
// and reason only when set).
func PauseReason(p state.Pause, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	s := "paused since " + p.Since.In(loc).Format(time.RFC3339)
	if p.By != "" {
		s += " by " + p.By
	}
	if !p.Until.IsZero() {
		s += " until " + p.Until.In(loc).Format(time.RFC3339)
	}
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	return s
}

// readPauses refreshes the loop's view of the pauses in force at now, and logs each
// pause that starts, changes, ends by itself or is lifted. When the read fails the old
// view stays (a paused schedule stays paused).
func (d *Daemon) readPauses(ctx context.Context, now time.Time) {
	d.pauses.next = now.Add(d.cfg.PauseCheck)
	ps, err := d.cfg.Store.Pauses(ctx, now)
	if err != nil {
		if !d.pauses.failing && ctx.Err() == nil {
			d.log.Error("read pauses; the last pauses read stay in force", keyErr, err)
		}
		d.pauses.failing = true
		return
	}
	d.pauses.failing = false
	d.pauses.read = now
	cur := make(map[string]state.Pause, len(ps))
	for _, p := range ps {
		cur[p.Schedule] = p
		if old, ok := d.pauses.byName[p.Schedule]; !ok || old != p {
			attrs := []any{keySchedule, p.Schedule, "since", d.local(p.Since), "by", p.By, keyReason, p.Reason}
			if !p.Until.IsZero() {
				attrs = append(attrs, "until", d.local(p.Until))
			}
			if d.config().Schedule(p.Schedule) == nil {
				attrs = append(attrs, "configured", false)
			}
			d.log.Info("schedule paused: its firings are skipped until it is resumed", attrs...)
		}
	}
	for name, old := range d.pauses.byName {
		if _, ok := cur[name]; ok {
			continue
		}
		if !old.Until.IsZero() && !now.Before(old.Until) {
			d.log.Info("pause ended: the schedule fires again", keySchedule, name, "until", d.local(old.Until))
		} else {
			d.log.Info("schedule resumed: it fires again", keySchedule, name)
		}
	}
	d.pauses.byName = cur
	d.cfg.Metrics.SetPaused(d.pausedConfigured())
}

// pausedConfigured counts the pauses in force of schedules in the config in force.
func (d *Daemon) pausedConfigured() int {
	conf := d.config()
	n := 0
	for name := range d.pauses.byName {
		if conf.Schedule(name) != nil {
			n++
		}
	}
	return n
}

// pausedAt returns the pause of schedule in force at now, from the loop's view.
func (d *Daemon) pausedAt(schedule string, now time.Time) (state.Pause, bool) {
	p, ok := d.pauses.byName[schedule]
	if !ok || !p.InForce(now) {
		return state.Pause{}, false
	}
	return p, true
}

// prunePauses deletes the pauses whose until has come (with every heartbeat), so that
// the table holds little more than the pauses in force.
func (d *Daemon) prunePauses(ctx context.Context, now time.Time) {
	if _, err := d.cfg.Store.PrunePauses(ctx, now); err != nil && ctx.Err() == nil {
		d.log.Error("prune pauses", keyErr, err)
	}
}

// pausedStatus is the STATUS= part about pauses ("" when none).
func (d *Daemon) pausedStatus() string {
	if n := d.pausedConfigured(); n > 0 {
		return fmt.Sprintf("%d paused", n)
	}
	return ""
}
