package hexclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"hexcron/clock"
)

// Group is the rate-limit group of a call.
type Group int

// The read groups: every call counts in the user's all-calls limit; GetRunStatus and
// GetProjectRuns also count in the status group.
const (
	GroupOther Group = iota
	GroupStatus
)

// ReadLimits are the caps on non-trigger calls of one Hex user.
type ReadLimits struct {
	All    Rule   // every call of the user, triggers included (Hex: 60 per minute)
	Status []Rule // GetRunStatus and GetProjectRuns, every rule applies (about 30 per minute)
}

// DefaultReadLimits are Hex's documented read caps: 60/min for all calls, 30/min for
// the status group.
func DefaultReadLimits() ReadLimits {
	return ReadLimits{All: Rule{Limit: 60, Per: time.Minute}, Status: []Rule{{Limit: 30, Per: time.Minute}}}
}

// ReadBudget is an in-memory sliding log for status and list calls (the same math as
// Budget). Every read waits in Acquire until both its groups have room. Triggers are
// counted into the all-calls log too. It is safe for concurrent use.
type ReadBudget struct {
	clock  clock.Clock
	all    Budget
	status Budget

	mu        sync.Mutex
	allLog    []*Attempt
	statusLog []*Attempt
	holdUntil time.Time
}

// NewReadBudget returns a ReadBudget on clk. skew and maxAttempt have Budget's meaning.
func NewReadBudget(clk clock.Clock, limits ReadLimits, skew, maxAttempt time.Duration) *ReadBudget {
	mk := func(r ...Rule) Budget { return Budget{Rules: r, Skew: skew, MaxAttempt: maxAttempt} }
	return &ReadBudget{clock: clk, all: mk(limits.All), status: mk(limits.Status...)}
}

// Hold makes every call wait until t (after a 429 on a read).
func (r *ReadBudget) Hold(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.After(r.holdUntil) {
		r.holdUntil = t
	}
}

// Acquire waits until a call of group g may be sent, records it, and returns the
// function to call with the response's arrival time. It returns ctx's error if ctx
// ends first.
func (r *ReadBudget) Acquire(ctx context.Context, g Group) (done func(time.Time), err error) {
	for {
		now := r.clock.Now()
		r.mu.Lock()
		w := r.waitLocked(now)
		if g == GroupStatus {
			w = max(w, r.status.Wait(now, r.viewLocked(now, &r.statusLog, r.status)))
		}
		if w <= 0 {
			a := r.recordLocked(now, g)
			r.mu.Unlock()
			return a, nil
		}
		r.mu.Unlock()
		if err := clock.Sleep(ctx, r.clock, w); err != nil {
			return nil, fmt.Errorf("read budget: %w", err)
		}
	}
}

// waitLocked is the all-calls wait at now, hold included.
func (r *ReadBudget) waitLocked(now time.Time) time.Duration {
	w := r.all.Wait(now, r.viewLocked(now, &r.allLog, r.all))
	if r.holdUntil.After(now) {
		w = max(w, r.holdUntil.Sub(now))
	}
	return w
}

// reserveAll runs admit under the budget's lock with the all-calls wait at now; when
// admit reports true the call is recorded and its completion function returned.
func (r *ReadBudget) reserveAll(now time.Time, admit func(allWait time.Duration) (bool, error)) (func(time.Time), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok, err := admit(r.waitLocked(now))
	if err != nil || !ok {
		return nil, err
	}
	return r.recordLocked(now, GroupOther), nil
}

func (r *ReadBudget) recordLocked(now time.Time, g Group) func(time.Time) {
	a := &Attempt{Sent: now}
	r.allLog = append(r.allLog, a)
	if g == GroupStatus {
		r.statusLog = append(r.statusLog, a)
	}
	return func(done time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if a.Done.IsZero() {
			a.Done = done
		}
	}
}

// viewLocked prunes log to what b can still count at now and returns a copy.
func (r *ReadBudget) viewLocked(now time.Time, log *[]*Attempt, b Budget) []Attempt {
	since := b.Since(now)
	kept := (*log)[:0]
	view := make([]Attempt, 0, len(*log))
	for _, a := range *log {
		if a.Sent.Before(since) {
			continue
		}
		kept = append(kept, a)
		view = append(view, *a)
	}
	clear((*log)[len(kept):])
	*log = kept
	return view
}
