package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"hexcron/state"
)

// Pruning, as on SQLite: each call deletes at most limit rows in one short
// transaction. PostgreSQL's autovacuum returns the space; Compact has nothing to do.

// PruneHistory deletes at most limit slots in a terminal state whose planned instant
// and last change are both before the given instant, keeping a schedule's latest
// completed slot while the schedule has a row changed since (see state.DB.PruneHistory).
func (db *DB) PruneHistory(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := db.tx(ctx, "prune history", func(ctx context.Context, tx pgx.Tx) error {
		cut := before.UnixMilli()
		tag, err := tx.Exec(ctx, `DELETE FROM slots WHERE key IN (
			SELECT s.key FROM slots s
			WHERE s.state = ANY($1) AND s.planned_ms < $2 AND s.updated_ms < $2
			AND NOT (s.state = 'completed'
				AND NOT EXISTS (SELECT 1 FROM slots c WHERE c.schedule = s.schedule AND c.state = 'completed'
					AND (c.nominal_ms > s.nominal_ms OR (c.nominal_ms = s.nominal_ms AND c.key > s.key)))
				AND EXISTS (SELECT 1 FROM slots r WHERE r.schedule = s.schedule AND r.updated_ms >= $2))
			LIMIT $3)`, stateNames(state.TerminalStates()), cut, max(limit, 1))
		n = tag.RowsAffected()
		return d(err)
	})
	return n, err
}

// PruneLedger deletes at most limit ledger rows sent before the given instant (in this
// process's clock) and returns how many it deleted.
func (db *DB) PruneLedger(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := db.tx(ctx, "prune ledger", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.readFrame(ctx, tx)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM ledger WHERE id IN (
			SELECT id FROM ledger WHERE sent_ms < $1 ORDER BY sent_ms LIMIT $2)`, f.toServer(before), max(limit, 1))
		n = tag.RowsAffected()
		return d(err)
	})
	return n, err
}

// PruneOwners deletes the owner registrations that expired before the given instant
// (in this process's clock) and returns how many it deleted.
func (db *DB) PruneOwners(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, "prune owners", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.readFrame(ctx, tx)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM owners WHERE expires_ms < $1", f.toServer(before))
		n = tag.RowsAffected()
		return d(err)
	})
	return n, err
}

// Compact does nothing on PostgreSQL: autovacuum makes the space pruning frees
// reusable. The report says so (nothing freed, no pages counted).
func (db *DB) Compact(ctx context.Context, maxPages int) (state.CompactReport, error) {
	return state.CompactReport{}, nil
}
