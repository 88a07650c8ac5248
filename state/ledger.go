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
// with respect to every other process using the same database file, on behalf of by.
// It first checks that by still holds what it admits under (the leader: the lease at
// its epoch; another named owner: a live registration) and refuses with a *FencedError
// (ErrFenced) otherwise. It refuses with a *SlotTakenError (ErrSlotTaken) when slot is
// already past triggering. Otherwise it loads the attempts with Sent >= since
// (including rows other processes committed with Sent later than now: decide must
// count them) and calls decide. When decide returns a positive wait, nothing is
// recorded and Admit returns (0, wait, nil). When it returns 0, Admit records an
// in-flight attempt {Sent: now} and, when slot != "", moves the slot to triggering with
// attempts+1, last attempt time now and owner by.Owner (creating the row from the key
// if it does not exist yet); it returns the attempt's id.
func (db *DB) Admit(ctx context.Context, by Holder, now, since time.Time, slot string, decide func([]Attempt) time.Duration) (int64, time.Duration, error) {
	tx, err := db.begin(ctx) // BEGIN IMMEDIATE (_txlock=immediate)
	if err != nil {
		return 0, 0, classify("admit", db.path, err)
	}
	defer tx.Rollback()
	if err := checkHolder(ctx, tx, by, now); err != nil {
		var fe *FencedError
		if errors.As(err, &fe) {
			return 0, 0, fmt.Errorf("admit: %w", err)
		}
		return 0, 0, classify("admit", db.path, err)
	}

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
			s.Planned, s.State, s.Attempts, s.LastAttempt, s.Owner = now, StateTriggering, 1, now, by.Owner
			if err := insertSlot(ctx, tx, s, now); err != nil {
				return 0, 0, classify("admit", db.path, err)
			}
		} else {
			_, err := tx.ExecContext(ctx, `UPDATE slots SET state = 'triggering', attempts = attempts + 1,
				last_attempt_ms = ?, owner = ?, updated_ms = ? WHERE key = ?`, now.UnixMilli(), nullString(by.Owner), now.UnixMilli(), slot)
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

// Void undoes attempt id, which failed before any byte of its request was written (a
// refused connection, a request that could not be built): it never reached Hex, so it
// is not an attempt. Its ledger row is deleted and its slot's claim is undone: attempts
// goes down by one and, when no other attempt was made, the slot goes back from
// triggering to planned. Voiding an unknown id is not an error.
func (db *DB) Void(ctx context.Context, id int64, at time.Time) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return classify("void attempt", db.path, err)
	}
	defer tx.Rollback()
	var slot sql.NullString
	err = tx.QueryRowContext(ctx, "DELETE FROM ledger WHERE id = ? RETURNING slot", id).Scan(&slot)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return classify("void attempt", db.path, err)
	}
	if slot.Valid {
		_, err := tx.ExecContext(ctx, `UPDATE slots SET attempts = max(attempts - 1, 0),
			state = CASE WHEN attempts <= 1 THEN 'planned' ELSE state END,
			owner = CASE WHEN attempts <= 1 THEN NULL ELSE owner END,
			last_attempt_ms = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempt_ms END,
			updated_ms = ? WHERE key = ? AND state = 'triggering'`, at.UnixMilli(), slot.String)
		if err != nil {
			return classify("void attempt", db.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return classify("void attempt", db.path, err)
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

// SlotAttempts returns the ledger rows of slot key that are still kept, oldest first
// (the ledger keeps about a day: see docs/state.md).
func (db *DB) SlotAttempts(ctx context.Context, key string) ([]Attempt, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT id, coalesce(slot, ''), sent_ms, done_ms FROM ledger WHERE slot = ? ORDER BY sent_ms, id", key)
	if err != nil {
		return nil, classify("slot attempts", db.path, err)
	}
	as, err := scanAttempts(rows)
	if err != nil {
		return nil, classify("slot attempts", db.path, err)
	}
	return as, nil
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
	return scanAttempts(rows)
}

func scanAttempts(rows *sql.Rows) ([]Attempt, error) {
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
