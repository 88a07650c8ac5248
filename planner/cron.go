package planner

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser accepts 5 fields, 6 with seconds first, and descriptors (@hourly, @every 10m).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// starBit is robfig/cron's marker for a field written as * or ?.
const starBit = 1 << 63

// prevSearchDays bounds Prev's backward search: eight years always contain a
// 29 February, so every cron that can fire at all fires within it.
const prevSearchDays = 8*366 + 2

// cronSpec is a parsed cron expression. robfig/cron parses and checks the text; the
// instants are enumerated here, over wall-clock fields, so that the DST rule holds:
//
//   - a wall-clock slot that does not exist (the hour skipped when clocks go forward)
//     fires at the transition, the first instant after the gap;
//   - a wall-clock slot that exists twice (the hour repeated when clocks go back)
//     fires once, at its first occurrence;
//   - several slots that fall on the same instant (all of a skipped hour's slots, or a
//     skipped slot and the slot at the transition) are one firing.
//
// robfig/cron's own Next skips a slot in a skipped hour and fires a repeated slot twice.
//
// @every D is not anchored to a process start (as robfig/cron's is) but to the Unix
// epoch: it fires at every instant that is a whole multiple of D since
// 1970-01-01T00:00:00Z, so @every 10m fires at :00, :10, :20, ... in every zone with a
// whole-hour offset.
type cronSpec struct {
	every time.Duration // > 0 for @every; the fields below are unused then

	hours, minutes, seconds []int // ascending
	dom, month, dow         uint64
}

// parseCron parses text as a cron expression.
func parseCron(text string) (*cronSpec, error) {
	t := strings.TrimSpace(text)
	if t == "" {
		return nil, errors.New("is empty")
	}
	if strings.HasPrefix(t, "TZ=") || strings.HasPrefix(t, "CRON_TZ=") {
		return nil, errors.New("must not name a time zone: use the timezone key")
	}
	if rest, ok := strings.CutPrefix(t, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("does not parse: %w", err)
		}
		if d < time.Second || d%time.Second != 0 {
			return nil, fmt.Errorf("@every needs a whole number of seconds, at least 1s (got %s)", d)
		}
	}
	sched, err := safeParse(t)
	if err != nil {
		return nil, err
	}
	switch s := sched.(type) {
	case cron.ConstantDelaySchedule:
		if s.Delay <= 0 {
			return nil, errors.New("@every needs a positive duration")
		}
		return &cronSpec{every: s.Delay}, nil
	case *cron.SpecSchedule:
		c := &cronSpec{
			hours:   bitList(s.Hour, 0, 23),
			minutes: bitList(s.Minute, 0, 59),
			seconds: bitList(s.Second, 0, 59),
			dom:     s.Dom,
			month:   s.Month,
			dow:     s.Dow,
		}
		if len(c.hours) == 0 || len(c.minutes) == 0 || len(c.seconds) == 0 {
			return nil, errors.New("matches no time of day")
		}
		if !c.matchesSomeDay() {
			return nil, errors.New("matches no calendar day (e.g. 30 February)")
		}
		return c, nil
	default:
		return nil, fmt.Errorf("unsupported schedule type %T", sched)
	}
}

// safeParse calls robfig/cron's parser, turning a panic on odd input into an error.
func safeParse(text string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("does not parse: %v", r)
		}
	}()
	s, err = cronParser.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %w", err)
	}
	return s, nil
}

func bitList(b uint64, lo, hi int) []int {
	var out []int
	for i := lo; i <= hi; i++ {
		if b&(1<<uint(i)) != 0 {
			out = append(out, i)
		}
	}
	return out
}

