// Package budget is the trigger budget's sliding-log math, shared by admission (the Hex
// client admits each attempt against the ledger) and the plan (the planner places each
// firing where admission will admit it). It is one concept and pure: no I/O, no clock
// (time is always an argument). planner and hexclient both import it; it imports
// neither.
//
// The model: an attempt occupies its windows from the moment it is sent until its
// response arrived plus Skew (the server may count it at any instant in between); an
// attempt still in flight occupies until now plus Skew, and at most until Sent plus
// MaxAttempt plus Skew (past that its process died). A new attempt is admitted at t when,
// for every rule, no window of length Per holding t would hold more than Limit-Reserve
// attempts, and t is at least MinSpacing after the latest Sent.
package budget

import (
	"math"
	"slices"
	"time"
)

// Defaults of the occupancy model.
const (
	// DefaultSkew is the margin an attempt keeps occupying its windows after its
	// response arrived (clock skew and Hex counting the request late).
	DefaultSkew = 2 * time.Second
	// DefaultMaxAttempt is how long an attempt can stay in flight: the Hex client's
	// default attempt timeout (30s) plus 30s. An attempt in flight longer belongs to a
	// process that died; it occupies its windows until Sent+DefaultMaxAttempt+Skew.
	DefaultMaxAttempt = time.Minute
)

// Never is the wait Budget.Wait returns when no instant would ever be admitted (a rule
// whose reserve leaves no room).
const Never = time.Duration(math.MaxInt64)

// Rule is one of Hex's caps: at most Limit requests in any window of length Per, of
// which Reserve are left for other clients of the same Hex user.
type Rule struct {
	Limit   int
	Per     time.Duration
	Reserve int // kept free for other clients of the same Hex user
}

// Effective is the number of requests hexcron may put in one window of length Per.
func (r Rule) Effective() int { return r.Limit - r.Reserve }

// DefaultRules are Hex's documented trigger caps: 20 per minute and 60 per hour.
func DefaultRules() []Rule {
	return []Rule{{Limit: 20, Per: time.Minute}, {Limit: 60, Per: time.Hour}}
}

// Attempt is one RunProject attempt as the budget sees it.
type Attempt struct {
	Sent time.Time // when the request was sent (recorded just before sending)
	Done time.Time // when its response arrived; zero while in flight (or the process died)
}

// Budget is the admission math for one Hex user's trigger rules.
type Budget struct {
	Rules      []Rule
	MinSpacing time.Duration // no two attempts sent closer than this
	Skew       time.Duration // an attempt occupies its windows until Done+Skew
	MaxAttempt time.Duration // an attempt in flight longer than this is dead
}

// Since is the earliest Sent that can matter at now: attempts sent before it occupy
// no window an admission at now (or later) looks at.
func (b Budget) Since(now time.Time) time.Time {
	return now.Add(-(b.maxPer() + b.MaxAttempt + b.Skew))
}

func (b Budget) maxPer() time.Duration {
	var m time.Duration
	for _, r := range b.Rules {
		m = max(m, r.Per)
	}
	return m
}

// End is the instant until which a occupies its windows, as an admission at now sees
// it: Done+Skew once its response arrived; while in flight now+Skew, capped at
// Sent+MaxAttempt+Skew.
func (b Budget) End(now time.Time, a Attempt) time.Time {
	if !a.Done.IsZero() {
		return a.Done.Add(b.Skew)
	}
	if now.After(a.Sent.Add(b.MaxAttempt)) {
		return a.Sent.Add(b.MaxAttempt + b.Skew)
	}
	return now.Add(b.Skew)
}

// Until is the latest End any admission, now or later, can give a: Done+Skew once its
// response arrived, Sent+MaxAttempt+Skew while it is in flight (its answer may take
// that long, and a dead process never records one). The plan counts past attempts
// until Until, so that whatever becomes of an attempt in flight, every firing the plan
// placed is admitted at its instant.
func (b Budget) Until(a Attempt) time.Time {
	if !a.Done.IsZero() {
		return a.Done.Add(b.Skew)
	}
	return a.Sent.Add(b.MaxAttempt + b.Skew)
}

// Wait returns 0 when a new attempt may be sent at now, else how long until the
// earliest instant that would be admitted if nothing else changed (in-flight attempts
// are assumed to complete now, so a caller re-checks after waiting: the answer is never
// too late, and admission itself is always checked at the real instant).
//
// Why this is exact: every existing attempt was sent at or before now, so a window
// holding the new attempt (sent at t) holds an existing attempt i exactly when
// End(i) > t-Per, and one window can hold all of those at once. The new attempt fits
// when at most Effective-1 ends lie after t-Per, that is when t >= e+Per, e being the
// Effective-th latest end. The planner places firings by the same rule.
func (b Budget) Wait(now time.Time, attempts []Attempt) time.Duration {
	earliest := now
	if b.MinSpacing > 0 {
		for _, a := range attempts {
			if t := a.Sent.Add(b.MinSpacing); t.After(earliest) {
				earliest = t
			}
		}
	}
	var ends []time.Time
	for _, r := range b.Rules {
		n := r.Effective()
		if n <= 0 {
			return Never
		}
		if len(attempts) < n {
			continue
		}
		if ends == nil {
			ends = make([]time.Time, len(attempts))
			for i, a := range attempts {
				ends[i] = b.End(now, a)
			}
			slices.SortFunc(ends, func(x, y time.Time) int { return y.Compare(x) }) // latest first
		}
		if t := ends[n-1].Add(r.Per); t.After(earliest) {
			earliest = t
		}
	}
	return earliest.Sub(now)
}

// Full names what holds a new attempt back at now: the rules with no room (each
// checked on its own, as Wait checks them together) and whether min_spacing alone
// holds it. Both are empty when Wait(now, attempts) is 0.
func (b Budget) Full(now time.Time, attempts []Attempt) (rules []Rule, spacing bool) {
	for i := range b.Rules {
		one := b
		one.Rules, one.MinSpacing = b.Rules[i:i+1], 0
		if one.Wait(now, attempts) > 0 {
			rules = append(rules, b.Rules[i])
		}
	}
	if len(rules) == 0 && b.MinSpacing > 0 {
		sp := b
		sp.Rules = nil
		spacing = sp.Wait(now, attempts) > 0
	}
	return rules, spacing
}
