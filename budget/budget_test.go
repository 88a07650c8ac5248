package budget

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestBudgetWaitCases(t *testing.T) {
	b := Budget{Rules: []Rule{{Limit: 3, Per: time.Minute}}, Skew: time.Second, MaxAttempt: 40 * time.Second}
	b1 := Budget{Rules: []Rule{{Limit: 1, Per: time.Minute}}, Skew: time.Second, MaxAttempt: 40 * time.Second}
	done := func(s, d float64) Attempt { return Attempt{Sent: at(s), Done: at(d)} }
	for _, tc := range []struct {
		name     string
		b        Budget
		now      float64
		attempts []Attempt
		want     time.Duration
	}{
		{"empty", b, 0, nil, 0},
		{"below limit", b, 10, []Attempt{done(0, 1), done(2, 3)}, 0},
		{"at limit: wait for the oldest end+skew to leave the window", b, 10,
			[]Attempt{done(0, 1), done(2, 3), done(4, 5)}, (1 + 1 + 60 - 10) * time.Second},
		{"in-flight counts until now+skew", b, 10,
			[]Attempt{done(0, 1), done(2, 3), {Sent: at(4)}}, (1 + 1 + 60 - 10) * time.Second},
		{"three in flight: earliest is now+skew+per", b, 10,
			[]Attempt{{Sent: at(0)}, {Sent: at(2)}, {Sent: at(4)}}, (1 + 60) * time.Second},
		{"live in-flight occupies until now+skew", b1, 80, []Attempt{{Sent: at(50)}}, (1 + 60) * time.Second},
		{"dead in-flight capped at sent+max attempt+skew", b1, 100, []Attempt{{Sent: at(50)}}, (50 + 40 + 1 + 60 - 100) * time.Second},
		{"slow response holds its slot longer", b, 10,
			[]Attempt{done(0, 30), done(2, 3), done(4, 5)}, (3 + 1 + 60 - 10) * time.Second},
		{"reserve lowers the limit", Budget{Rules: []Rule{{Limit: 3, Per: time.Minute, Reserve: 1}}, Skew: time.Second, MaxAttempt: time.Minute}, 10,
			[]Attempt{done(0, 1), done(2, 3)}, (1 + 1 + 60 - 10) * time.Second},
		{"min spacing", Budget{Rules: b.Rules, MinSpacing: 5 * time.Second, Skew: time.Second, MaxAttempt: time.Minute}, 10,
			[]Attempt{done(8, 9)}, 3 * time.Second},
		{"two rules: the stricter wins", Budget{Rules: []Rule{{Limit: 3, Per: time.Minute}, {Limit: 4, Per: time.Hour}}, Skew: time.Second, MaxAttempt: time.Minute}, 200,
			[]Attempt{done(0, 1), done(2, 3), done(100, 101), done(102, 103)}, (1 + 1 + 3600 - 200) * time.Second},
		{"no room ever", Budget{Rules: []Rule{{Limit: 2, Per: time.Minute, Reserve: 2}}}, 0, nil, Never},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Wait(at(tc.now), tc.attempts); got != tc.want {
				t.Fatalf("Wait = %v, want %v", got, tc.want)
			}
		})
	}
}

