package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hexcron/state"
)

// Pauses (`hexcron pause`) hold instants of the server's clock, like the lease: the
// caller's Since, Until and now are translated into the server's frame on the way in
// and back into the caller's on the way out (see clock.go), so a pause set on one
// machine ends at the same instant for a daemon on another.

// SetPause pauses p.Schedule, replacing any pause it had, and deletes the pauses whose
// Until has come, in one transaction (see state.DB.SetPause).
func (db *DB) SetPause(ctx context.Context, p state.Pause) error {
	const op = "set pause"
	if err := state.CheckPause(p); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return db.tx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, p.Since)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM pauses WHERE until_ms IS NOT NULL AND until_ms <= $1", f.now); err != nil {
			return d(err)
		}
		var until *int64
		if !p.Until.IsZero() {
			u := f.toServer(p.Until)
			until = &u
		}
		_, err = tx.Exec(ctx, `INSERT INTO pauses (schedule, since_ms, until_ms, by_user, reason) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (schedule) DO UPDATE SET since_ms = excluded.since_ms, until_ms = excluded.until_ms,
				by_user = excluded.by_user, reason = excluded.reason`,
			p.Schedule, f.toServer(p.Since), until, p.By, p.Reason)
		return d(err)
	})
}

// ClearPause deletes the pause of schedule (`hexcron resume`). It returns that pause
// and ok true when one was in force at now (on the server's clock); a pause whose
// Until had come is deleted too but reported as none.
func (db *DB) ClearPause(ctx context.Context, schedule string, now time.Time) (p state.Pause, ok bool, err error) {
	err = db.tx(ctx, "clear pause", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		var until *int64
		p, until, err = scanPause(tx.QueryRow(ctx, "DELETE FROM pauses WHERE schedule = $1 RETURNING "+pauseColumns, schedule), f)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			p, ok = state.Pause{}, false
			return nil
		case err != nil:
			return d(err)
		}
		ok = until == nil || *until > f.now
		if !ok {
			p = state.Pause{}
		}
		return nil
	})
	if err != nil {
		return state.Pause{}, false, err
	}
	return p, ok, nil
}

// Pauses returns the pauses in force at now (on the server's clock), by schedule name
// in byte order. Rows whose Until has come are left out (PrunePauses deletes them). It
// only reads.
func (db *DB) Pauses(ctx context.Context, now time.Time) ([]state.Pause, error) {
	var out []state.Pause
	err := db.read(ctx, "pauses", func(ctx context.Context, q querier) error {
		f, err := db.serverNow(ctx, q, now)
		if err != nil {
			return err
		}
		rows, err := q.Query(ctx, "SELECT "+pauseColumns+` FROM pauses
			WHERE until_ms IS NULL OR until_ms > $1 ORDER BY schedule COLLATE "C"`, f.now)
		if err != nil {
			return d(err)
		}
		defer rows.Close()
		for rows.Next() {
			p, _, err := scanPause(rows, f)
			if err != nil {
				return d(err)
			}
			out = append(out, p)
		}
		return d(rows.Err())
	})
	return out, err
}

// PrunePauses deletes the pauses whose Until has come by now (on the server's clock)
// and returns how many.
func (db *DB) PrunePauses(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, "prune pauses", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM pauses WHERE until_ms IS NOT NULL AND until_ms <= $1", f.now)
		n = tag.RowsAffected()
		return d(err)
	})
	return n, err
}

const pauseColumns = "schedule, since_ms, until_ms, by_user, reason"

// scanPause reads one pause row, its times in f's caller frame, and the stored
// until_ms (server clock; nil: none).
func scanPause(r pgx.Row, f frame) (state.Pause, *int64, error) {
	var p state.Pause
	var since int64
	var until *int64
	if err := r.Scan(&p.Schedule, &since, &until, &p.By, &p.Reason); err != nil {
		return state.Pause{}, nil, err
	}
	p.Since, p.Until = f.fromServer(since), f.fromServerNull(until)
	return p, until, nil
}
