package hexsim

import "time"

// counter counts one rule for one user under one window model.
type counter struct {
	rule  Rule
	model WindowModel
	start time.Time   // fixed, anchored: start of the current window
	count int         // fixed, anchored: requests admitted in it
	log   []time.Time // rolling: admitted requests of the last rule.Per
}

// used returns how many admitted requests count against the rule at now, and the
// instant that count first drops (zero when nothing counts).
func (c *counter) used(now time.Time) (n int, reset time.Time) {
	per := c.rule.Per
	switch c.model {
	case WindowFixed:
		ws := now.Truncate(per)
		if c.start.Equal(ws) {
			return c.count, ws.Add(per)
		}
		return 0, time.Time{}
	case WindowAnchored:
		if !c.start.IsZero() && now.Before(c.start.Add(per)) {
			return c.count, c.start.Add(per)
		}
		return 0, time.Time{}
	default: // rolling
		cut := now.Add(-per)
		i := 0
		for i < len(c.log) && !c.log[i].After(cut) {
			i++
		}
		c.log = c.log[i:]
		if len(c.log) == 0 {
			return 0, time.Time{}
		}
		return len(c.log), c.log[0].Add(per)
	}
}

// check reports whether one more request fits at now, and if not how long until it
// would.
func (c *counter) check(now time.Time) (ok bool, wait time.Duration) {
	if c.rule.Limit < 0 {
		return true, 0
	}
	n, reset := c.used(now)
	if n < c.rule.Limit {
		return true, 0
	}
	switch {
	case c.rule.Limit == 0:
		return false, c.rule.Per
	case c.model == WindowRolling:
		return false, c.log[n-c.rule.Limit].Add(c.rule.Per).Sub(now)
	default:
		return false, reset.Sub(now)
	}
}

// record counts one admitted request at now.
func (c *counter) record(now time.Time) {
	if c.rule.Limit < 0 {
		return
	}
	switch c.model {
	case WindowFixed:
		ws := now.Truncate(c.rule.Per)
		if !c.start.Equal(ws) {
			c.start, c.count = ws, 0
		}
		c.count++
	case WindowAnchored:
		if c.start.IsZero() || !now.Before(c.start.Add(c.rule.Per)) {
			c.start, c.count = now, 0
		}
		c.count++
	default:
		c.log = append(c.log, now)
	}
}

// rateInfo is what the rate-limit headers report.
type rateInfo struct {
	limit, remaining int
	reset            time.Time // zero: nothing counts yet
	retryAfter       time.Duration
}

// userLimits holds one Hex user's counters.
type userLimits struct {
	trigger, all, status []*counter
}

func newUserLimits(l Limits) *userLimits {
	mk := func(rules []Rule, model WindowModel) []*counter {
		cs := make([]*counter, 0, len(rules))
		for _, r := range rules {
			cs = append(cs, &counter{rule: r, model: model})
		}
		return cs
	}
	return &userLimits{trigger: mk(l.Trigger, l.Window), all: mk(l.AllCalls, l.AllCallsWindow), status: mk(l.Status, l.Window)}
}

// admit counts a request of op at now if every applicable rule has room. A rejected
// request is counted nowhere. The rateInfo describes the tightest rule after counting,
// or, when rejected, the rule that keeps the request out longest.
func (u *userLimits) admit(op op, now time.Time) (bool, rateInfo) {
	rules := append([]*counter(nil), u.all...)
	if op.statusGroup() {
		rules = append(rules, u.status...)
	}
	if op == opRunProject {
		rules = append(rules, u.trigger...)
	}
	var worst *counter
	var worstWait time.Duration
	for _, c := range rules {
		if ok, wait := c.check(now); !ok && (worst == nil || wait > worstWait) {
			worst, worstWait = c, wait
		}
	}
	if worst != nil {
		return false, rateInfo{limit: worst.rule.Limit, remaining: 0, reset: now.Add(worstWait), retryAfter: worstWait}
	}
	info := rateInfo{remaining: -1}
	for _, c := range rules {
		c.record(now)
		if c.rule.Limit < 0 {
			continue
		}
		n, reset := c.used(now)
		if rem := c.rule.Limit - n; info.remaining < 0 || rem < info.remaining {
			info = rateInfo{limit: c.rule.Limit, remaining: rem, reset: reset}
		}
	}
	return true, info
}
