package hexclient

import (
	"math"
	"slices"
	"time"
)

// Never is the wait Budget.Wait returns when no instant would ever be admitted (a rule
// whose reserve leaves no room).
const Never = time.Duration(math.MaxInt64)

// Rule is one of Hex's trigger caps: at most Limit requests in any window of length
// Per, of which Reserve are left for other clients of the same Hex user.
type Rule struct {
	Limit   int
	Per     time.Duration
	Reserve int
}

// usable is how many attempts this client may put in one window.
func (r Rule) usable() int { return r.Limit - r.Reserve }

// Attempt is one RunProject attempt as the budget sees it.
type Attempt struct {
	Sent time.Time // when the request was sent (recorded just before sending)
	Done time.Time // when its response arrived; zero while in flight (or the process died)
}

// Budget is the sliding-log admission math. It is pure: time is an argument.
//
// An attempt occupies [Sent, Done+Skew] (the server may count it at any instant in
// between). An attempt still in flight occupies [Sent, now+Skew], unless now is past
// Sent+MaxAttempt (it cannot still be in flight: its process died), then it occupies
// [Sent, Sent+MaxAttempt+Skew]. A new attempt is admitted at t when, for every rule,
// no window of length Per would hold more than Limit-Reserve attempts, and t is at
// least MinSpacing after the latest Sent.
type Budget struct {
	Rules      []Rule
	MinSpacing time.Duration
	Skew       time.Duration
	MaxAttempt time.Duration
}

// DefaultRules are Hex's documented trigger caps: 20 per minute and 60 per hour.
func DefaultRules() []Rule {
	return []Rule{{Limit: 20, Per: time.Minute}, {Limit: 60, Per: time.Hour}}
}

// Since is the earliest Sent that can matter at now: pass it to Ledger.Admit.
func (b Budget) Since(now time.Time) time.Time {
	var maxPer time.Duration
	for _, r := range b.Rules {
		maxPer = max(maxPer, r.Per)
	}
	return now.Add(-(maxPer + b.MaxAttempt + b.Skew))
}

// end is the instant until which a occupies its windows, as known at now.
func (b Budget) end(now time.Time, a Attempt) time.Time {
	if !a.Done.IsZero() {
		return a.Done.Add(b.Skew)
	}
	if now.After(a.Sent.Add(b.MaxAttempt)) {
		return a.Sent.Add(b.MaxAttempt + b.Skew)
	}
	return now.Add(b.Skew)
}

// Wait returns 0 when a new attempt may be sent at now, else how long until the
// earliest instant that would be admitted if nothing else changed (in-flight attempts
// are assumed to complete now, so a caller re-checks after waiting: the answer is never
// too late, and admission itself is always checked at the real instant).
//
// Why this is exact: every existing attempt was sent at or before now, so a window
// holding the new attempt (sent at t) holds an existing attempt i exactly when
// end(i) > t-Per, and one window can hold all of those at once. The new attempt fits
// when at most Limit-Reserve-1 ends lie after t-Per, that is when t >= e+Per, e being
// the (Limit-Reserve)-th latest end.
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
		n := r.usable()
		if n <= 0 {
			return Never
		}
		if len(attempts) < n {
			continue
		}
		if ends == nil {
			ends = make([]time.Time, len(attempts))
			for i, a := range attempts {
				ends[i] = b.end(now, a)
			}
			slices.SortFunc(ends, func(x, y time.Time) int { return y.Compare(x) }) // latest first
		}
		if t := ends[n-1].Add(r.Per); t.After(earliest) {
			earliest = t
		}
	}
	return earliest.Sub(now)
}

// withUsable returns b with each rule's usable count replaced by usable[i] (by
// raising its reserve), never above the configured usable count.
func (b Budget) withUsable(usable []int) Budget {
	out := b
	out.Rules = slices.Clone(b.Rules)
	for i := range out.Rules {
		if i < len(usable) && usable[i] < out.Rules[i].usable() {
			out.Rules[i].Reserve = out.Rules[i].Limit - usable[i]
		}
	}
	return out
}
