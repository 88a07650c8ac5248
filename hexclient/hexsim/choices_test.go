package hexsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestListOrderChoices: GetProjectRuns lists newest first, oldest first, or in an
// order unrelated to time that is the same on every request; paging with offset walks
// every run exactly once under each.
func TestListOrderChoices(t *testing.T) {
	for _, order := range []ListOrder{ListNewestFirst, ListOldestFirst, ListUnordered} {
		t.Run(string(order), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{ListOrder: order, Limits: Limits{Trigger: []Rule{}, AllCalls: []Rule{}, Status: []Rule{}, Kernels: -1}})
				var created []string // oldest first
				for range 23 {
					_, id := h.trigger(tokA, proj1)
					created = append(created, id)
					time.Sleep(time.Second)
				}
				list := func() []string {
					var got []string
					for off := 0; ; off += 10 {
						r := h.do("GET", "/projects/"+proj1+"/runs?limit=10&offset="+strconv.Itoa(off), tokA, nil)
						var page struct {
							Runs     []struct{ RunID string }
							NextPage *string
						}
						r.json(t, &page)
						for _, run := range page.Runs {
							got = append(got, run.RunID)
						}
						if page.NextPage == nil {
							return got
						}
					}
				}
				got := list()
				if again := list(); !slices.Equal(got, again) {
					t.Fatalf("two listings differ: %v then %v", got, again)
				}
				sorted := slices.Clone(got)
				slices.Sort(sorted)
				want := slices.Clone(created)
				slices.Sort(want)
				if !slices.Equal(sorted, want) {
					t.Fatalf("listing %v is not every run once (%v)", got, created)
				}
				rev := slices.Clone(created)
				slices.Reverse(rev)
				switch order {
				case ListNewestFirst:
					if !slices.Equal(got, rev) {
						t.Fatalf("newest first: %v, want %v", got, rev)
					}
				case ListOldestFirst:
					if !slices.Equal(got, created) {
						t.Fatalf("oldest first: %v, want %v", got, created)
					}
				case ListUnordered:
					if slices.Equal(got, created) || slices.Equal(got, rev) {
						t.Fatalf("unordered listing follows creation: %v", got)
					}
				}
			})
		})
	}
}

// TestAccessChoices: a project shared for viewing answers 403 to RunProject and
// CancelRun while reads work; a project not shared answers 403 to every call and is
// not listed; a token without the run scope gets 403 on RunProject for every project;
// a project missing from the registry is 404.
func TestAccessChoices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const readOnly = "hxtw_readonly"
		h := newHarness(t, Config{ReadOnlyTokens: []string{readOnly}, Projects: []Project{
			{ID: proj1, Title: "Open", Published: true},
			{ID: proj2, Title: "View only", Published: true, Access: AccessRead},
			{ID: proj3, Title: "Private", Published: true, Access: AccessNone},
		}})
		_, run1 := h.trigger(tokA, proj1)
		run2, _ := h.sim.AddRun(proj2, TriggerScheduled)
		reason := func(r resp) string {
			var e struct{ Reason, TraceID string }
			r.json(t, &e)
			if e.TraceID == "" {
				t.Errorf("403 without a trace id: %s", r.body)
			}
			return e.Reason
		}
		for _, tc := range []struct {
			method, path, token string
			want                int
		}{
			{"POST", "/projects/" + proj2 + "/runs", tokA, 403},
			{"DELETE", "/projects/" + proj2 + "/runs/" + run2.ID, tokA, 403},
			{"GET", "/projects/" + proj2 + "/runs/" + run2.ID, tokA, 200},
			{"GET", "/projects/" + proj2 + "/runs", tokA, 200},
			{"GET", "/projects/" + proj2, tokA, 200},
			{"POST", "/projects/" + proj3 + "/runs", tokA, 403},
			{"GET", "/projects/" + proj3 + "/runs", tokA, 403},
			{"GET", "/projects/" + proj3, tokA, 403},
			{"POST", "/projects/" + proj1 + "/runs", readOnly, 403},
			{"DELETE", "/projects/" + proj1 + "/runs/" + run1, readOnly, 403},
			{"GET", "/projects/" + proj1 + "/runs/" + run1, readOnly, 200},
			{"GET", "/projects", readOnly, 200},
			{"POST", "/projects/2d9b5e4c-3f60-4b7c-9d8e-9f0a1b2c3d4e/runs", tokA, 404},
			{"GET", "/projects/2d9b5e4c-3f60-4b7c-9d8e-9f0a1b2c3d4e", tokA, 404},
		} {
			r := h.do(tc.method, tc.path, tc.token, nil)
			if r.status != tc.want {
				t.Errorf("%s %s (%s): %d %s, want %d", tc.method, tc.path, tc.token, r.status, r.body, tc.want)
			}
			if r.status == 403 && reason(r) == "" {
				t.Errorf("%s %s: 403 without a reason", tc.method, tc.path)
			}
		}
		r := h.do("GET", "/projects?limit=100", tokA, nil)
		var list struct{ Values []struct{ ID string } }
		r.json(t, &list)
		for _, p := range list.Values {
			if p.ID == proj3 {
				t.Fatalf("the project not shared is listed: %s", r.body)
			}
		}
		if n := len(h.sim.Runs()); n != 2 {
			t.Fatalf("%d runs, want 2 (no 403 creates one)", n)
		}
	})
}

