package state

import (
	"context"
	"fmt"
	"time"
)

// Pruning keeps the file from growing forever. Each call deletes at most limit rows in
// one short write transaction, so that a caller working through a large backlog
// releases the write lock between batches and the daemon's admissions never wait long
// behind it; Compact then returns the freed pages to the file system.

// PruneHistory deletes at most limit slots in a terminal state whose planned instant
// and last change are both before the given instant, and returns how many it deleted.
// Live slots (planned, triggering, triggered, running) are never pruned. A schedule's
// latest completed slot is kept while the schedule has any row changed since before
// (what hexcron_last_success_timestamp_seconds restarts from): a schedule still in the
// config keeps its last success however long ago it was, one that left the config
// loses it with the rest of its rows. Ledger rows of deleted slots stay, with no slot,
// until PruneLedger removes them.
func (db *DB) PruneHistory(ctx context.Context, before time.Time, limit int) (int64, error) {
	var args []any
	var terminal []any
	for _, s := range States {
		if s.Terminal() {
			terminal = append(terminal, string(s))
		}
	}
	cut := before.UnixMilli()
	args = append(args, terminal...)
	args = append(args, cut, cut, cut, max(limit, 1))
	res, err := db.exec(ctx, `DELETE FROM slots WHERE rowid IN (
		SELECT s.rowid FROM slots s
		WHERE s.state IN (`+placeholders(len(terminal))+`) AND s.planned_ms < ? AND s.updated_ms < ?
		AND NOT (s.state = 'completed'
			AND NOT EXISTS (SELECT 1 FROM slots c WHERE c.schedule = s.schedule AND c.state = 'completed'
				AND (c.nominal_ms > s.nominal_ms OR (c.nominal_ms = s.nominal_ms AND c.key > s.key)))
			AND EXISTS (SELECT 1 FROM slots r WHERE r.schedule = s.schedule AND r.updated_ms >= ?))
		LIMIT ?)`, args...)
	if err != nil {
		return 0, classify("prune history", db.path, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// PruneLedger deletes at most limit ledger rows sent before the given instant (pass the
// oldest `since` any budget rule can still ask for) and returns how many it deleted.
func (db *DB) PruneLedger(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM ledger WHERE id IN (
		SELECT id FROM ledger WHERE sent_ms < ? ORDER BY sent_ms LIMIT ?)`, before.UnixMilli(), max(limit, 1))
	if err != nil {
		return 0, classify("prune ledger", db.path, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// PruneOwners deletes the owner registrations that expired before the given instant (a
// process that died without releasing its row) and returns how many it deleted. The
// lease is one row and needs none.
func (db *DB) PruneOwners(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.exec(ctx, "DELETE FROM owners WHERE expires_ms < ?", before.UnixMilli())
	if err != nil {
		return 0, classify("prune owners", db.path, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// CompactReport is what one Compact did.
type CompactReport struct {
	// Converted is true when this call turned the file to incremental auto-vacuum (a
	// one-time VACUUM of a file created before schema 7, which rewrites it whole).
	Converted bool
	// Freed is how many free pages were returned to the file system.
	Freed int64
	// PageSize is the file's page size in bytes.
	PageSize int64
	// Pages is how many pages the file has now (its size is Pages × PageSize).
	Pages int64
}

// Compact returns up to maxPages free pages (left by deleted rows) to the file system,
// so that the file shrinks after pruning. Each call is one short write transaction
// (PRAGMA incremental_vacuum). A file created before schema 7 has no auto-vacuum: the
// first Compact converts it with one VACUUM, which holds the write lock while it
// rewrites the file (seconds for a file of a few hundred MB) and needs as much free disk
// space as the file's size; the daemon calls it in the background once it has started.
func (db *DB) Compact(ctx context.Context, maxPages int) (CompactReport, error) {
	var r CompactReport
	var mode int
	if err := db.sql.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return r, classify("compact", db.path, err)
	}
	if mode != autoVacuumIncremental {
		if err := db.convertAutoVacuum(ctx); err != nil {
			return r, err
		}
		r.Converted = true
	}
	var before int64
	if err := db.sql.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&before); err != nil {
		return r, classify("compact", db.path, err)
	}
	if before > 0 && maxPages > 0 {
		if err := db.incrementalVacuum(ctx, maxPages); err != nil {
			return r, classify("compact", db.path, err)
		}
	}
	var after int64
	if err := db.sql.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&after); err != nil {
		return r, classify("compact", db.path, err)
	}
	if err := db.sql.QueryRowContext(ctx, "PRAGMA page_size").Scan(&r.PageSize); err != nil {
		return r, classify("compact", db.path, err)
	}
	if err := db.sql.QueryRowContext(ctx, "PRAGMA page_count").Scan(&r.Pages); err != nil {
		return r, classify("compact", db.path, err)
	}
	r.Freed = before - after
	return r, nil
}

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// convertAutoVacuum turns an existing file to incremental auto-vacuum: the pragma and
// the VACUUM that carries it out must run on one connection.
func (db *DB) convertAutoVacuum(ctx context.Context) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return classify("compact", db.path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return classify("compact", db.path, err)
	}
	for {
		_, err := conn.ExecContext(ctx, "VACUUM")
		if err == nil {
			return nil
		}
		if !isBusy(err) || ctx.Err() != nil {
			return classify("compact: vacuum", db.path, err)
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}

// incrementalVacuum frees up to n pages. The pragma frees one page per step of its
// statement, so its rows are read to the end.
func (db *DB) incrementalVacuum(ctx context.Context, n int) error {
	for {
		rows, err := db.sql.QueryContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", n))
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			if cerr := rows.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil || !isBusy(err) || ctx.Err() != nil {
			return err
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}
