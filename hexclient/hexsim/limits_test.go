package hexsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestCounter checks each window model's arithmetic with time as an argument.
func TestCounter(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type probe struct {
		at   time.Duration
		ok   bool
		wait time.Duration // when !ok
	}
	tests := []struct {
		model  WindowModel
		probes []probe
	}{
		{WindowFixed, []probe{{at: 50 * time.Second, ok: true}, {at: 55 * time.Second, ok: true},
			{at: 58 * time.Second, ok: false, wait: 2 * time.Second}, {at: 60 * time.Second, ok: true},
			{at: 61 * time.Second, ok: true}, {at: 62 * time.Second, ok: false, wait: 58 * time.Second}}},
		{WindowAnchored, []probe{{at: 50 * time.Second, ok: true}, {at: 55 * time.Second, ok: true},
			{at: 60 * time.Second, ok: false, wait: 50 * time.Second}, {at: 110 * time.Second, ok: true},
			{at: 169 * time.Second, ok: true}, {at: 170 * time.Second, ok: true}}},
		{WindowRolling, []probe{{at: 50 * time.Second, ok: true}, {at: 55 * time.Second, ok: true},
			{at: 60 * time.Second, ok: false, wait: 50 * time.Second}, {at: 109 * time.Second, ok: false, wait: time.Second},
			{at: 110 * time.Second, ok: true}, {at: 114 * time.Second, ok: false, wait: time.Second}, {at: 115 * time.Second, ok: true}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.model), func(t *testing.T) {
			c := &counter{rule: Rule{Limit: 2, Per: time.Minute}, model: tt.model}
			for _, p := range tt.probes {
				ok, wait := c.check(at(p.at))
				if ok != p.ok || (!ok && wait != p.wait) {
					t.Fatalf("at +%v: ok=%v wait=%v, want ok=%v wait=%v", p.at, ok, wait, p.ok, p.wait)
				}
				if ok {
					c.record(at(p.at))
				}
			}
		})
	}
}

// TestWindowModels2Nminus1 is the burst at a window boundary: 20 triggers in the last
// 10 s of one clock minute and 20 in the first 10 s of the next. Fixed windows aligned to
// the clock admit all 40 (2N-1 is possible in one rolling minute); a rolling log and
// windows anchored at the first request refuse the second burst.
func TestWindowModels2Nminus1(t *testing.T) {
	for _, tt := range []struct {
		model   WindowModel
		want429 int
	}{{WindowFixed, 0}, {WindowAnchored, 20}, {WindowRolling, 20}} {
		t.Run(string(tt.model), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Limits: Limits{Window: tt.model, Kernels: -1}})
				minute := time.Now().Truncate(time.Minute).Add(time.Minute)
				var rs []resp
				for i := range 40 {
					at := minute.Add(50*time.Second + time.Duration(i)*500*time.Millisecond)
					if i >= 20 {
						at = minute.Add(time.Minute + time.Duration(i-20)*500*time.Millisecond)
					}
					sleepUntil(at)
					r, _ := h.trigger(tokA, proj1)
					rs = append(rs, r)
				}
				n429 := 0
				for _, r := range rs {
					if r.status == http.StatusTooManyRequests {
						n429++
					} else if r.status != http.StatusCreated {
						t.Fatalf("unexpected status %d", r.status)
					}
				}
				if n429 != tt.want429 {
					t.Fatalf("%d 429s, want %d: %v", n429, tt.want429, statuses(rs))
				}
				if got := len(h.sim.Runs()); got != 40-tt.want429 {
					t.Fatalf("%d runs created, want %d: a 429 must not create a run", got, 40-tt.want429)
				}
			})
		})
	}
}

