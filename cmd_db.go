package main

// Opening the database: a SQLite file (the default) or a PostgreSQL database named by a
// postgres:// URL (--db, or state.url in the config), behind the one contract the
// commands use.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
	"hexcron/state/postgres"
)

// stateDB is what the commands need of a database (*state.DB, *postgres.DB).
type stateDB interface {
	scheduler.Store
	scheduler.LedgerStore
	scheduler.LeaseStore
	scheduler.StoryStore
	pauseStore
	scheduler.GatewayStore
	LastRunPerSchedule(ctx context.Context) (map[string]state.Slot, error)
	NextPlanned(ctx context.Context, now time.Time) (map[string]state.Slot, error)
	Close() error
}

var (
	_ stateDB = (*state.DB)(nil)
	_ stateDB = (*postgres.DB)(nil)
)

// dbTarget is where the database is: --db, else the config's state.url, else
// $STATE_DIRECTORY/hexcron.db, else ./hexcron.db.
func dbTarget(flagValue string, conf *planner.Config, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if conf != nil && conf.State.URL != "" {
		return conf.State.URL
	}
	return state.DefaultPath(getenv)
}

// openDB opens the database at target without ever creating it: read-only for status
// and history, read-write (for the ledger and the slot row) for trigger and check. A
// postgres:// URL opens PostgreSQL (the password from $CREDENTIALS_DIRECTORY/db-password,
// $PGPASSWORD or $PGPASSFILE).
func openDB(ctx context.Context, target string, readOnly bool) (stateDB, error) {
	if postgres.IsURL(target) {
		// Never create the schema: the daemon does.
		db, err := postgres.Open(ctx, target, postgres.Options{ReadOnly: readOnly, MustExist: true})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
		return nil, missingDBError(target)
	}
	db, err := state.Open(ctx, target, state.Options{ReadOnly: readOnly})
	if errors.Is(err, state.ErrNoDatabase) {
		return nil, fmt.Errorf("%w (%w)", missingDBError(target), err)
	}
	if err != nil {
		return nil, err
	}
	return db, nil
}

// openDaemonDB opens (creating or migrating) the database `hexcron run` uses. shared
// is true for PostgreSQL: other daemons may stand by on it, and it can be unreachable.
func openDaemonDB(ctx context.Context, target string) (db stateDB, shared bool, err error) {
	if postgres.IsURL(target) {
		pdb, err := postgres.Open(ctx, target, postgres.Options{})
		if err != nil {
			return nil, false, err
		}
		return pdb, true, nil
	}
	sdb, err := state.Open(ctx, target, state.Options{})
	if err != nil {
		return nil, false, err
	}
	// One daemon per SQLite file: the lock proves no other daemon of it is alive.
	if err := sdb.LockDaemon(); err != nil {
		sdb.Close()
		return nil, false, err
	}
	return sdb, false, nil
}

// dbSecrets are the secrets of db the Hex client must redact (its password).
func dbSecrets(db stateDB) []string {
	if p, ok := db.(interface{ Secret() string }); ok && p.Secret() != "" {
		return []string{p.Secret()}
	}
	return nil
}
