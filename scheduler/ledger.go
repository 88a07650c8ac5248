package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"hexcron/budget"
	"hexcron/hexclient"
	"hexcron/state"
)

// LedgerStore is what the Ledger needs of the database (*state.DB, *postgres.DB).
type LedgerStore interface {
	Admit(ctx context.Context, by state.Holder, now, since time.Time, slot string, decide func([]state.Attempt) time.Duration) (int64, time.Duration, error)
	Complete(ctx context.Context, id int64, done time.Time) error
	Void(ctx context.Context, id int64, at time.Time) error
}

// Ledger lets the Hex client's budget admit triggers against the database's ledger,
// so that every process using the same database shares one budget.
type Ledger struct {
	DB LedgerStore
	// Tenure is the registration this process admits under (the daemon's lease, a
	// `hexcron trigger`'s owner row). nil admits anonymously, without fencing (tests).
	Tenure *Tenure
}

// Admit runs the client's admission math inside the database's BEGIN IMMEDIATE
// transaction (see state.DB.Admit), on behalf of l.Tenure: it first makes sure the
// tenure still holds (a local check, renewing when the last renewal is too old), and
// the database checks it again inside the transaction. A fenced tenure gets an error
// matching state.ErrFenced. A database that cannot be reached, or a lease that lapsed
// while it was being renewed, gives an error matching hexclient.ErrLedgerUnavailable:
// the Hex client waits and asks again (nothing was sent).
func (l Ledger) Admit(ctx context.Context, now, since time.Time, slot string, decide func([]hexclient.Attempt) time.Duration) (int64, time.Duration, error) {
	var by state.Holder
	if l.Tenure != nil {
		if err := l.Tenure.Ensure(ctx, now); err != nil {
			return 0, 0, ledgerError(err)
		}
		by = l.Tenure.Holder()
	}
	id, wait, err := l.DB.Admit(ctx, by, now, since, slot, func(atts []state.Attempt) time.Duration {
		return decide(BudgetAttempts(atts))
	})
	if l.Tenure != nil && errors.Is(err, state.ErrFenced) {
		l.Tenure.fence(err)
	}
	if l.Tenure != nil && errors.Is(err, state.ErrLeaseLapsed) {
		l.Tenure.lapsed() // renew before the next admission
	}
	if err != nil {
		return 0, 0, ledgerError(err)
	}
	return id, wait, nil
}

// ledgerError marks the errors after which admission may succeed later (the database
// unreachable, the lease lapsed or not renewed in time, but not fenced) as
// hexclient.ErrLedgerUnavailable.
func ledgerError(err error) error {
	if errors.Is(err, state.ErrUnreachable) || errors.Is(err, state.ErrLeaseLapsed) || errors.Is(err, errNotRenewed) {
		return fmt.Errorf("admit: %w: %w", hexclient.ErrLedgerUnavailable, err)
	}
	return fmt.Errorf("admit: %w", err)
}

// Holds is the check made right before an admitted attempt is sent (hexclient.Holder):
// the tenure still covers now. A tenure fenced since gives its fencing error; one whose
// renewals are late gives an error matching hexclient.ErrLedgerUnavailable.
func (l Ledger) Holds(now time.Time) error {
	if l.Tenure == nil {
		return nil
	}
	if err := l.Tenure.Check(now); err != nil {
		return ledgerError(err)
	}
	return nil
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

// Void undoes an attempt whose request never left (see state.DB.Void).
func (l Ledger) Void(ctx context.Context, id int64, at time.Time) error {
	return l.DB.Void(ctx, id, at)
}

var (
	_ hexclient.Ledger = Ledger{}
	_ hexclient.Holder = Ledger{}
)