// TestEachLimit drives each rule to its edge under each window model.
func TestEachLimit(t *testing.T) {
	models := []WindowModel{WindowFixed, WindowAnchored, WindowRolling}
	for _, model := range models {
		t.Run(string(model)+"/trigger per minute", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Limits: Limits{Window: model}})
				for i := range 20 {
					if r, _ := h.trigger(tokA, proj1); r.status != http.StatusCreated {
						t.Fatalf("trigger %d: %d", i+1, r.status)
					}
				}
				if r, _ := h.trigger(tokA, proj1); r.status != http.StatusTooManyRequests {
					t.Fatalf("21st trigger in a minute: %d, want 429", r.status)
				}
				// Reads still pass: the trigger rule is not the all-calls rule.
				if r := h.do("GET", "/projects/"+proj1, tokA, nil); r.status != http.StatusOK {
					t.Fatalf("GetProject after trigger 429: %d", r.status)
				}
				time.Sleep(time.Minute)
				if r, _ := h.trigger(tokA, proj1); r.status != http.StatusCreated {
					t.Fatalf("trigger a minute later: %d", r.status)
				}
			})
		})
		t.Run(string(model)+"/trigger per hour", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Limits: Limits{Window: model}})
				var got []int
				for range 4 {
					for range 20 {
						r, _ := h.trigger(tokA, proj1)
						got = append(got, r.status)
					}
					time.Sleep(time.Minute)
				}
				created := 0
				for _, s := range got {
					if s == http.StatusCreated {
						created++
					}
				}
				if created != 60 || got[60] != http.StatusTooManyRequests {
					t.Fatalf("80 triggers over 4 minutes: %d created, want 60 then 429s", created)
				}
				time.Sleep(time.Hour)
				if r, _ := h.trigger(tokA, proj1); r.status != http.StatusCreated {
					t.Fatalf("trigger an hour later: %d", r.status)
				}
			})
		})
		t.Run(string(model)+"/all calls", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Limits: Limits{Window: model}})
				for i := range 60 {
					if r := h.do("GET", "/projects/"+proj1, tokA, nil); r.status != http.StatusOK {
						t.Fatalf("call %d: %d", i+1, r.status)
					}
				}
				if r, _ := h.trigger(tokA, proj1); r.status != http.StatusTooManyRequests {
					t.Fatalf("61st call: %d, want 429", r.status)
				}
				if r := h.do("GET", "/projects", tokB, nil); r.status != http.StatusOK {
					t.Fatalf("another user's call: %d, want 200 (limits are per user)", r.status)
				}
				time.Sleep(time.Minute)
				if r := h.do("GET", "/projects", tokA, nil); r.status != http.StatusOK {
					t.Fatalf("a minute later: %d", r.status)
				}
			})
		})
		t.Run(string(model)+"/status group", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Limits: Limits{Window: model}})
				_, id := h.trigger(tokA, proj1)
				for i := range 30 {
					path := "/projects/" + proj1 + "/runs/" + id
					if i%2 == 1 {
						path = "/projects/" + proj1 + "/runs"
					}
					if r := h.do("GET", path, tokA, nil); r.status != http.StatusOK {
						t.Fatalf("status call %d: %d", i+1, r.status)
					}
				}
				if r := h.do("GET", "/projects/"+proj1+"/runs/"+id, tokA, nil); r.status != http.StatusTooManyRequests {
					t.Fatalf("31st status call: %d, want 429", r.status)
				}
				if r := h.do("GET", "/projects/"+proj1, tokA, nil); r.status != http.StatusOK {
					t.Fatalf("GetProject is not in the status group: %d", r.status)
				}
			})
		})
	}
}

// TestLimitsPerUser: two tokens of one user share a budget; another user has its own.
func TestLimitsPerUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Users: []User{{Name: "alice", Tokens: []string{tokA, "hxtw_alice_ci"}}, {Name: "bob", Tokens: []string{tokB}}}})
		for i := range 20 {
			tok := tokA
			if i%2 == 0 {
				tok = "hxtw_alice_ci"
			}
			if r, _ := h.trigger(tok, proj1); r.status != http.StatusCreated {
				t.Fatalf("trigger %d: %d", i+1, r.status)
			}
		}
		if r, _ := h.trigger("hxtw_alice_ci", proj1); r.status != http.StatusTooManyRequests {
			t.Fatalf("21st trigger of alice: %d, want 429", r.status)
		}
		if r, _ := h.trigger(tokB, proj1); r.status != http.StatusCreated {
			t.Fatalf("bob's trigger: %d", r.status)
		}
		reqs := h.sim.Requests()
		if reqs[0].User != "alice" || reqs[len(reqs)-1].User != "bob" {
			t.Fatalf("ledger users: %q ... %q", reqs[0].User, reqs[len(reqs)-1].User)
		}
	})
}

func TestSharedUserOpenMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{SharedUser: true})
		for i := range 20 {
			tok := fmt.Sprintf("hxtp_tok%d", i)
			if r, _ := h.trigger(tok, proj1); r.status != http.StatusCreated {
				t.Fatalf("trigger %d: %d", i, r.status)
			}
		}
		if r, _ := h.trigger("hxtw_other", proj1); r.status != http.StatusTooManyRequests {
			t.Fatalf("21st trigger with yet another token of the shared user: %d, want 429", r.status)
		}
	})
}