// TestResetUnitChoices: X-RateLimit-Reset alone, in unix seconds, unix milliseconds or
// seconds from now, each announcing the instant a retry is admitted.
func TestResetUnitChoices(t *testing.T) {
	for _, unit := range []ResetUnit{ResetUnix, ResetUnixMilli, ResetSeconds} {
		t.Run(string(unit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Limits: Limits{Style: StyleXRateLimit, ResetUnit: unit, Window: WindowRolling}})
				start := time.Now()
				for i := range 20 {
					sleepUntil(start.Add(time.Duration(i)*time.Second + 250*time.Millisecond))
					h.trigger(tokA, proj1)
				}
				sleepUntil(start.Add(30 * time.Second))
				r, _ := h.trigger(tokA, proj1)
				if r.status != http.StatusTooManyRequests {
					t.Fatalf("status %d, want 429", r.status)
				}
				for _, k := range []string{"Retry-After", "RateLimit-Reset"} {
					if r.header.Get(k) != "" {
						t.Errorf("%s present in style x-ratelimit", k)
					}
				}
				free := start.Add(60*time.Second + 250*time.Millisecond) // the oldest trigger leaves the rolling minute
				want := map[ResetUnit]string{
					ResetUnix:      strconv.FormatInt(free.Unix()+1, 10), // rounded up: never early
					ResetUnixMilli: strconv.FormatInt(free.UnixMilli(), 10),
					ResetSeconds:   "31",
				}[unit]
				if got := r.header.Get("X-RateLimit-Reset"); got != want {
					t.Fatalf("X-RateLimit-Reset %q, want %q", got, want)
				}
			})
		})
	}
}

// TestAllCallsWindowAnchoredByDefault: Hex's overview says the all-calls window starts
// at the first request; the sim counts it so by default (the trigger and status rules
// stay fixed, clock-aligned, unless configured).
func TestAllCallsWindowAnchoredByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Limits: Limits{AllCalls: []Rule{{Limit: 3, Per: time.Minute}}}})
		time.Sleep(50 * time.Second) // a fixed, clock-aligned minute would reset 10 s from now
		for range 3 {
			h.do("GET", "/projects", tokA, nil)
		}
		time.Sleep(15 * time.Second) // a new clock minute, but the anchored window lasts until 50+60 s
		if r := h.do("GET", "/projects", tokA, nil); r.status != http.StatusTooManyRequests {
			t.Fatalf("4th call 15 s later: %d, want 429 (window anchored at the first call)", r.status)
		}
		time.Sleep(45 * time.Second)
		if r := h.do("GET", "/projects", tokA, nil); r.status != http.StatusOK {
			t.Fatalf("a minute after the first call: %d, want 200", r.status)
		}
	})
}

// TestProjectFacts: projectVersion follows the project's Version (a number, or text
// under ProjectVersionString) in the 201 and in run statuses; GetProject shows
// lastPublishedAt and the project's own Hex schedules.
func TestProjectFacts(t *testing.T) {
	for _, asString := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, Config{ProjectVersionString: asString, Projects: []Project{
				{ID: proj1, Title: "Daily", Published: true, Version: 7,
					Schedules: []HexSchedule{{Cadence: "CUSTOM", Enabled: true, Cron: "0 6 * * *", Timezone: "Europe/Berlin"}}},
				{ID: proj2, Title: "Draft"},
			}})
			want := `7`
			if asString {
				want = `"7"`
			}
			r, id := h.trigger(tokA, proj1)
			var c struct{ ProjectVersion json.RawMessage }
			r.json(t, &c)
			if string(c.ProjectVersion) != want {
				t.Fatalf("201 projectVersion %s, want %s", c.ProjectVersion, want)
			}
			r = h.do("GET", "/projects/"+proj1+"/runs/"+id, tokA, nil)
			r.json(t, &c)
			if string(c.ProjectVersion) != want {
				t.Fatalf("status projectVersion %s, want %s", c.ProjectVersion, want)
			}
			var p struct {
				LastPublishedAt *string
				Schedules       []struct {
					Cadence string
					Enabled bool
					Custom  struct{ Cron, Timezone string }
				}
			}
			h.do("GET", "/projects/"+proj1, tokA, nil).json(t, &p)
			if p.LastPublishedAt == nil || len(p.Schedules) != 1 || p.Schedules[0].Cadence != "CUSTOM" || !p.Schedules[0].Enabled ||
				p.Schedules[0].Custom.Cron != "0 6 * * *" || p.Schedules[0].Custom.Timezone != "Europe/Berlin" {
				t.Fatalf("GetProject %+v", p)
			}
			h.do("GET", "/projects/"+proj2, tokA, nil).json(t, &p)
			if p.LastPublishedAt != nil || len(p.Schedules) != 0 {
				t.Fatalf("unpublished GetProject %+v", p)
			}
		})
	}
}
