package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Attempt is one RunProject attempt recorded in the ledger.
type Attempt struct {
	ID   int64     // ledger row id
	Slot string    // slot key, "" when not tied to a slot (or the slot was pruned)
	Sent time.Time // when the request was (about to be) sent
	Done time.Time // when its response arrived or it was given up; zero while in flight
}

// Admit is budget admission and slot claim in one BEGIN IMMEDIATE transaction, atomic
// with respect to every other process using the same database file. It refuses with a
// *SlotTakenError (ErrSlotTaken) when slot is already past triggering. Otherwise it loads
// the attempts with Sent >= since (including rows other processes committed with Sent
// later than now: decide must count them) and calls decide. When decide returns a
// positive wait, nothing is recorded and Admit returns (0, wait, nil). When it returns 0,
// Admit records an in-flight attempt {Sent: now} and, when slot != "", moves the slot to
// triggering with attempts+1 and last attempt time now (creating the row from the key if
// it does not exist yet); it returns the attempt's id.
func (db *DB) Admit(ctx context.Context, now, since time.Time, slot string, decide func([]Attempt) time.Duration) (int64, time.Duration, error) {
	tx, err := db.begin(ctx) // BEGIN IMMEDIATE (_txlock=immediate)
	if err != nil {
		return 0, 0, classify("admit", db.path, err)
	}
	defer tx.Rollback()

	var cur *Slot
	if slot != "" {
		s, err := scanSlot(tx.QueryRowContext(ctx, selectSlot+" WHERE key = ?", slot))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return 0, 0, classify("admit", db.path, err)
		default:
			cur = &s
			if s.State != StatePlanned && s.State != StateTriggering {
				return 0, 0, fmt.Errorf("admit: %w", &SlotTakenError{Slot: slot, State: s.State, RunID: s.RunID})
			}
		}
	}

	attempts, err := attemptsSince(ctx, tx, since)
	if err != nil {
		return 0, 0, classify("admit", db.path, err)
	}
	if wait := decide(attempts); wait > 0 {
		return 0, wait, nil
	}

	if slot != "" {
		if cur == nil {
			s, err := ParseSlotKey(slot)
			if err != nil {
				return 0, 0, fmt.Errorf("admit: %w", err)
			}
			s.Planned, s.State, s.Attempts, s.LastAttempt = now, StateTriggering, 1, now
			if err := insertSlot(ctx, tx, s, now); err != nil {
				return 0, 0, classify("admit", db.path, err)
			}
		} else {
			_, err := tx.ExecContext(ctx, `UPDATE slots SET state = 'triggering', attempts = attempts + 1,
				last_attempt_ms = ?, updated_ms = ? WHERE key = ?`, now.UnixMilli(), now.UnixMilli(), slot)
			if err != nil {
				return 0, 0, classify("admit", db.path, err)
			}
		}
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO ledger (slot, sent_ms) VALUES (?, ?)", nullString(slot), now.UnixMilli())
	if err != nil {
		return 0, 0, classify("admit", db.path, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, 0, classify("admit", db.path, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, classify("admit", db.path, err)
	}
	return id, 0, nil
}

// Complete records when attempt id's response arrived (or when it was given up). A
// second Complete of the same attempt keeps the first time.
func (db *DB) Complete(ctx context.Context, id int64, done time.Time) error {
	res, err := db.exec(ctx, "UPDATE ledger SET done_ms = coalesce(done_ms, ?) WHERE id = ?", done.UnixMilli(), id)
	if err != nil {
		return classify("complete attempt", db.path, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("complete attempt %d: %w", id, ErrNotFound)
	}
	return nil
}

// Attempts returns the ledger rows with Sent >= since, oldest first.
func (db *DB) Attempts(ctx context.Context, since time.Time) ([]Attempt, error) {
	as, err := attemptsSince(ctx, db.sql, since)
	if err != nil {
		return nil, classify("list attempts", db.path, err)
	}
	return as, nil
}

// PruneLedger deletes the ledger rows sent before the given instant (pass the oldest
// `since` any budget rule can still ask for) and returns how many it deleted.
func (db *DB) PruneLedger(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.exec(ctx, "DELETE FROM ledger WHERE sent_ms < ?", before.UnixMilli())
	if err != nil {
		return 0, classify("prune ledger", db.path, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// BudgetUsed returns, for each window length w, how many ledger attempts occupy the
// window (now-w, now]: those sent in it, those sent earlier whose response arrived in
// it, and those sent in it and still in flight. It is what `status` shows next to each
// rule; admission itself uses the hexclient's exact math through Admit.
func (db *DB) BudgetUsed(ctx context.Context, now time.Time, windows []time.Duration) ([]int, error) {
	out := make([]int, len(windows))
	for i, w := range windows {
		start := now.Add(-w).UnixMilli()
		err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM ledger WHERE sent_ms <= ?
			AND (sent_ms > ? OR done_ms > ?)`, now.UnixMilli(), start, start).Scan(&out[i])
		if err != nil {
			return nil, classify("budget used", db.path, err)
		}
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func attemptsSince(ctx context.Context, q querier, since time.Time) ([]Attempt, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, coalesce(slot, ''), sent_ms, done_ms FROM ledger WHERE sent_ms >= ? ORDER BY sent_ms, id", since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []Attempt
	for rows.Next() {
		var a Attempt
		var sent int64
		var done sql.NullInt64
		if err := rows.Scan(&a.ID, &a.Slot, &sent, &done); err != nil {
			return nil, err
		}
		a.Sent, a.Done = fromMS(sent), fromNullMS(done)
		as = append(as, a)
	}
	return as, rows.Err()
}

func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMS(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMS(n.Int64)
}

// nullMS stores a zero time as NULL.
func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// nullDuration stores a zero duration as NULL, others in milliseconds.
func nullDuration(d time.Duration) any {
	if d == 0 {
		return nil
	}
	return d.Milliseconds()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
