package planner

import (
	"fmt"
	"maps"
	"time"
)

// referenceDays and referenceLimit bound the sample of a schedule's instants used to
// check it against the caps and its window: eight days from Monday 5 January 2026 in
// the schedule's zone (every weekday, no DST transition), at most 100,000 instants.
const (
	referenceDays  = 8
	referenceLimit = 100_000
)

// build applies defaults (built-in, then the defaults section, then the schedule's own
// keys) and runs the checks that need a whole schedule.
func (d *decoder) build(cfg *Config, def *rawSched, raws []rawSched) {
	if len(raws) == 0 {
		d.warnf(0, "schedules", "no schedules: nothing will run")
	}
	names := map[string]*rawSched{}
	for i := range raws {
		r := &raws[i]
		f := index("schedules", r.index)
		if r.notMapping {
			continue
		}
		for _, key := range scheduleOnly[:3] {
			if !r.present[key] {
				d.errs = append(d.errs, Problem{File: d.file, Line: r.line, Field: join(f, key), Message: "is required"})
				r.bad = true
			}
		}
		if r.name.set {
			if first, dup := names[r.name.v]; dup {
				d.errs = append(d.errs, Problem{File: d.file, Line: r.name.line, Field: join(f, "name"),
					Message: fmt.Sprintf("%s is already the name of schedules[%d] (line %d): names must be unique", quote(r.name.v), first.index, first.name.line)})
				r.bad = true
			} else {
				names[r.name.v] = r
			}
		}
		s := Schedule{
			Name:     r.name.v,
			Project:  r.project.v,
			Cron:     r.cron.v,
			Location: pick(r.loc, def.loc, r.tz.set, def.tz.set, time.UTC),
			Window:   pick(r.window.v, def.window.v, r.window.set, def.window.set, DefaultWindow),
			Timeout:  pick(r.timeout.v, def.timeout.v, r.timeout.set, def.timeout.set, DefaultTimeout),
			Overlap:  pick(r.overlap.v, def.overlap.v, r.overlap.set, def.overlap.set, DefaultOverlap),
			Catchup:  pick(r.catchup.v, def.catchup.v, r.catchup.set, def.catchup.set, DefaultCatchup),
			Priority: pick(r.priority.v, def.priority.v, r.priority.set, def.priority.set, 0),
			Notify:   pick(r.notify.v, def.notify.v, r.notify.set, def.notify.set, nil),
			Matrix:   r.matrix.v,
			View:     r.view.v,
			Line:     r.line,
			spec:     r.spec,
		}
		if r.useCached.set || def.useCached.set {
			v := pick(r.useCached.v, def.useCached.v, r.useCached.set, def.useCached.set, false)
			s.UseCachedSQL = &v
		}
		if r.updatePublished.set || def.updatePublished.set {
			v := pick(r.updatePublished.v, def.updatePublished.v, r.updatePublished.set, def.updatePublished.set, false)
			s.UpdatePublishedResults = &v
		}
		if def.params.set || r.params.set {
			s.Params = maps.Clone(def.params.v)
			if s.Params == nil {
				s.Params = map[string]any{}
			}
			maps.Copy(s.Params, r.params.v)
		}
		d.checkRunBody(&s, r, def, f)
		cfg.Schedules = append(cfg.Schedules, s)
		if !r.bad && !def.bad && s.spec != nil && d.checkFanout(cfg, &cfg.Schedules[len(cfg.Schedules)-1], r, f) {
			d.checkAgainstCaps(cfg, &cfg.Schedules[len(cfg.Schedules)-1], r, f)
		}
	}
}

// checkRunBody refuses what Hex's RunProject refuses: a viewId together with
// inputParams (params, from the schedule or defaults, or matrix values).
func (d *decoder) checkRunBody(s *Schedule, r *rawSched, def *rawSched, f string) {
	if !r.view.set || (len(s.Params) == 0 && len(s.Matrix) == 0) {
		return
	}
	from := func() string {
		switch {
		case len(s.Matrix) > 0:
			return fmt.Sprintf("its matrix (line %d)", r.mline)
		case r.params.set:
			return fmt.Sprintf("its params (line %d)", r.params.line)
		}
		return fmt.Sprintf("defaults.params (line %d), which applies to every schedule: move those params to the schedules that need them", def.params.line)
	}
	d.errs = append(d.errs, Problem{File: d.file, Line: r.view.line, Field: join(f, "view"),
		Message: "cannot be combined with input params, as Hex refuses viewId together with inputParams (the view brings its own inputs); the input params come from " + from()})
	r.bad = true
}

