package scheduler

import (
	"context"
	"time"

	"hexcron/budget"
	"hexcron/hexclient"
	"hexcron/state"
)

// Ledger lets the Hex client's budget admit triggers against the SQLite ledger, so
// that every process on the machine using the same database shares one budget.
type Ledger struct{ DB *state.DB }

// Admit runs the client's admission math inside the database's BEGIN IMMEDIATE
// transaction (see state.DB.Admit).
func (l Ledger) Admit(ctx context.Context, now, since time.Time, slot string, decide func([]hexclient.Attempt) time.Duration) (int64, time.Duration, error) {
	return l.DB.Admit(ctx, now, since, slot, func(atts []state.Attempt) time.Duration {
		return decide(BudgetAttempts(atts))
	})
}

// BudgetAttempts are the ledger's rows as the budget math (admission and the plan)
// sees them: when each was sent and when its answer arrived.
func BudgetAttempts(atts []state.Attempt) []budget.Attempt {
	out := make([]budget.Attempt, len(atts))
	for i, a := range atts {
		out[i] = budget.Attempt{Sent: a.Sent, Done: a.Done}
	}
	return out
}

// Complete records when an attempt's response arrived.
func (l Ledger) Complete(ctx context.Context, id int64, done time.Time) error {
	return l.DB.Complete(ctx, id, done)
}

var _ hexclient.Ledger = Ledger{}
