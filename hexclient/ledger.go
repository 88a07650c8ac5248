package hexclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Ledger records attempts so that every process sharing one Hex user shares one budget.
type Ledger interface {
	// Admit, atomically with respect to every other user of the same ledger: loads the
	// attempts with Sent >= since, calls decide(attempts, now); if decide returns 0 it records a new
	// in-flight attempt {Sent: now} for slot (slot may be "") and returns its id and 0.
	// Otherwise it records nothing and returns 0 and decide's wait.
	Admit(ctx context.Context, now, since time.Time, slot string, decide func([]Attempt) time.Duration) (id int64, wait time.Duration, err error)
	// Complete records when attempt id's response arrived (or when it was given up).
	Complete(ctx context.Context, id int64, done time.Time) error
	// Void undoes attempt id, whose request failed before any byte of it was written:
	// it never reached Hex, so it does not count against the budget, and its slot's
	// claim is undone (see state.DB.Void).
	Void(ctx context.Context, id int64, at time.Time) error
}

// ErrLedgerUnavailable marks a Ledger error after which admission may succeed later
// without anything having been sent: the ledger's database is unreachable, or this
// process's right to admit (a lease) is being renewed. Trigger waits with backoff and
// asks again, until the request's deadline.
var ErrLedgerUnavailable = errors.New("ledger unavailable")

// Holder is implemented by a Ledger that admits on behalf of a right that can lapse
// (the daemon's lease). Trigger calls Holds right before sending an admitted attempt;
// when it is not nil the attempt is voided (never sent), and Trigger waits and asks
// again when the error matches ErrLedgerUnavailable, else it ends with that error.
type Holder interface {
	Holds(now time.Time) error
}

// MemLedger is an in-memory Ledger, safe for concurrent use. It is shared by the
// goroutines of one process only; the state package provides the SQLite ledger that
// processes share.
type MemLedger struct {
	mu       sync.Mutex
	next     int64
	attempts map[int64]*memAttempt
}

type memAttempt struct {
	Attempt
	slot string
}

// NewMemLedger returns an empty in-memory ledger.
func NewMemLedger() *MemLedger { return &MemLedger{attempts: map[int64]*memAttempt{}} }

// Admit implements Ledger. It also forgets attempts older than since.
func (l *MemLedger) Admit(ctx context.Context, now, since time.Time, slot string, decide func([]Attempt) time.Duration) (int64, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("admit: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var view []Attempt
	for id, a := range l.attempts {
		if a.Sent.Before(since) {
			delete(l.attempts, id)
			continue
		}
		view = append(view, a.Attempt)
	}
	if w := decide(view); w > 0 {
		return 0, w, nil
	}
	l.next++
	l.attempts[l.next] = &memAttempt{Attempt: Attempt{Sent: now}, slot: slot}
	return l.next, 0, nil
}

// Complete implements Ledger. Completing an unknown (already forgotten) id is not an error.
func (l *MemLedger) Complete(ctx context.Context, id int64, done time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.attempts[id]; ok {
		a.Done = done
	}
	return nil
}

// Void implements Ledger: the attempt is forgotten.
func (l *MemLedger) Void(ctx context.Context, id int64, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.attempts, id)
	return nil
}

// Attempts returns a copy of the attempts recorded (for tests and `status`), oldest first.
func (l *MemLedger) Attempts() []Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Attempt, 0, len(l.attempts))
	for id := int64(1); id <= l.next; id++ {
		if a, ok := l.attempts[id]; ok {
			out = append(out, a.Attempt)
		}
	}
	return out
}