// pick returns the schedule's value, else the defaults section's, else the built-in.
func pick[T any](own, def T, ownSet, defSet bool, builtin T) T {
	switch {
	case ownSet:
		return own
	case defSet:
		return def
	}
	return builtin
}

// checkAgainstCaps warns when a schedule's window is not shorter than its interval and
// reports an error when the schedule alone cannot fit under a cap, however its firings
// are spread in their windows. The check is sound (it never rejects a schedule the
// planner could place on its own) and looks at two spans over a reference sample: every
// run of instants shorter than the cap's period, and the whole sample.
func (d *decoder) checkAgainstCaps(cfg *Config, s *Schedule, r *rawSched, f string) {
	ref := time.Date(referenceStart.Year(), referenceStart.Month(), referenceStart.Day(), 0, 0, 0, 0, s.Location)
	inst := s.spec.betweenN(s.Location, ref, ref.AddDate(0, 0, referenceDays), referenceLimit)
	if len(inst) == 0 {
		return
	}
	windowLine := r.windowLine
	if windowLine == 0 {
		windowLine = r.line
	}
	if len(inst) > 1 {
		gap := inst[1].Sub(inst[0])
		for i := 2; i < len(inst); i++ {
			gap = min(gap, inst[i].Sub(inst[i-1]))
		}
		if s.Window >= gap {
			d.warns = append(d.warns, Problem{File: d.file, Line: windowLine, Field: join(f, "window"), Schedule: s.Name,
				Kind:    "window is not shorter than the schedule's interval: a firing may be planned after the next slot's nominal time",
				Message: fmt.Sprintf("%s is not shorter than the schedule's interval (%s): a firing may be planned after the next slot's nominal time", FormatDuration(s.Window), FormatDuration(gap))})
		}
	}
	fan := s.FanoutCount()
	type capRule struct {
		name  string
		limit int
		per   time.Duration // the rule's period, as written
		occ   time.Duration // per plus the time a trigger keeps counting after it is sent
		desc  string
	}
	var caps []capRule
	for k, rule := range cfg.Budget.Triggers {
		desc := fmt.Sprintf("%d per %s", rule.Effective(), FormatDuration(rule.Per))
		if rule.Reserve > 0 {
			desc += fmt.Sprintf(": limit %d minus reserve %d", rule.Limit, rule.Reserve)
		}
		// A trigger counts in its rules' windows until the skew margin after it is sent
		// (the plan's and admission's model), so Effective() fit in every Per+Skew.
		caps = append(caps, capRule{index("budget.triggers", k), rule.Effective(), rule.Per, rule.Per + cfg.Budget.Skew, desc})
	}
	if sp := cfg.Budget.MinSpacing; sp > 0 {
		caps = append(caps, capRule{"budget.min_spacing", 1, sp, sp, "one trigger every " + FormatDuration(sp)})
	}
	cronLine := r.cronLine
	what := func(n int) string {
		s := fmt.Sprintf("%d instant", n)
		if n != 1 {
			s += "s"
		}
		if fan > 1 {
			s += fmt.Sprintf(" × %d matrix combinations", fan)
		}
		return s
	}
	report := func(msg string, a ...any) {
		d.errs = append(d.errs, Problem{File: d.file, Line: cronLine, Field: join(f, "cron"), Message: fmt.Sprintf(msg, a...)})
	}
	room := func(c capRule, span time.Duration) int64 { return int64(c.limit) * (int64(span/c.occ) + 1) }
	for _, c := range caps {
		j := 0
		for i := range inst {
			j = max(j, i)
			for j+1 < len(inst) && inst[j+1].Sub(inst[i]) < c.per {
				j++
			}
			count := int64(j-i+1) * fan
			span := inst[j].Sub(inst[i]) + s.Window
			if allowed := room(c, span); count > allowed {
				report("needs %d triggers within %s (%s, spread over its %s window) but %s allows at most %d in that time (%s)",
					count, FormatDuration(span), what(j-i+1), FormatDuration(s.Window), c.name, allowed, c.desc)
				return
			}
		}
		count := int64(len(inst)) * fan
		span := inst[len(inst)-1].Sub(inst[0]) + s.Window
		if allowed := room(c, span); count > allowed {
			nominalSpan := float64(inst[len(inst)-1].Sub(inst[0]))
			if len(inst) > 1 {
				nominalSpan = nominalSpan * float64(len(inst)) / float64(len(inst)-1)
			}
			rate := float64(count) * float64(c.per) / max(nominalSpan, float64(time.Second))
			report("needs about %.0f triggers per %s on average (%s in %s) but %s allows %s",
				rate, FormatDuration(c.per), what(len(inst)), FormatDuration(span-s.Window), c.name, c.desc)
			return
		}
	}
}
