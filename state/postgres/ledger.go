package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hexcron/state"
)

// Admit is budget admission and slot claim in one transaction, serialised with every
// other admission and lease takeover on this database by an advisory transaction lock
// (pg_advisory_xact_lock on the budget's key), on the server's clock: it reads the
// server's instant T, checks by (the leader: the lease at its epoch, not expired at T;
// another owner: a registration live at T) and refuses with a *state.FencedError
// (ErrFenced) or, when only the expiry failed, a *state.LapsedError (ErrLeaseLapsed);
// refuses a slot past triggering with a *state.SlotTakenError; loads the attempts sent
// at or after since and calls decide with them in the caller's clock (shifted by the
// offset now-T: decide's arithmetic only uses differences, so it decides exactly as
// it would at T on the server's clock). On a zero wait it records the attempt
// {Sent: T} and claims the slot as state.DB.Admit does.
func (db *DB) Admit(ctx context.Context, by state.Holder, now, since time.Time, slot string, decide func([]state.Attempt) time.Duration) (int64, time.Duration, error) {
	var id int64
	var wait time.Duration
	err := db.tx(ctx, "admit", func(ctx context.Context, tx pgx.Tx) error {
		id, wait = 0, 0
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", db.budgetKey); err != nil {
			return d(err)
		}
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		if err := checkHolder(ctx, tx, by, f.now); err != nil {
			return err
		}
		var cur *state.Slot
		if slot != "" {
			s, err := scanSlot(tx.QueryRow(ctx, selectSlot+" WHERE key = $1 FOR UPDATE", slot))
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return d(err)
			default:
				cur = &s
				if s.State != state.StatePlanned && s.State != state.StateTriggering {
					return fmt.Errorf("admit: %w", &state.SlotTakenError{Slot: slot, State: s.State, RunID: s.RunID})
				}
			}
		}
		attempts, err := attemptsSince(ctx, tx, f, since)
		if err != nil {
			return err
		}
		if wait = decide(attempts); wait > 0 {
			return nil
		}
		if slot != "" {
			if cur == nil {
				s, err := state.ParseSlotKey(slot)
				if err != nil {
					return fmt.Errorf("admit: %w", err)
				}
				s.Planned, s.State, s.Attempts, s.LastAttempt, s.Owner = now, state.StateTriggering, 1, now, by.Owner
				tag, err := insertSlot(ctx, tx, s, now, true)
				if err != nil {
					return d(err)
				}
				if tag == 0 {
					return errRetry // another transaction created the row since: read it
				}
			} else {
				_, err := tx.Exec(ctx, `UPDATE slots SET state = 'triggering', attempts = attempts + 1,
					last_attempt_ms = $1, owner = $2, updated_ms = $1 WHERE key = $3`, now.UnixMilli(), nullString(by.Owner), slot)
				if err != nil {
					return d(err)
				}
			}
		}
		return d(tx.QueryRow(ctx, "INSERT INTO ledger (slot, sent_ms) VALUES ($1, $2) RETURNING id", nullString(slot), f.now).Scan(&id))
	})
	if err != nil {
		return 0, 0, err
	}
	return id, wait, nil
}

// checkHolder is Admit's fence at the server's instant now (ms).
func checkHolder(ctx context.Context, tx pgx.Tx, by state.Holder, now int64) error {
	switch {
	case by.Epoch != 0:
		cur, err := readLease(ctx, tx, frame{}, false)
		if err != nil {
			return err
		}
		if err := state.LeaseFence(cur, by); err != nil {
			return fmt.Errorf("admit: %w", err)
		}
		if cur.Expires.UnixMilli() <= now {
			return fmt.Errorf("admit: %w", &state.LapsedError{Owner: by.Owner, Epoch: by.Epoch, Expired: cur.Expires})
		}
	case by.Owner != "":
		var expires int64
		err := tx.QueryRow(ctx, "SELECT expires_ms FROM owners WHERE id = $1", by.Owner).Scan(&expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("admit: %w", &state.FencedError{Owner: by.Owner, Why: "its registration was removed"})
		}
		if err != nil {
			return d(err)
		}
		if expires <= now {
			return fmt.Errorf("admit: %w", &state.FencedError{Owner: by.Owner, Why: "its registration expired at " + fromMS(expires).Format(time.RFC3339Nano) + " (server clock)"})
		}
	}
	return nil
}

// Complete records when attempt id's response arrived (done, in the caller's clock,
// stored on the server's and never later than the server's now nor earlier than the
// attempt's sending). A second Complete keeps the first time.
func (db *DB) Complete(ctx context.Context, id int64, done time.Time) error {
	var n int64
	err := db.tx(ctx, "complete attempt", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.readFrame(ctx, tx)
		if err != nil {
			return err
		}
		at := f.toServer(done)
		if !db.opts.ClientClock {
			at = min(at, f.now)
		}
		tag, err := tx.Exec(ctx, "UPDATE ledger SET done_ms = coalesce(done_ms, greatest($1::bigint, sent_ms)) WHERE id = $2", at, id)
		n = tag.RowsAffected()
		return d(err)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("complete attempt %d: %w", id, state.ErrNotFound)
	}
	return nil
}

