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

// Migration is one embedded schema migration: the version its file name starts with
// (NNNN_what.sql), the file's name and its SQL.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ReadMigrations returns the migrations in fsys's directory migrations/, in version
// order. The files are embedded and checked by each backend's tests, so a malformed
// name is a build-time bug: it panics. state/postgres reads its own with it.
func ReadMigrations(fsys fs.FS) []Migration {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var ms []Migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			panic(fmt.Sprintf("state: migration %s: name must start with a version number", n))
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			panic(err)
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms
}

// migrations returns this backend's embedded migrations in version order.
func migrations() []Migration { return ReadMigrations(migrationFS) }

// latestVersion is the schema version this binary creates and understands.
func latestVersion() int {
	ms := migrations()
	return ms[len(ms)-1].Version
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

func (db *DB) apply(ctx context.Context, m Migration) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return classify("migrate state", db.path, err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return classify("migrate state", db.path, err)
	}
	if v >= m.Version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return classify("migrate state "+m.Name, db.path, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = %d", m.Version, applicationID)); err != nil {
		return classify("migrate state "+m.Name, db.path, err)
	}
	if err := tx.Commit(); err != nil {
		return classify("migrate state "+m.Name, db.path, err)
	}
	return nil
}
