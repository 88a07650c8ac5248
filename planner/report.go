package planner

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// barWidth is the width of the usage bar in WriteTable.
const barWidth = 20

// MaxUnplacedLines bounds the per-schedule lines WriteTable prints for firings that
// cannot fit, unless verbose.
const MaxUnplacedLines = 50

// WriteTable writes the plan for people: one row per hour of the default zone
// (nominal and planned triggers, the cap, a bar of planned/cap, the peak in any 60 s,
// the largest shift), then the firings that cannot fit, then a one-line verdict. The
// firings that cannot fit are summarised, one line per schedule (count, first instant,
// why, competing schedules), at most MaxUnplacedLines; verbose lists every one.
func WriteTable(w io.Writer, cfgFile string, res *Result, verbose bool) error {
	var b strings.Builder
	loc := res.Location
	fmt.Fprintf(&b, "hexcron plan for %s: %s from %s (%s)\n", cfgFile, FormatDuration(res.Horizon), res.From.In(loc).Format("2006-01-02 15:04 MST"), loc)
	var rules []string
	for _, r := range res.Rules {
		rules = append(rules, ruleText(r))
	}
	fmt.Fprintf(&b, "trigger caps: %s", strings.Join(rules, ", "))
	if res.MinSpacing > 0 {
		fmt.Fprintf(&b, "; min spacing %s", FormatDuration(res.MinSpacing))
	}
	if res.Skew > 0 {
		fmt.Fprintf(&b, "; each trigger counts until %s after Hex answers", FormatDuration(res.Skew))
	}
	b.WriteByte('\n')
	if res.Past > 0 {
		fmt.Fprintf(&b, "ledger: %d earlier trigger attempts count\n", res.Past)
	}
	b.WriteByte('\n')
	fmt.Fprintf(&b, "%-16s %7s %7s %4s  %-*s %8s %9s\n", "hour", "nominal", "planned", "cap", barWidth+2, "planned/cap", "peak/min", "max shift")
	for _, h := range res.Hours {
		shift := "-"
		if h.LargestShift > 0 {
			shift = FormatDuration(h.LargestShift)
		}
		fmt.Fprintf(&b, "%-16s %7d %7d %4d  %s %8d %9s\n", h.Start.In(loc).Format("2006-01-02 15:04"), h.Nominal, h.Planned, h.Cap, bar(h.Planned, h.Cap), h.PeakMinute, shift)
	}
	if len(res.Unplaced) > 0 && verbose {
		fmt.Fprintf(&b, "\ncannot fit (%d):\n", len(res.Unplaced))
		for _, u := range res.Unplaced {
			name := u.Schedule
			if i := strings.IndexByte(u.Slot, '['); i >= 0 {
				name += u.Slot[i:]
			}
			fmt.Fprintf(&b, "  %s  %s  priority %d: %s%s\n", u.Nominal.In(loc).Format("2006-01-02 15:04:05"), name, u.Priority, u.Reason, competing(u.Competing))
		}
	} else if len(res.Unplaced) > 0 {
		writeUnplacedBySchedule(&b, res)
	}
	b.WriteByte('\n')
	b.WriteString(Verdict(res))
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// competing is "; competing: a, b, c, d, e and 3 more", or "" for none.
func competing(names []string) string {
	if len(names) == 0 {
		return ""
	}
	c, more := names, ""
	if len(c) > 5 {
		c, more = c[:5], fmt.Sprintf(" and %d more", len(names)-5)
	}
	return "; competing: " + strings.Join(c, ", ") + more
}

// writeUnplacedBySchedule writes one line per schedule with firings that cannot fit
// (most firings first): how many, the first one's instant, priority and reason, and
// the schedules competing for their windows (most often named first); at most
// MaxUnplacedLines, then how many schedules were left out.
func writeUnplacedBySchedule(b *strings.Builder, res *Result) {
	type group struct {
		name  string
		first Unplaced // by nominal instant: Unplaced is sorted by Nominal
		n     int
		comp  map[string]int
	}
	idx := map[string]int{}
	var groups []*group
	for _, u := range res.Unplaced {
		i, ok := idx[u.Schedule]
		if !ok {
			i = len(groups)
			idx[u.Schedule] = i
			groups = append(groups, &group{name: u.Schedule, first: u, comp: map[string]int{}})
		}
		g := groups[i]
		g.n++
		for _, c := range u.Competing {
			g.comp[c]++
		}
	}
	slices.SortStableFunc(groups, func(x, y *group) int { return cmp.Or(cmp.Compare(y.n, x.n), strings.Compare(x.name, y.name)) })
	fmt.Fprintf(b, "\ncannot fit: %d firings of %d schedules (by schedule; --verbose or --json lists every firing):\n", len(res.Unplaced), len(groups))
	width := 0
	for _, g := range groups[:min(len(groups), MaxUnplacedLines)] {
		width = max(width, len(g.name))
	}
	for i, g := range groups {
		if i == MaxUnplacedLines {
			fmt.Fprintf(b, "  ... and %d more schedules\n", len(groups)-i)
			break
		}
		comp := make([]string, 0, len(g.comp))
		for c := range g.comp {
			comp = append(comp, c)
		}
		slices.SortFunc(comp, func(x, y string) int { return cmp.Or(cmp.Compare(g.comp[y], g.comp[x]), strings.Compare(x, y)) })
		firings := "firing"
		if g.n != 1 {
			firings += "s"
		}
		fmt.Fprintf(b, "  %-*s  %d %s, first %s, priority %d: %s%s\n", width, g.name, g.n, firings,
			g.first.Nominal.In(res.Location).Format("2006-01-02 15:04:05"), g.first.Priority, g.first.Reason, competing(comp))
	}
}

// Verdict is the plan in one line: OK or FAIL, with the counts.
func Verdict(res *Result) string {
	total := len(res.Firings) + len(res.Unplaced)
	if len(res.Unplaced) > 0 {
		return fmt.Sprintf("FAIL: %d of %d firings cannot be placed under the caps", len(res.Unplaced), total)
	}
	shifted := 0
	var largest time.Duration
	for _, f := range res.Firings {
		if s := f.Shift(); s > 0 {
			shifted++
			largest = max(largest, s)
		}
	}
	if shifted == 0 {
		return fmt.Sprintf("OK: all %d firings fit at their nominal times", total)
	}
	return fmt.Sprintf("OK: all %d firings fit; %d are shifted inside their windows (largest %s)", total, shifted, FormatDuration(largest))
}

func bar(n, cap int) string {
	fill := 0
	if cap > 0 {
		fill = min((n*barWidth+cap-1)/cap, barWidth)
	}
	return "[" + strings.Repeat("#", fill) + strings.Repeat(".", barWidth-fill) + "]"
}

type jsonPlan struct {
	From     string         `json:"from"`
	Horizon  string         `json:"horizon"`
	Rules    []jsonRule     `json:"rules"`
	Hours    []jsonHour     `json:"hours"`
	Firings  []jsonFiring   `json:"firings"`
	Unplaced []jsonUnplaced `json:"unplaced"`
}

type jsonRule struct {
	Limit     int    `json:"limit"`
	Per       string `json:"per"`
	Reserve   int    `json:"reserve"`
	Effective int    `json:"effective"`
}

type jsonHour struct {
	Start      string `json:"start"`
	Nominal    int    `json:"nominal"`
	Planned    int    `json:"planned"`
	Cap        int    `json:"cap"`
	PeakMinute int    `json:"peak_minute"`
}

type jsonFiring struct {
	Schedule     string            `json:"schedule"`
	Slot         string            `json:"slot"`
	Nominal      string            `json:"nominal"`
	Planned      string            `json:"planned"`
	ShiftSeconds int64             `json:"shift_seconds"`
	Matrix       map[string]string `json:"matrix"`
}

type jsonUnplaced struct {
	Schedule string `json:"schedule"`
	Nominal  string `json:"nominal"`
	Reason   string `json:"reason"`
}

// WriteJSON writes the plan as one JSON object: from, horizon, rules, hours
// (start, nominal, planned, cap, peak_minute), firings (schedule, slot, nominal,
// planned, shift_seconds, matrix) and unplaced (schedule, nominal, reason). Times are
// RFC 3339 in the default zone; a reason names the competing schedules.
func WriteJSON(w io.Writer, res *Result) error {
	loc := res.Location
	ts := func(t time.Time) string { return t.In(loc).Format(time.RFC3339) }
	out := jsonPlan{From: ts(res.From), Horizon: FormatDuration(res.Horizon),
		Rules: []jsonRule{}, Hours: []jsonHour{}, Firings: []jsonFiring{}, Unplaced: []jsonUnplaced{}}
	for _, r := range res.Rules {
		out.Rules = append(out.Rules, jsonRule{Limit: r.Limit, Per: FormatDuration(r.Per), Reserve: r.Reserve, Effective: r.Effective()})
	}
	for _, h := range res.Hours {
		out.Hours = append(out.Hours, jsonHour{Start: ts(h.Start), Nominal: h.Nominal, Planned: h.Planned, Cap: h.Cap, PeakMinute: h.PeakMinute})
	}
	for _, f := range res.Firings {
		m := f.Matrix
		if m == nil {
			m = map[string]string{}
		}
		out.Firings = append(out.Firings, jsonFiring{Schedule: f.Schedule, Slot: f.Slot, Nominal: ts(f.Nominal), Planned: ts(f.Planned),
			ShiftSeconds: int64(f.Shift() / time.Second), Matrix: m})
	}
	for _, u := range res.Unplaced {
		reason := u.Reason
		if len(u.Competing) > 0 {
			reason += "; competing: " + strings.Join(u.Competing, ", ")
		}
		out.Unplaced = append(out.Unplaced, jsonUnplaced{Schedule: u.Schedule, Nominal: ts(u.Nominal), Reason: reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
