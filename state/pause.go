package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits of a pause's free text, so that a row stays small whatever is passed.
const (
	MaxPauseReason = 500 // bytes of Pause.Reason
	MaxPauseBy     = 64  // bytes of Pause.By
)

// ErrBadPause means SetPause was given a pause it cannot store: no schedule, an Until
// not after Since, or text over the limits.
var ErrBadPause = errors.New("invalid pause")

// Pause is one schedule paused with `hexcron pause`: the daemon records the schedule's
// firings skipped while it is in force.
type Pause struct {
	Schedule string
	Since    time.Time // when it was set
	Until    time.Time // zero: until it is cleared (`hexcron resume`)
	By       string    // who set it
	Reason   string
}

// InForce reports whether p is in force at now: set, and without an Until that has
// come.
func (p Pause) InForce(now time.Time) bool { return p.Until.IsZero() || now.Before(p.Until) }

// CheckPause returns an ErrBadPause error when p cannot be stored: no schedule or
// since, an Until not after Since, or text over the limits or not UTF-8. Every
// backend's SetPause checks with it.
func CheckPause(p Pause) error {
	switch {
	case p.Schedule == "":
		return fmt.Errorf("%w: no schedule", ErrBadPause)
	case p.Since.IsZero():
		return fmt.Errorf("%w: no since", ErrBadPause)
	case !p.Until.IsZero() && !p.Until.After(p.Since):
		return fmt.Errorf("%w: until %s is not after since %s", ErrBadPause, p.Until.UTC().Format(time.RFC3339), p.Since.UTC().Format(time.RFC3339))
	case len(p.Reason) > MaxPauseReason || !utf8.ValidString(p.Reason):
		return fmt.Errorf("%w: the reason must be valid UTF-8 of at most %d bytes", ErrBadPause, MaxPauseReason)
	case len(p.By) > MaxPauseBy || !utf8.ValidString(p.By):
		return fmt.Errorf("%w: the user name must be valid UTF-8 of at most %d bytes", ErrBadPause, MaxPauseBy)
	}
	return nil
}

// SetPause pauses p.Schedule, replacing any pause it had, and deletes the pauses whose
// Until has come by p.Since, in one transaction.
func (db *DB) SetPause(ctx context.Context, p Pause) error {
	const op = "set pause"
	if err := CheckPause(p); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	tx, err := db.begin(ctx)
	if err != nil {
		return classify(op, db.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "DELETE FROM pauses WHERE until_ms IS NOT NULL AND until_ms <= ?", p.Since.UnixMilli()); err != nil {
		return classify(op, db.path, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO pauses (schedule, since_ms, until_ms, by_user, reason) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (schedule) DO UPDATE SET since_ms = excluded.since_ms, until_ms = excluded.until_ms,
			by_user = excluded.by_user, reason = excluded.reason`,
		p.Schedule, p.Since.UnixMilli(), nullMS(p.Until), p.By, p.Reason); err != nil {
		return classify(op, db.path, err)
	}
	return classify(op, db.path, tx.Commit())
}

// ClearPause deletes the pause of schedule (`hexcron resume`). It returns that pause
// and ok true when one was in force at now; a pause whose Until had come is deleted
// too but reported as none.
func (db *DB) ClearPause(ctx context.Context, schedule string, now time.Time) (p Pause, ok bool, err error) {
	const op = "clear pause"
	tx, err := db.begin(ctx)
	if err != nil {
		return Pause{}, false, classify(op, db.path, err)
	}
	defer tx.Rollback()
	p, err = scanPause(tx.QueryRowContext(ctx, selectPause+" WHERE schedule = ?", schedule))
	if errors.Is(err, sql.ErrNoRows) {
		return Pause{}, false, nil
	}
	if err != nil {
		return Pause{}, false, classify(op, db.path, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM pauses WHERE schedule = ?", schedule); err != nil {
		return Pause{}, false, classify(op, db.path, err)
	}
	if err := tx.Commit(); err != nil {
		return Pause{}, false, classify(op, db.path, err)
	}
	if !p.InForce(now) {
		return Pause{}, false, nil
	}
	return p, true, nil
}

// Pauses returns the pauses in force at now, by schedule name. Rows whose Until has
// come are left out (PrunePauses deletes them). It only reads: status calls it on a
// read-only handle.
func (db *DB) Pauses(ctx context.Context, now time.Time) ([]Pause, error) {
	const op = "pauses"
	rows, err := db.sql.QueryContext(ctx, selectPause+" WHERE until_ms IS NULL OR until_ms > ? ORDER BY schedule", now.UnixMilli())
	if err != nil {
		return nil, classify(op, db.path, err)
	}
	defer rows.Close()
	var out []Pause
	for rows.Next() {
		p, err := scanPause(rows)
		if err != nil {
			return nil, classify(op, db.path, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(op, db.path, err)
	}
	return out, nil
}

// PrunePauses deletes the pauses whose Until has come by now and returns how many.
func (db *DB) PrunePauses(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.exec(ctx, "DELETE FROM pauses WHERE until_ms IS NOT NULL AND until_ms <= ?", now.UnixMilli())
	if err != nil {
		return 0, classify("prune pauses", db.path, err)
	}
	n, err := res.RowsAffected()
	return n, classify("prune pauses", db.path, err)
}

const selectPause = "SELECT schedule, since_ms, until_ms, by_user, reason FROM pauses"

func scanPause(r rowScanner) (Pause, error) {
	var p Pause
	var since int64
	var until sql.NullInt64
	if err := r.Scan(&p.Schedule, &since, &until, &p.By, &p.Reason); err != nil {
		return Pause{}, err
	}
	p.Since, p.Until = fromMS(since), fromNullMS(until)
	return p, nil
}
