package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"hexcron/budget"
	"hexcron/planner"
	"hexcron/state"
)

// scheduleNamed returns the schedule called name in conf, or nil when a reload removed it.
func scheduleNamed(conf *planner.Config, name string) *planner.Schedule {
	if conf == nil {
		return nil
	}
	return conf.Schedule(name)
}

// seriesOf names the sequence of slots a firing belongs to: its schedule plus its
// matrix combination. Overlap policies apply per series.
func seriesOf(f planner.Firing) string {
	if len(f.Matrix) == 0 {
		return f.Schedule
	}
	keys := make([]string, 0, len(f.Matrix))
	for k := range f.Matrix {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(f.Schedule)
	b.WriteByte('[')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", k, f.Matrix[k])
	}
	b.WriteByte(']')
	return b.String()
}

// seriesOfSlot is seriesOf for a slot key: the key without its "@instant" part.
func seriesOfSlot(slot string) string {
	at := strings.LastIndexByte(slot, '@')
	if at < 0 {
		return slot
	}
	rest := slot[at:]
	if i := strings.IndexByte(rest, '['); i >= 0 {
		return slot[:at] + rest[i:]
	}
	return slot[:at]
}

// slotOf is the row the daemon writes for a firing.
func slotOf(f planner.Firing, kind state.Kind) state.Slot {
	return state.Slot{Key: f.Slot, Schedule: f.Schedule, Nominal: f.Nominal, Planned: f.Planned, Matrix: f.Matrix, Kind: kind}
}

// shiftReason explains, in words for the log, why a firing was planned after its
// nominal instant: which rule was full around that instant (with the count), or
// min_spacing, or other firings with earlier deadlines or higher priority.
func shiftReason(conf *planner.Config, f planner.Firing, plan []planner.Firing, past []budget.Attempt) string {
	var times []time.Time
	for _, a := range past {
		times = append(times, a.Sent)
	}
	for _, g := range plan {
		if g.Slot != f.Slot {
			times = append(times, g.Planned)
		}
	}
	for _, r := range conf.Budget.Triggers {
		per := r.Per + conf.Budget.Skew // a trigger occupies its windows until skew after it
		before, after := 0, 0
		for _, t := range times {
			if t.After(f.Nominal.Add(-per)) && !t.After(f.Nominal) {
				before++
			}
			if !t.Before(f.Nominal) && t.Before(f.Nominal.Add(per)) && t.Before(f.Planned) {
				after++
			}
		}
		if before >= r.Effective() {
			return fmt.Sprintf("rule %d/%s full: %d triggers in the %s before the nominal instant", r.Effective(), planner.FormatDuration(r.Per), before, planner.FormatDuration(r.Per))
		}
		if before+after >= r.Effective() {
			return fmt.Sprintf("rule %d/%s full around the nominal instant (%d before, %d placed ahead of it)", r.Effective(), planner.FormatDuration(r.Per), before, after)
		}
	}
	if sp := conf.Budget.MinSpacing; sp > 0 {
		for _, t := range times {
			if d := t.Sub(f.Nominal); d > -sp && d < sp {
				return fmt.Sprintf("min_spacing %s from another trigger", planner.FormatDuration(sp))
			}
		}
	}
	return "firings with earlier deadlines or higher priority went first"
}
