package hexclient

import "time"

// Stats is a snapshot of a Client's state for metrics: whether triggering is paused on
// a refused token, and how full the read budget's windows are.
type Stats struct {
	// AuthPaused is true while triggering is paused because Hex refused the token
	// (401/403), until a read with the token source's current token succeeds.
	AuthPaused bool
	// ReadsUsed counts the calls (reads and triggers) occupying the all-calls rule's
	// current window; ReadsLimit is what the client allows itself in one (limit minus
	// reserve).
	ReadsUsed, ReadsLimit int
	// StatusUsed and StatusLimit are the same for the status group (GetRunStatus and
	// GetProjectRuns), for its rule with the least room left when budget.reads has
	// several.
	StatusUsed, StatusLimit int
}

// Stats returns the client's state now. It is cheap and safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	paused := c.authPaused
	c.mu.Unlock()
	all, status, statusLimit := c.reads.Used(c.clock.Now())
	return Stats{
		AuthPaused: paused,
		ReadsUsed:  all, ReadsLimit: c.cfg.ReadLimits.All.Effective(),
		StatusUsed: status, StatusLimit: statusLimit,
	}
}

// Used returns how many calls occupy the current window (the last Per before now) of
// the all-calls rule, and of the status group's fullest rule (the one with the least
// room left) together with that rule's usable limit, by the same account as admission:
// a call occupies its window from when it was sent until its response arrived plus the
// skew.
func (r *ReadBudget) Used(now time.Time) (all, status, statusLimit int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	count := func(log *[]*Attempt, b Budget, per time.Duration) int {
		from := now.Add(-per)
		n := 0
		for _, a := range r.viewLocked(now, log, b) {
			if !a.Sent.After(now) && b.End(now, a).After(from) {
				n++
			}
		}
		return n
	}
	all = count(&r.allLog, r.all, r.all.Rules[0].Per)
	for i, rule := range r.status.Rules {
		n, lim := count(&r.statusLog, r.status, rule.Per), rule.Effective()
		if i == 0 || lim-n < statusLimit-status {
			status, statusLimit = n, lim
		}
	}
	return all, status, statusLimit
}
