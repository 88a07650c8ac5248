package scheduler

import (
	"context"
	"fmt"
	"time"

	"hexcron/budget"
	"hexcron/planner"
	"hexcron/state"
)

// Store is what the daemon needs of the database (*state.DB).
type Store interface {
	Heartbeat(ctx context.Context) (time.Time, bool, error)
	SetHeartbeat(ctx context.Context, t time.Time) error
	Attempts(ctx context.Context, since time.Time) ([]state.Attempt, error)
	History(ctx context.Context, f state.Filter) ([]state.Slot, error)
	ActiveRuns(ctx context.Context) ([]state.Slot, error)
	SlotsInState(ctx context.Context, states ...state.State) ([]state.Slot, error)
	PlanSlot(ctx context.Context, s state.Slot, now time.Time) (bool, error)
	SkipSlot(ctx context.Context, s state.Slot, reason string, at time.Time) error
	Transition(ctx context.Context, key string, to state.State, u state.Update) error
	ClaimedRun(ctx context.Context, runID string) (slotKey string, ok bool, err error)
	BudgetUsed(ctx context.Context, now time.Time, windows []time.Duration) ([]int, error)
	LastSuccess(ctx context.Context) (map[string]time.Time, error)
	// PruneStore prunes what retention no longer keeps (see Prune).
	PruneStore
	// Pauses lists the pauses in force at now (`hexcron pause`); PrunePauses deletes
	// those whose until has come.
	Pauses(ctx context.Context, now time.Time) ([]state.Pause, error)
	PrunePauses(ctx context.Context, now time.Time) (int64, error)
	// Owners lists the processes registered to admit triggers (see Tenure).
	Owners(ctx context.Context) ([]state.Owner, error)
}

// handledSlots returns the keys of slots with nominal >= since in any state but
// planned: the planner must not plan them again.
func handledSlots(ctx context.Context, st PlanStore, since time.Time) (map[string]bool, error) {
	var states []state.State
	for _, s := range state.States {
		if s != state.StatePlanned {
			states = append(states, s)
		}
	}
	slots, err := st.History(ctx, state.Filter{Since: since, States: states})
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(slots))
	for _, s := range slots {
		out[s.Key] = true
	}
	return out, nil
}

// PlanStore is what planning from the database needs (*state.DB, read-only is enough).
type PlanStore interface {
	Attempts(ctx context.Context, since time.Time) ([]state.Attempt, error)
	History(ctx context.Context, f state.Filter) ([]state.Slot, error)
}

// planInput reads what every plan at now starts from: the ledger's attempts that
// admission can still count, and the slots already past planned whose windows may
// still be open (they are not planned again).
func planInput(ctx context.Context, st PlanStore, conf *planner.Config, now time.Time) ([]budget.Attempt, map[string]bool, error) {
	atts, err := st.Attempts(ctx, conf.Budget.Trigger().Since(now))
	if err != nil {
		return nil, nil, fmt.Errorf("read ledger: %w", err)
	}
	handled, err := handledSlots(ctx, st, now.Add(-maxWindow(conf)-time.Minute))
	if err != nil {
		return nil, nil, fmt.Errorf("read slots: %w", err)
	}
	return BudgetAttempts(atts), handled, nil
}

// PlanAhead plans conf from now over horizon as the daemon plans it (the same input:
// the ledger's recent attempts in every rule, slots already handled left out, windows
// still open at now planned too). `hexcron next` lists its firings.
func PlanAhead(ctx context.Context, st PlanStore, conf *planner.Config, now time.Time, horizon time.Duration) (*planner.Result, error) {
	past, handled, err := planInput(ctx, st, conf, now)
	if err != nil {
		return nil, err
	}
	var queued []planner.Firing
	if q, ok := st.(QueueStore); ok { // the gateway's queued requests take their places too
		if queued, err = QueuedFirings(ctx, q, conf, now); err != nil {
			return nil, err
		}
	}
	return planner.Plan(conf, planner.Input{
		From: now, Horizon: horizon, Past: past, OpenWindows: true, Extra: queued,
		Skip: func(slot string) bool { return handled[slot] },
	}), nil
}

// NextFirings is PlanAhead's first planned firing of each schedule, leaving out those
// skip reports (e.g. a firing a pause will skip; skip may be nil). `hexcron status`
// shows it as the next firing.
func NextFirings(ctx context.Context, st PlanStore, conf *planner.Config, now time.Time, horizon time.Duration, skip func(planner.Firing) bool) (map[string]planner.Firing, error) {
	res, err := PlanAhead(ctx, st, conf, now, horizon)
	if err != nil {
		return nil, err
	}
	out := map[string]planner.Firing{}
	for _, f := range res.Firings { // sorted by Planned
		if skip != nil && skip(f) {
			continue
		}
		if _, ok := out[f.Schedule]; !ok {
			out[f.Schedule] = f
		}
	}
	return out, nil
}
