package hexclient

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// How ambiguous attempts are resolved without giving one run to two slots, without
// giving a slot another slot's run, and without leaving a created run unclaimed, when
// several slots of one project (a matrix) are triggered by this client at once:
//
//   - RunProject requests to one project are serialised: at most one is in flight
//     (reserveProject). An admitted attempt counts as in flight until its outcome is
//     known; before it stops counting, its run is marked handed out (201) or the
//     attempt is registered as unresolved (ambiguous).
//   - While a project has an unresolved attempt (or a Reconcile of crash recovery
//     runs), no new attempt on it is admitted.
//   - A reconcile waits until the project has no attempt in flight, lists its API
//     runs completely (listing.go), and takes the earliest run that is not claimed,
//     not handed out and started after its attempt (minus the skew), marking it
//     handed out in the same critical section.
//
// So at most one attempt of a project is ever unresolved: the one run it may have
// created is the only candidate that is not handed out and not someone else's, and a
// slot never adopts the run of another slot of the project (whose inputs differ). Runs
// created by another client of the project inside the skew window are the exception:
// Hex's runs do not say which request created them.

// pending is one unresolved ambiguous attempt of this client.
type pending struct {
	project string
}

func (c *Client) addPending(project string) *pending {
	p := &pending{project: project}
	c.mu.Lock()
	c.pending = append(c.pending, p)
	c.mu.Unlock()
	return p
}

func (c *Client) forgetPending(p *pending) {
	if p == nil {
		return
	}
	c.mu.Lock()
	c.pending = slices.DeleteFunc(c.pending, func(q *pending) bool { return q == p })
	c.broadcastLocked()
	c.mu.Unlock()
}

func (c *Client) hasPendingLocked(project string) bool {
	return slices.ContainsFunc(c.pending, func(p *pending) bool { return p.project == project })
}

func (c *Client) endInflight(project string) {
	c.mu.Lock()
	c.inflight[project]--
	if c.inflight[project] <= 0 {
		delete(c.inflight, project)
		c.broadcastLocked()
	}
	c.mu.Unlock()
}

// waitNoInflight waits until no attempt of this client on project is in flight
// (at most one attempt timeout).
func (c *Client) waitNoInflight(ctx context.Context, project string) error {
	for {
		c.mu.Lock()
		n, changed := c.inflight[project], c.holdChanged
		c.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Reconcile looks for the run a RunProject attempt sent at sentAfter may have
// created: an API-triggered run of the project that started at or after sentAfter
// minus Config.AdoptSkew, that claimed does not own and that this client has not
// already handed out; with several, the earliest. It returns nil, nil when Hex has
// no such run, having read every run that could be it (see listSince); when the
// listing cannot be completed it returns an *IncompleteListingError, and the caller
// must not conclude that no run exists. No new RunProject to the project is sent while
// it runs. For crash recovery: call it for every slot left `triggering`, one slot at a
// time, oldest first, recording each adopted run before the next call.
func (c *Client) Reconcile(ctx context.Context, projectID string, sentAfter time.Time, claimed func(string) bool) (*RunStatus, error) {
	p := c.addPending(projectID)
	defer c.forgetPending(p)
	return c.reconcile(ctx, projectID, sentAfter, claimed, c.log.With(KeyProject, projectID))
}

func (c *Client) reconcile(ctx context.Context, projectID string, sentAfter time.Time, claimed func(string) bool, log *slog.Logger) (*RunStatus, error) {
	if err := c.waitNoInflight(ctx, projectID); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	cutoff := sentAfter.Add(-c.cfg.AdoptSkew)
	runs, err := c.listSince(ctx, projectID, cutoff)
	if err != nil {
		c.obs.OnReconcile("error")
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	var found []RunStatus
	for _, r := range runs {
		switch {
		case !r.StartTime.IsZero() && r.StartTime.Before(cutoff):
		case r.StartTime.IsZero() && r.Status.Terminal():
			// ended without a start time: not a run created just now
		case r.RunTrigger != "" && r.RunTrigger != "API":
		case claimed != nil && claimed(r.RunID):
		default:
			found = append(found, r)
		}
	}
	slices.SortStableFunc(found, func(a, b RunStatus) int {
		switch {
		case earlierStart(a, b):
			return -1
		case earlierStart(b, a):
			return 1
		}
		return 0
	})

	c.mu.Lock()
	var pick *RunStatus
	left := 0
	for _, r := range found {
		if _, handed := c.own[r.RunID]; handed {
			continue
		}
		if pick == nil {
			r := r
			pick = &r
			c.own[r.RunID] = c.clock.Now()
			continue
		}
		left++
	}
	c.mu.Unlock()

	if pick == nil {
		c.obs.OnReconcile("none")
		return nil, nil
	}
	if left > 0 {
		log.Warn("several unclaimed API runs started after the ambiguous attempt; adopting the earliest (the others may belong to other unresolved slots or to another client)",
			"candidates", left+1, KeyRun, pick.RunID)
	}
	c.obs.OnReconcile("adopted")
	return pick, nil
}

// earlierStart orders runs by start time, a run not yet started (zero) last.
func earlierStart(a, b RunStatus) bool {
	switch {
	case a.StartTime.IsZero():
		return false
	case b.StartTime.IsZero():
		return true
	}
	return a.StartTime.Before(b.StartTime)
}
