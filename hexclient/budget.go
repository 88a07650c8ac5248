package hexclient

import (
	"slices"
	"time"

	"hexcron/budget"
)

// The trigger budget's math lives in package budget, shared with the planner so that
// the plan places each firing where this client's admission admits it. These aliases
// keep hexclient's API.
type (
	// Rule is one of Hex's caps (see budget.Rule).
	Rule = budget.Rule
	// Attempt is one RunProject attempt as the budget sees it (see budget.Attempt).
	Attempt = budget.Attempt
	// Budget is the sliding-log admission math (see budget.Budget).
	Budget = budget.Budget
)

// Never is the wait Budget.Wait returns when no instant would ever be admitted.
const Never = budget.Never

// DefaultTimeout bounds each HTTP attempt when Config.Timeout is zero. With it, the
// default Budget.MaxAttempt (Timeout+30s) is budget.DefaultMaxAttempt.
const DefaultTimeout = 30 * time.Second

// DefaultSkew is the Budget.Skew a zero Config.Budget.Skew takes (budget.DefaultSkew).
const DefaultSkew = budget.DefaultSkew

// maxAttemptMargin is how much longer than the attempt timeout an attempt may stay in
// flight before the budget counts its process as dead.
const maxAttemptMargin = 30 * time.Second

// DefaultRules are Hex's documented trigger caps: 20 per minute and 60 per hour
// (budget.DefaultRules).
func DefaultRules() []Rule { return budget.DefaultRules() }

// withUsable returns b with each rule's usable count replaced by usable[i] (by
// raising its reserve), never above the configured usable count.
func withUsable(b Budget, usable []int) Budget {
	out := b
	out.Rules = slices.Clone(b.Rules)
	for i := range out.Rules {
		if i < len(usable) && usable[i] < out.Rules[i].Effective() {
			out.Rules[i].Reserve = out.Rules[i].Limit - usable[i]
		}
	}
	return out
}
