package scheduler

import (
	"context"
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
	PruneHistory(ctx context.Context, before time.Time) (int64, error)
	PruneLedger(ctx context.Context, before time.Time) (int64, error)
	// Pauses lists the pauses in force at now (`hexcron pause`); PrunePauses deletes
	// those whose until has come.
	Pauses(ctx context.Context, now time.Time) ([]state.Pause, error)
	PrunePauses(ctx context.Context, now time.Time) (int64, error)
	// Owners lists the processes registered to admit triggers (see Tenure).
	Owners(ctx context.Context) ([]state.Owner, error)
}

// recentAttempts returns the ledger's attempts that admission at now (or later) can
// still count (this and other processes', in flight or answered, with their Sent and
// Done times): every plan counts them as admission does.
func recentAttempts(ctx context.Context, st Store, conf *planner.Config, now time.Time) ([]budget.Attempt, error) {
	atts, err := st.Attempts(ctx, conf.Budget.Trigger().Since(now))
	if err != nil {
		return nil, err
	}
	return BudgetAttempts(atts), nil
}

// handledSlots returns the keys of slots with nominal >= since in any state but
// planned: the planner must not plan them again.
func handledSlots(ctx context.Context, st Store, since time.Time) (map[string]bool, error) {
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
