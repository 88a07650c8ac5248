package planner

import (
	"slices"
	"time"
)

// hourStart returns the start of the wall-clock hour containing t in loc.
func hourStart(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return l.Add(-time.Duration(l.Minute())*time.Minute - time.Duration(l.Second())*time.Second - time.Duration(l.Nanosecond()))
}

// hourCap is the most triggers the rules allow in any one hour: a trigger occupies
// its rules' windows for skew after it is sent, so Effective() fit in every Per+skew.
func hourCap(rules []Rule, spacing, skew time.Duration) int {
	c := -1
	for _, r := range rules {
		per := r.Per + skew
		n := r.Effective() * int((time.Hour+per-1)/per)
		if c < 0 || n < c {
			c = n
		}
	}
	if spacing > 0 {
		n := int((time.Hour + spacing - 1) / spacing)
		if c < 0 || n < c {
			c = n
		}
	}
	return c
}

// hours buckets the plan by hour of res.Location, from the hour containing From to the
// hour containing the later of the horizon's end and the last planned instant.
func hours(res *Result, all []Firing) []Hour {
	start := hourStart(res.From, res.Location)
	end := res.From.Add(res.Horizon)
	for _, f := range res.Firings {
		if !f.Planned.Before(end) {
			end = f.Planned.Add(time.Second)
		}
	}
	for _, f := range all {
		if !f.Nominal.Before(end) {
			end = f.Nominal.Add(time.Second)
		}
	}
	n := int((end.Sub(start) + time.Hour - 1) / time.Hour)
	if n <= 0 {
		return nil
	}
	cap := hourCap(res.Rules, res.MinSpacing, res.Skew)
	hs := make([]Hour, n)
	for i := range hs {
		hs[i] = Hour{Start: start.Add(time.Duration(i) * time.Hour).In(res.Location), Cap: cap}
	}
	bucket := func(t time.Time) int { return min(max(int(t.Sub(start)/time.Hour), 0), n-1) }
	for _, f := range all {
		hs[bucket(f.Nominal)].Nominal++
	}
	planned := make([]time.Time, len(res.Firings))
	for i, f := range res.Firings {
		h := &hs[bucket(f.Planned)]
		h.Planned++
		h.LargestShift = max(h.LargestShift, f.Shift())
		planned[i] = f.Planned
	}
	slices.SortFunc(planned, time.Time.Compare)
	j := 0
	for i, t := range planned {
		for j < len(planned) && planned[j].Sub(t) < time.Minute {
			j++
		}
		h := &hs[bucket(t)]
		h.PeakMinute = max(h.PeakMinute, j-i)
	}
	return hs
}