// Void undoes attempt id, which never reached Hex (see state.DB.Void).
func (db *DB) Void(ctx context.Context, id int64, at time.Time) error {
	return db.tx(ctx, "void attempt", func(ctx context.Context, tx pgx.Tx) error {
		var slot *string
		err := tx.QueryRow(ctx, "DELETE FROM ledger WHERE id = $1 RETURNING slot", id).Scan(&slot)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return d(err)
		}
		if slot != nil {
			_, err := tx.Exec(ctx, `UPDATE slots SET attempts = greatest(attempts - 1, 0),
				state = CASE WHEN attempts <= 1 THEN 'planned' ELSE state END,
				owner = CASE WHEN attempts <= 1 THEN NULL ELSE owner END,
				last_attempt_ms = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempt_ms END,
				updated_ms = $1 WHERE key = $2 AND state = 'triggering'`, at.UnixMilli(), *slot)
			return d(err)
		}
		return nil
	})
}

// Attempts returns the ledger rows with Sent >= since, oldest first, in this process's
// clock.
func (db *DB) Attempts(ctx context.Context, since time.Time) ([]state.Attempt, error) {
	var out []state.Attempt
	err := db.read(ctx, "list attempts", func(ctx context.Context, q querier) error {
		f, err := db.readFrame(ctx, q)
		if err != nil {
			return err
		}
		out, err = attemptsSince(ctx, q, f, since)
		return err
	})
	return out, err
}

// SlotAttempts returns the ledger rows of slot key that are still kept, oldest first,
// in this process's clock.
func (db *DB) SlotAttempts(ctx context.Context, key string) ([]state.Attempt, error) {
	var out []state.Attempt
	err := db.read(ctx, "slot attempts", func(ctx context.Context, q querier) error {
		f, err := db.readFrame(ctx, q)
		if err != nil {
			return err
		}
		rows, err := q.Query(ctx, "SELECT id, coalesce(slot, ''), sent_ms, done_ms FROM ledger WHERE slot = $1 ORDER BY sent_ms, id", key)
		if err != nil {
			return d(err)
		}
		out, err = scanAttempts(rows, f)
		return err
	})
	return out, err
}

func attemptsSince(ctx context.Context, q querier, f frame, since time.Time) ([]state.Attempt, error) {
	from := f.toServer(since)
	if since.IsZero() {
		from = since.UnixMilli()
	}
	rows, err := q.Query(ctx, "SELECT id, coalesce(slot, ''), sent_ms, done_ms FROM ledger WHERE sent_ms >= $1 ORDER BY sent_ms, id", from)
	if err != nil {
		return nil, d(err)
	}
	return scanAttempts(rows, f)
}

func scanAttempts(rows pgx.Rows, f frame) ([]state.Attempt, error) {
	var as []state.Attempt
	for rows.Next() {
		var a state.Attempt
		var sent int64
		var done *int64
		if err := rows.Scan(&a.ID, &a.Slot, &sent, &done); err != nil {
			rows.Close()
			return nil, d(err)
		}
		a.Sent, a.Done = f.fromServer(sent), f.fromServerNull(done)
		as = append(as, a)
	}
	return as, d(rows.Err())
}

// BudgetUsed returns, for each window length w, how many attempts occupy the window
// (now-w, now], now being the server's instant (see state.DB.BudgetUsed).
func (db *DB) BudgetUsed(ctx context.Context, now time.Time, windows []time.Duration) ([]int, error) {
	out := make([]int, len(windows))
	err := db.read(ctx, "budget used", func(ctx context.Context, q querier) error {
		f, err := db.serverNow(ctx, q, now)
		if err != nil {
			return err
		}
		for i, w := range windows {
			start := f.now - w.Milliseconds()
			if err := q.QueryRow(ctx, `SELECT count(*) FROM ledger WHERE sent_ms <= $1
				AND (sent_ms > $2 OR done_ms > $2)`, f.now, start).Scan(&out[i]); err != nil {
				return d(err)
			}
		}
		return nil
	})
	return out, err
}

// read runs fn on the pool within the operation timeout, classifying driver errors.
func (db *DB) read(ctx context.Context, op string, fn func(ctx context.Context, q querier) error) error {
	octx, cancel := db.op(ctx)
	defer cancel()
	err := fn(octx, db.pool)
	var dbErr *driverError
	if errors.As(err, &dbErr) {
		return db.classify(ctx, op, dbErr.err)
	}
	return err
}
