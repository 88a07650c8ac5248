package planner

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func fmtUTC(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.UTC().Format(time.RFC3339)
	}
	return out
}

// TestDST checks the DST rule: a slot in a skipped hour fires at the transition, a
// slot in a repeated hour fires once (its first occurrence).
func TestDST(t *testing.T) {
	tests := []struct {
		name, zone, cron, from, to string
		want                       []string
	}{
		{"berlin spring skipped slot fires at transition", "Europe/Berlin", "30 2 * * *",
			"2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"berlin autumn repeated slot fires once", "Europe/Berlin", "30 2 * * *",
			"2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"berlin hourly over spring gap has no duplicate", "Europe/Berlin", "0 * * * *",
			"2026-03-28T22:30:00Z", "2026-03-29T02:30:00Z",
			[]string{"2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
		{"berlin hourly over autumn repeat fires 02:00 once", "Europe/Berlin", "0 * * * *",
			"2026-10-24T22:30:00Z", "2026-10-25T03:30:00Z",
			[]string{"2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"}},
		{"berlin every quarter of the skipped hour folds into one", "Europe/Berlin", "*/15 2 * * *",
			"2026-03-29T00:00:00Z", "2026-03-29T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z"}},
		{"new york spring", "America/New_York", "30 2 * * *",
			"2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"new york autumn", "America/New_York", "30 1 * * *",
			"2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"seconds field in a repeated hour", "America/New_York", "15 0 1 * * *",
			"2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z",
			[]string{"2026-11-01T05:00:15Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCron(tt.cron)
			if err != nil {
				t.Fatal(err)
			}
			loc := mustLoc(t, tt.zone)
			got := fmtUTC(c.between(loc, utc(tt.from), utc(tt.to)))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("between = %v, want %v", got, tt.want)
			}
			// Prev agrees with between: the instant before each one is the previous one.
			all := c.between(loc, utc(tt.from).Add(-48*time.Hour), utc(tt.to))
			for i := 1; i < len(all); i++ {
				p, ok := c.prev(loc, all[i])
				if !ok || !p.Equal(all[i-1]) {
					t.Fatalf("prev(%s) = %s %v, want %s", all[i].UTC(), p.UTC(), ok, all[i-1].UTC())
				}
				p, ok = c.prev(loc, all[i].Add(time.Second))
				if !ok || !p.Equal(all[i]) {
					t.Fatalf("prev(%s+1s) = %s, want itself", all[i].UTC(), p.UTC())
				}
			}
		})
	}
}

// TestBetweenMatchesRobfigInUTC cross-checks the enumeration against robfig/cron's Next
// in a zone without DST, where both must agree.
func TestBetweenMatchesRobfigInUTC(t *testing.T) {
	specs := []string{"0 * * * *", "*/7 3-5 * * 1-5", "15,45 */2 1,15 * *", "0 30 6 * * *",
		"*/20 * * * * *", "0 0 29 2 *", "@hourly", "@daily", "@weekly", "@monthly", "5 4 * * sun",
		"0 9 1-7 * mon"}
	r := rand.New(rand.NewPCG(1, 2))
	for _, spec := range specs {
		c, err := parseCron(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		rs, err := cronParser.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		rs.(*cron.SpecSchedule).Location = time.UTC
		for range 5 {
			from := time.Unix(1_700_000_000+r.Int64N(200_000_000), 0).UTC()
			to := from.Add(9 * 24 * time.Hour)
			var want []time.Time
			for n := rs.Next(from.Add(-time.Second)); n.Before(to) && !n.IsZero(); n = rs.Next(n) {
				want = append(want, n)
			}
			got := c.between(time.UTC, from, to)
			if !slices.EqualFunc(got, want, time.Time.Equal) {
				t.Fatalf("%s from %s: got %d instants %v, robfig %d", spec, from, len(got), fmtUTC(got[:min(3, len(got))]), len(want))
			}
		}
	}
}

func TestEvery(t *testing.T) {
	c, err := parseCron("@every 10m")
	if err != nil {
		t.Fatal(err)
	}
	got := fmtUTC(c.between(mustLoc(t, "Asia/Kolkata"), utc("2026-01-01T00:05:00Z"), utc("2026-01-01T00:35:00Z")))
	want := []string{"2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z", "2026-01-01T00:30:00Z"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	p, ok := c.prev(time.UTC, utc("2026-01-01T00:10:00Z"))
	if !ok || !p.Equal(utc("2026-01-01T00:00:00Z")) {
		t.Fatalf("prev = %v", p)
	}
}

func TestParseCronErrors(t *testing.T) {
	for _, spec := range []string{"", "61 * * * *", "* * *", "TZ=Europe/Berlin 0 * * * *", "TZ=x", "0 0 30 2 *",
		"@every 0s", "@every -1m", "@fortnightly", "*/0 * * * *", "1 2 3 4 5 6 7"} {
		if _, err := parseCron(spec); err == nil {
			t.Errorf("parseCron(%q) succeeded", spec)
		}
	}
}
