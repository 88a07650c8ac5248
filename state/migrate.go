package state

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrationFS holds the schema migrations, named NNNN_what.sql; NNNN is the
// user_version the database has after applying it.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. The embedded files are
// checked by TestMigrationsWellFormed, so a malformed name is a build-time bug.
func migrations() []migration {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			panic(fmt.Sprintf("state: migration %s: name must start with a version number", n))
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms
}

// latestVersion is the schema version this binary creates and understands.
func latestVersion() int {
	ms := migrations()
	return ms[len(ms)-1].version
}

// SchemaVersion returns the database's schema version (PRAGMA user_version).
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.sql.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, classify("schema version", db.path, err)
	}
	return v, nil
}

// migrate applies every migration newer than the file's user_version, each in its own
// BEGIN IMMEDIATE transaction that also sets user_version and application_id, so that
// two processes starting at once cannot apply one twice.
func (db *DB) migrate(ctx context.Context) error {
	for _, m := range migrations() {
		if err := db.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, m migration) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return classify("migrate state", db.path, err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return classify("migrate state", db.path, err)
	}
	if v >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return classify("migrate state "+m.name, db.path, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = %d", m.version, applicationID)); err != nil {
		return classify("migrate state "+m.name, db.path, err)
	}
	if err := tx.Commit(); err != nil {
		return classify("migrate state "+m.name, db.path, err)
	}
	return nil
}