// maxInWindow is the most intervals [Sent, end] any window [x, x+per) intersects
// (checked at every x = some interval's end, which is where the maximum is reached).
func maxInWindow(iv [][2]time.Time, per time.Duration) int {
	best := 0
	for _, w := range iv {
		x := w[1]
		n := 0
		for _, v := range iv {
			if !v[1].Before(x) && v[0].Before(x.Add(per)) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

// TestBudgetNeverExceedsAnyWindow drives random demand and latencies against Wait
// and checks, by brute force over the final intervals, that no window of any rule
// ever held more than limit-reserve attempts, and that min spacing held.
func TestBudgetNeverExceedsAnyWindow(t *testing.T) {
	for seed := range uint64(150) {
		rng := rand.New(rand.NewPCG(seed, 99))
		b := Budget{
			Rules: []Rule{
				{Limit: 2 + rng.IntN(6), Per: time.Duration(5+rng.IntN(60)) * time.Second, Reserve: rng.IntN(2)},
				{Limit: 8 + rng.IntN(10), Per: time.Duration(100+rng.IntN(400)) * time.Second},
			},
			MinSpacing: time.Duration(rng.IntN(3)) * time.Second,
			Skew:       time.Duration(rng.IntN(3000)) * time.Millisecond,
			MaxAttempt: 20 * time.Second,
		}
		type att struct {
			sent, done time.Time
		}
		var all []att
		now := t0
		for step := 0; step < 400; step++ {
			// What the ledger knows at now: responses that arrived are done.
			view := make([]Attempt, 0, len(all))
			for _, a := range all {
				v := Attempt{Sent: a.sent}
				if !a.done.After(now) {
					v.Done = a.done
				}
				view = append(view, v)
			}
			w := b.Wait(now, view)
			if w == 0 {
				lat := time.Duration(rng.Int64N(int64(b.MaxAttempt)))
				if rng.IntN(10) == 0 {
					lat = b.MaxAttempt // a dead process: never completes within MaxAttempt
				}
				all = append(all, att{now, now.Add(lat)})
			}
			if w == Never {
				t.Fatal("Never with room")
			}
			// Callers wake at arbitrary instants (polling, other events) or after w.
			if w > 0 && rng.IntN(2) == 0 {
				now = now.Add(w)
			} else {
				now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			}
		}
		iv := make([][2]time.Time, len(all))
		for i, a := range all {
			iv[i] = [2]time.Time{a.sent, a.done.Add(b.Skew)}
			if i > 0 && a.sent.Sub(all[i-1].sent) < b.MinSpacing {
				t.Fatalf("seed %d: min spacing broken", seed)
			}
		}
		for _, r := range b.Rules {
			if got := maxInWindow(iv, r.Per); got > r.Limit-r.Reserve {
				t.Fatalf("seed %d: %d attempts in one %v window, limit %d reserve %d", seed, got, r.Per, r.Limit, r.Reserve)
			}
		}
		if len(all) < 10 {
			t.Fatalf("seed %d: only %d admitted: the test does not exercise the limit", seed, len(all))
		}
	}
}

// TestBudgetWaitIsEarliest: with completed attempts only, Wait names exactly the
// first admitted instant: admitted there, refused a nanosecond before.
func TestBudgetWaitIsEarliest(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		b := Budget{Rules: []Rule{{Limit: 1 + rng.IntN(5), Per: time.Duration(1+rng.IntN(90)) * time.Second}, {Limit: 5 + rng.IntN(5), Per: 5 * time.Minute}},
			MinSpacing: time.Duration(rng.IntN(4)) * time.Second, Skew: time.Second, MaxAttempt: time.Minute}
		var atts []Attempt
		s := t0
		for range rng.IntN(12) {
			s = s.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
			atts = append(atts, Attempt{Sent: s, Done: s.Add(time.Duration(rng.Int64N(int64(5 * time.Second))))})
		}
		now := s.Add(6 * time.Second)
		w := b.Wait(now, atts)
		if w == 0 {
			continue
		}
		if got := b.Wait(now.Add(w), atts); got != 0 {
			t.Fatalf("not admitted at now+wait: %v more", got)
		}
		if got := b.Wait(now.Add(w-time.Nanosecond), atts); got == 0 {
			t.Fatal("admitted before now+wait: Wait is not the earliest instant")
		}
	}
}

// tokenBucket is the naive pattern docs/architecture.md (budget) warns about: capacity n, refilled
// continuously at n per per.
type tokenBucket struct {
	n      float64
	per    time.Duration
	tokens float64
	last   time.Time
}

func (tb *tokenBucket) allow(now time.Time) bool {
	tb.tokens = min(tb.n, tb.tokens+now.Sub(tb.last).Seconds()*tb.n/tb.per.Seconds())
	tb.last = now
	if tb.tokens >= 1 {
		tb.tokens--
		return true
	}
	return false
}

// TestTokenBucketAdmits2NMinus1 documents why the budget is a sliding log: a full
// bucket of capacity N=20 spends 20 at once, then refills 19 more within the same
// minute, 39 = 2N-1 requests in one rolling minute, which a server counting rolling
// or first-request-anchored windows answers with 429s. The budget admits 20.
func TestTokenBucketAdmits2NMinus1(t *testing.T) {
	const n = 20
	per := time.Minute
	tb := &tokenBucket{n: n, per: per, tokens: n, last: t0}
	b := Budget{Rules: []Rule{{Limit: n, Per: per}}, MaxAttempt: time.Second}
	var bucket, log []time.Time
	var atts []Attempt
	for ms := 0; ms < 60_000; ms += 100 { // greedy demand every 100ms for one minute
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		if tb.allow(now) {
			bucket = append(bucket, now)
		}
		if b.Wait(now, atts) == 0 {
			log = append(log, now)
			atts = append(atts, Attempt{Sent: now, Done: now})
		}
	}
	if len(bucket) != 2*n-1 {
		t.Fatalf("token bucket admitted %d in one minute, want 2N-1 = %d", len(bucket), 2*n-1)
	}
	if len(log) != n {
		t.Fatalf("sliding log admitted %d in one minute, want %d", len(log), n)
	}
}

func TestBudgetSince(t *testing.T) {
	b := Budget{Rules: DefaultRules(), Skew: 2 * time.Second, MaxAttempt: time.Minute}
	if got, want := b.Since(t0), t0.Add(-(time.Hour + time.Minute + 2*time.Second)); !got.Equal(want) {
		t.Fatalf("Since = %v, want %v", got, want)
	}
}

// TestUntilBoundsEnd: Until is the latest End any admission can see, whatever the
// instant and whatever became of an attempt in flight (answered later, or never).
func TestUntilBoundsEnd(t *testing.T) {
	b := Budget{Rules: DefaultRules(), Skew: DefaultSkew, MaxAttempt: DefaultMaxAttempt}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		sent := at(rng.Float64() * 100)
		inflight := Attempt{Sent: sent}
		now := sent.Add(time.Duration(rng.Int64N(int64(3 * time.Minute))))
		if e, u := b.End(now, inflight), b.Until(inflight); e.After(u) {
			t.Fatalf("in flight at %v: End %v after Until %v", now, e, u)
		}
		answered := Attempt{Sent: sent, Done: sent.Add(time.Duration(rng.Int64N(int64(b.MaxAttempt))))}
		if e, u := b.End(now, answered), b.Until(answered); !e.Equal(u) || !u.Equal(answered.Done.Add(b.Skew)) {
			t.Fatalf("answered: End %v, Until %v, want Done+Skew", e, u)
		}
	}
	dead := Attempt{Sent: t0}
	if got, want := b.Until(dead), t0.Add(DefaultMaxAttempt+DefaultSkew); !got.Equal(want) {
		t.Fatalf("Until(in flight) = %v, want Sent+MaxAttempt+Skew %v", got, want)
	}
	if got := b.End(t0.Add(time.Hour), dead); !got.Equal(b.Until(dead)) {
		t.Fatalf("a dead attempt's End %v is not its Until", got)
	}
}

func TestFull(t *testing.T) {
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	b := Budget{Rules: []Rule{{Limit: 2, Per: time.Minute}, {Limit: 3, Per: time.Hour}}, MinSpacing: 10 * time.Second, Skew: time.Second, MaxAttempt: time.Minute}
	at := func(ago time.Duration) Attempt {
		return Attempt{Sent: now.Add(-ago), Done: now.Add(-ago + time.Second)}
	}
	for _, tt := range []struct {
		name     string
		attempts []Attempt
		rules    []Rule
		spacing  bool
	}{
		{"room", []Attempt{at(30 * time.Minute)}, nil, false},
		{"spacing only", []Attempt{at(5 * time.Second)}, nil, true},
		{"minute rule", []Attempt{at(20 * time.Second), at(40 * time.Second)}, b.Rules[:1], false},
		{"hour rule", []Attempt{at(50 * time.Minute), at(40 * time.Minute), at(30 * time.Minute)}, b.Rules[1:], false},
		{"both", []Attempt{at(50 * time.Minute), at(40 * time.Second), at(20 * time.Second)}, b.Rules, false},
	} {
		rules, spacing := b.Full(now, tt.attempts)
		if fmt.Sprint(rules) != fmt.Sprint(tt.rules) || spacing != tt.spacing {
			t.Errorf("%s: Full = %v, %v; want %v, %v", tt.name, rules, spacing, tt.rules, tt.spacing)
		}
		if (b.Wait(now, tt.attempts) > 0) != (len(tt.rules) > 0 || tt.spacing) {
			t.Errorf("%s: Full disagrees with Wait %v", tt.name, b.Wait(now, tt.attempts))
		}
	}
}