// dayMatches reports whether the civil date matches the day-of-month, month and
// day-of-week fields, with cron's rule: when both day fields are restricted, either may
// match.
func (c *cronSpec) dayMatches(month time.Month, day int, wd time.Weekday) bool {
	if c.month&(1<<uint(month)) == 0 {
		return false
	}
	domMatch := c.dom&(1<<uint(day)) != 0
	dowMatch := c.dow&(1<<uint(wd)) != 0
	if c.dom&starBit != 0 || c.dow&starBit != 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

// matchesSomeDay reports whether any date in a 28-year cycle (all weekday and leap
// combinations) matches.
func (c *cronSpec) matchesSomeDay() bool {
	d := time.Date(2000, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 28*366; i++ {
		day := d.AddDate(0, 0, i)
		if c.dayMatches(day.Month(), day.Day(), day.Weekday()) {
			return true
		}
	}
	return false
}

// between returns the nominal instants in [from, to), ascending, in loc.
func (c *cronSpec) between(loc *time.Location, from, to time.Time) []time.Time {
	return c.betweenN(loc, from, to, 0)
}

// betweenN is between stopping after limit instants (no limit when 0).
func (c *cronSpec) betweenN(loc *time.Location, from, to time.Time, limit int) []time.Time {
	if !from.Before(to) {
		return nil
	}
	if c.every > 0 {
		return c.everyBetween(from, to, limit)
	}
	var out []time.Time
	first := civil(from.In(loc)).AddDate(0, 0, -1)
	last := civil(to.In(loc)).AddDate(0, 0, 1)
	for day := first; !day.After(last); day = day.AddDate(0, 0, 1) {
		if !c.dayMatches(day.Month(), day.Day(), day.Weekday()) {
			continue
		}
		y, m, d := day.Date()
		for _, h := range c.hours {
			for _, mi := range c.minutes {
				for _, s := range c.seconds {
					t := wallInstant(y, m, d, h, mi, s, loc)
					if t.Before(from) || !t.Before(to) {
						continue
					}
					if n := len(out); n > 0 && !t.After(out[n-1]) {
						continue // folded into the previous slot (skipped hour)
					}
					out = append(out, t)
					if len(out) == limit {
						return out
					}
				}
			}
		}
	}
	return out
}

// prev returns the latest nominal instant strictly before before.
func (c *cronSpec) prev(loc *time.Location, before time.Time) (time.Time, bool) {
	if c.every > 0 {
		n := before.UnixNano()
		k := floorDiv(n-1, int64(c.every))
		return time.Unix(0, k*int64(c.every)).In(loc), true
	}
	day := civil(before.In(loc)).AddDate(0, 0, 1)
	for i := 0; i < prevSearchDays; i++ {
		d0 := day.AddDate(0, 0, -i)
		if !c.dayMatches(d0.Month(), d0.Day(), d0.Weekday()) {
			continue
		}
		y, m, d := d0.Date()
		for hi := len(c.hours) - 1; hi >= 0; hi-- {
			for mi := len(c.minutes) - 1; mi >= 0; mi-- {
				for si := len(c.seconds) - 1; si >= 0; si-- {
					t := wallInstant(y, m, d, c.hours[hi], c.minutes[mi], c.seconds[si], loc)
					if t.Before(before) {
						return t, true
					}
				}
			}
		}
	}
	return time.Time{}, false
}

func (c *cronSpec) everyBetween(from, to time.Time, limit int) []time.Time {
	step := int64(c.every)
	k := -floorDiv(-from.UnixNano(), step) // ceil
	var out []time.Time
	for n := k * step; n < to.UnixNano() && (limit == 0 || len(out) < limit); n += step {
		out = append(out, time.Unix(0, n).In(from.Location()))
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civil returns t's calendar date as noon UTC, for day arithmetic free of DST.
func civil(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
}

// wallInstant maps a wall-clock time in loc to its instant under the DST rule: a time
// that exists once is itself; a time that exists twice is its first occurrence; a time
// that does not exist is the transition that skipped it.
func wallInstant(y int, mo time.Month, d, h, mi, s int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, s, 0, loc)
	if loc == time.UTC {
		return t
	}
	start, end := t.ZoneBounds()
	const margin = 26 * time.Hour
	if (start.IsZero() || t.Sub(start) > margin) && (end.IsZero() || end.Sub(t) > margin) {
		return t // no transition near: the wall time exists exactly once
	}
	return wallInstantSlow(y, mo, d, h, mi, s, loc)
}

// wallInstantSlow inspects every zone period around the wall time.
func wallInstantSlow(y int, mo time.Month, d, h, mi, s int, loc *time.Location) time.Time {
	w := time.Date(y, mo, d, h, mi, s, 0, time.UTC).Unix() // the wall time read as UTC
	lo := time.Unix(w-15*3600, 0).In(loc)
	hi := time.Unix(w+15*3600, 0)
	var best int64
	found := false
	var gapAt time.Time
	for p := lo; p.Before(hi); {
		_, off := p.Zone()
		start, end := p.ZoneBounds()
		if u := w - int64(off); (start.IsZero() || u >= start.Unix()) && (end.IsZero() || u < end.Unix()) {
			if !found || u < best {
				best, found = u, true
			}
		}
		if end.IsZero() {
			break
		}
		// A gap at end: wall clock jumps from end+off to end+nextOff.
		_, nextOff := end.In(loc).Zone()
		if e := end.Unix(); e+int64(off) <= w && w < e+int64(nextOff) && gapAt.IsZero() {
			gapAt = end
		}
		p = end.In(loc)
	}
	if found {
		return time.Unix(best, 0).In(loc)
	}
	if !gapAt.IsZero() {
		return gapAt.In(loc)
	}
	return time.Date(y, mo, d, h, mi, s, 0, loc) // not reached for real zones
}
