package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"hexcron/state"
)

// migrationFS holds the schema migrations, named NNNN_what.sql; NNNN is the version
// hexcron_schema records once it is applied. The numbers are this backend's own; the
// logical schema follows SQLite's (docs/state.md lists the correspondence).
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns this backend's embedded migrations in version order.
func migrations() []state.Migration { return state.ReadMigrations(migrationFS) }

// LatestVersion is the schema version this binary creates and understands.
func LatestVersion() int {
	ms := migrations()
	return ms[len(ms)-1].Version
}

// SchemaVersion returns the database's schema version.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	ctx2, cancel := db.op(ctx)
	defer cancel()
	var v int
	if err := db.pool.QueryRow(ctx2, "SELECT version FROM hexcron_schema WHERE id = 1").Scan(&v); err != nil {
		return 0, db.classify(ctx, "schema version", err)
	}
	return v, nil
}

// found is what inspect saw in the schema.
type found struct {
	ours    bool // hexcron_schema exists
	version int  // its version (0 when not ours)
	others  int  // relations that are not hexcron's (when not ours)
}

func inspect(ctx context.Context, q querier) (found, error) {
	var f found
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables
		WHERE schemaname = current_schema() AND tablename = 'hexcron_schema')`).Scan(&f.ours); err != nil {
		return f, d(err)
	}
	if f.ours {
		var app string
		if err := q.QueryRow(ctx, "SELECT application, version FROM hexcron_schema WHERE id = 1").Scan(&app, &f.version); err != nil {
			return f, d(err)
		}
		return f, nil
	}
	err := q.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p')`).Scan(&f.others)
	return f, d(err)
}

// check refuses what hexcron must not touch; nil means usable (or fresh, when
// !f.ours && f.others == 0).
func (db *DB) check(f found) error {
	known := LatestVersion()
	switch {
	case !f.ours && f.others > 0:
		return state.Error("open state", db.where, state.ErrNotHexcron,
			fmt.Sprintf("its schema holds %d tables, views or sequences that are not hexcron's: give hexcron a database (or a schema, with search_path) of its own", f.others), nil)
	case !f.ours && (db.readOnly || db.opts.MustExist):
		return state.Error("open state", db.where, state.ErrNoDatabase,
			"no hexcron schema there yet: start `hexcron run --db URL` once to create it", nil)
	case f.version > known:
		return fmt.Errorf("open state %s: %w", db.where, &state.SchemaTooNewError{Path: db.where, Found: f.version, Known: known})
	case f.ours && f.version < known && db.readOnly:
		return state.Error("open state", db.where, state.ErrSchemaOutdated,
			fmt.Sprintf("version %d, this hexcron uses %d; start `hexcron run` once to migrate it", f.version, known), nil)
	}
	return nil
}

func (db *DB) inspectOnly(ctx context.Context) error {
	octx, cancel := db.op(ctx)
	defer cancel()
	f, err := inspect(octx, db.pool)
	if err != nil {
		return db.classify(ctx, "open state", err.(*driverError).err)
	}
	return db.check(f)
}

// migrate applies, in one transaction holding the migration advisory lock, every
// migration newer than the schema's version: two processes starting at once apply
// each once, and a refused schema is left exactly as it was.
func (db *DB) migrate(ctx context.Context) error {
	return db.tx(ctx, "migrate state", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", db.migrateKey); err != nil {
			return d(err)
		}
		f, err := inspect(ctx, tx)
		if err != nil {
			return err
		}
		if err := db.check(f); err != nil {
			return err
		}
		for _, m := range migrations() {
			if m.Version <= f.version {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migrate state %s %s: %w", db.where, m.Name, db.classify(ctx, "apply", err))
			}
			if _, err := tx.Exec(ctx, "UPDATE hexcron_schema SET version = $1 WHERE id = 1", m.Version); err != nil {
				return d(err)
			}
		}
		return nil
	})
}