// Test429Styles checks the headers of each style, and that the announced instant is
// exact: a retry at that instant passes, one a second earlier does not.
func Test429Styles(t *testing.T) {
	for _, style := range []RetryStyle{StyleRetryAfter, StyleReset, StyleBoth, StyleNone} {
		t.Run(string(style), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Limits: Limits{Style: style, Window: WindowRolling}})
				start := time.Now()
				for i := range 20 {
					sleepUntil(start.Add(time.Duration(i) * time.Second))
					h.trigger(tokA, proj1)
				}
				sleepUntil(start.Add(30 * time.Second))
				r, _ := h.trigger(tokA, proj1)
				if r.status != http.StatusTooManyRequests {
					t.Fatalf("status %d, want 429", r.status)
				}
				// The oldest trigger (start) leaves the rolling minute at start+60s: 30 s.
				want := map[string]string{}
				switch style {
				case StyleRetryAfter:
					want["Retry-After"] = "30"
				case StyleReset:
					want["RateLimit-Reset"], want["RateLimit-Remaining"], want["X-RateLimit-Reset"] = "30", "0", strconv.FormatInt(start.Unix()+60, 10)
				case StyleBoth:
					want["Retry-After"], want["RateLimit-Reset"] = "30", "30"
				}
				for _, k := range []string{"Retry-After", "RateLimit-Reset", "RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Limit"} {
					if v, ok := want[k]; ok && r.header.Get(k) != v {
						t.Errorf("%s: %q, want %q", k, r.header.Get(k), v)
					}
					if _, ok := want[k]; !ok && (style == StyleNone || style == StyleRetryAfter) && r.header.Get(k) != "" {
						t.Errorf("%s present (%q) in style %s", k, r.header.Get(k), style)
					}
				}
				sleepUntil(start.Add(59 * time.Second))
				if r, _ := h.trigger(tokA, proj1); r.status != http.StatusTooManyRequests {
					t.Fatalf("1 s before the announced instant: %d, want 429", r.status)
				}
				sleepUntil(start.Add(60 * time.Second))
				if r, _ := h.trigger(tokA, proj1); r.status != http.StatusCreated {
					t.Fatalf("at the announced instant: %d, want 201", r.status)
				}
			})
		})
	}
}

func TestRemainingHeaderOnSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		var rem []string
		for range 3 {
			r, _ := h.trigger(tokA, proj1)
			rem = append(rem, r.header.Get("RateLimit-Remaining"))
		}
		if !slices.Equal(rem, []string{"19", "18", "17"}) {
			t.Fatalf("RateLimit-Remaining after 3 triggers: %v, want 19 18 17 (the trigger minute rule is the tightest)", rem)
		}
	})
}

// TestKernelCap: 25 runs that never finish hold every kernel; the 26th RunProject gets
// 503 and creates nothing; cancelling one frees a kernel.
func TestKernelCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Limits: Limits{Trigger: []Rule{}, AllCalls: []Rule{}},
			Runs: Lifecycle{Outcomes: map[Outcome]float64{OutcomeStuck: 1}}})
		var ids []string
		for i := range 25 {
			r, id := h.trigger(tokA, proj1)
			if r.status != http.StatusCreated {
				t.Fatalf("trigger %d: %d", i+1, r.status)
			}
			ids = append(ids, id)
		}
		time.Sleep(time.Hour)
		r, _ := h.trigger(tokA, proj2)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("26th concurrent run: %d, want 503", r.status)
		}
		if n := len(h.sim.Runs()); n != 25 {
			t.Fatalf("%d runs after the 503, want 25", n)
		}
		if last := h.sim.Requests()[len(h.sim.Requests())-1]; last.RunCreated != "" || last.Status != 503 {
			t.Fatalf("ledger of the 503: %+v", last)
		}
		if r, _ := h.trigger(tokB, proj2); r.status != http.StatusCreated {
			t.Fatalf("another user's trigger: %d, want 201 (kernels are per user)", r.status)
		}
		h.do("DELETE", "/projects/"+proj1+"/runs/"+ids[3], tokA, nil)
		if r, _ := h.trigger(tokA, proj2); r.status != http.StatusCreated {
			t.Fatalf("after a cancel: %d, want 201", r.status)
		}
	})
}

// TestResetHeadersNeverEarly: at a fractional instant, the announced reset (both forms,
// rounded up to whole seconds) is never before the instant a retry is admitted.
func TestResetHeadersNeverEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Limits: Limits{Style: StyleBoth, Window: WindowRolling, Trigger: []Rule{{Limit: 1, Per: time.Minute}}}})
		time.Sleep(200 * time.Millisecond)
		h.trigger(tokA, proj1) // admitted at +0.2s: the next one fits at +60.2s
		time.Sleep(700 * time.Millisecond)
		r, _ := h.trigger(tokA, proj1) // refused at +0.9s
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("status %d", r.status)
		}
		epoch, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
		delta, _ := strconv.Atoi(r.header.Get("RateLimit-Reset"))
		retry, _ := strconv.Atoi(r.header.Get("Retry-After"))
		now := time.Now()
		for name, at := range map[string]time.Time{"X-RateLimit-Reset": time.Unix(epoch, 0), "RateLimit-Reset": now.Add(time.Duration(delta) * time.Second),
			"Retry-After": now.Add(time.Duration(retry) * time.Second)} {
			if at.Before(now.Add(59300*time.Millisecond)) || at.After(now.Add(60300*time.Millisecond)) {
				t.Errorf("%s announces %v, want within a second after %v", name, at, now.Add(59300*time.Millisecond))
			}
		}
		sleepUntil(time.Unix(epoch, 0))
		if r, _ := h.trigger(tokA, proj1); r.status != http.StatusCreated {
			t.Fatalf("at X-RateLimit-Reset: %d", r.status)
		}
	})
}
