package planner

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzZones are the zones FuzzPlanInvariants picks from: no DST, whole-hour DST on
// both hemispheres, a half-hour offset, and a half-hour DST shift.
var fuzzZones = []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"}

// FuzzPlanInvariants builds a config from fuzzed crons, windows, caps, priorities and
// matrix sizes (so most inputs get past validation, unlike raw YAML), and checks what
// Plan promises for any config it accepts: every expanded firing is placed or
// unplaced, once; a placed firing is at a whole second in [Release, Deadline];
// admission (budget.Budget.Wait, with the skew margin and min_spacing) admits every
// firing at its planned instant, each answered at once; and no firing is unplaced
// while a lower-priority firing holds an instant in its window.
func FuzzPlanInvariants(f *testing.F) {
	f.Add("0 * * * *", "*/15 * * * *", uint16(300), uint16(900), uint8(20), uint8(60), uint8(10), uint8(5), uint8(3), int8(5), uint8(1), int64(1767225600))
	f.Add("*/5 * * * *", "30 */20 * * * *", uint16(60), uint16(120), uint8(3), uint8(40), uint8(0), uint8(0), uint8(0), int8(-3), uint8(0), int64(1774746000))
	f.Add("30 2 * * *", "*/15 2 * * *", uint16(1), uint16(3600), uint8(2), uint8(40), uint8(1), uint8(30), uint8(7), int8(0), uint8(1), int64(1774742400))
	f.Add("@every 7m", "@hourly", uint16(59), uint16(61), uint8(2), uint8(30), uint8(0), uint8(20), uint8(4), int8(100), uint8(4), int64(1775926800))
	f.Add("0 0 30 2 *", "0 6 * * mon", uint16(0), uint16(7200), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), int8(0), uint8(3), int64(0))
	f.Fuzz(func(t *testing.T, cron1, cron2 string, win1, win2 uint16, perMin, perHour, reserve, spacing, fan uint8, prio int8, zone uint8, fromUnix int64) {
		for _, c := range []string{cron1, cron2} {
			if strings.ContainsAny(c, "\"\\\n\r") || len(c) > 40 {
				return
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "budget:\n  triggers:\n    - {limit: %d, per: 1m}\n    - {limit: %d, per: 1h, reserve: %d}\n  min_spacing: %ds\n",
			perMin, perHour, reserve, spacing%120)
		fmt.Fprintf(&b, "defaults:\n  timezone: %s\n", fuzzZones[int(zone)%len(fuzzZones)])
		b.WriteString("schedules:\n")
		fmt.Fprintf(&b, "  - name: one\n    project: 5a8591dd-4039-49df-9202-96385ba3eff8\n    cron: \"%s\"\n    window: %ds\n    priority: %d\n", cron1, win1, prio)
		fmt.Fprintf(&b, "  - name: two\n    project: 9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c\n    cron: \"%s\"\n    window: %ds\n", cron2, win2)
		if n := int(fan % 8); n > 0 {
			vals := make([]string, n)
			for i := range vals {
				vals[i] = fmt.Sprintf("r%d", i)
			}
			fmt.Fprintf(&b, "    matrix:\n      region: [%s]\n", strings.Join(vals, ", "))
		}
		cfg, err := Parse("fuzz.yaml", []byte(b.String()))
		if err != nil {
			return // FuzzParse checks the error's shape
		}
		from := time.Unix(fromUnix%(1<<34), 0).UTC() // years 1970..2514
		in := Input{From: from, Horizon: 3 * time.Hour}
		want := Expand(cfg, in)
		res := Plan(cfg, in)
		if res == nil {
			t.Fatal("nil plan")
		}
		if got := len(res.Firings) + len(res.Unplaced); got != len(want) {
			t.Fatalf("%d firings expanded, %d placed + %d unplaced", len(want), len(res.Firings), len(res.Unplaced))
		}
		seen := map[string]bool{}
		for _, u := range res.Unplaced {
			if seen[u.Slot] {
				t.Fatalf("slot %s twice", u.Slot)
			}
			seen[u.Slot] = true
			if u.Reason == "" {
				t.Fatalf("unplaced %s without a reason", u.Slot)
			}
		}
		var planned []time.Time
		for _, p := range res.Firings {
			if seen[p.Slot] {
				t.Fatalf("slot %s twice", p.Slot)
			}
			seen[p.Slot] = true
			if p.Planned.Before(p.Release) || p.Planned.After(p.Deadline) || p.Planned.Nanosecond() != 0 {
				t.Fatalf("%s planned %v outside [%v, %v] or not whole seconds", p.Slot, p.Planned, p.Release, p.Deadline)
			}
			planned = append(planned, p.Planned)
		}
		if !slices.IsSortedFunc(planned, func(a, b time.Time) int { return a.Compare(b) }) {
			t.Fatal("firings not sorted by planned instant")
		}
		// Admission itself (budget.Wait, skew margin and min_spacing included) admits
		// every firing at its planned instant.
		if err := admitted(cfg.Budget.Trigger(), nil, planned); err != nil {
			t.Fatal(err)
		}
		for _, u := range res.Unplaced {
			for _, p := range res.Firings {
				if p.Priority < u.Priority && !p.Planned.Before(u.Release) && !p.Planned.After(u.Deadline) {
					t.Fatalf("%s (priority %d) unplaced while %s (priority %d) holds %v in its window", u.Slot, u.Priority, p.Slot, p.Priority, p.Planned)
				}
			}
		}
	})
}
