package state

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/mattn/go-sqlite3"
)

// SQLite's busy handler is not fair: a process that writes back to back can keep the
// write lock away from another one for longer than busy_timeout. A write transaction
// that failed to start with SQLITE_BUSY has done nothing, so it is safe to try again;
// these helpers do so until ctx is done, so that callers never see SQLITE_BUSY.

func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// begin starts a write transaction (BEGIN IMMEDIATE: the DSN sets _txlock=immediate),
// retrying while another process holds the write lock.
func (db *DB) begin(ctx context.Context) (*sql.Tx, error) {
	for {
		tx, err := db.sql.BeginTx(ctx, nil)
		if err == nil || !isBusy(err) || ctx.Err() != nil {
			return tx, err
		}
		if err := pause(ctx); err != nil {
			return nil, err
		}
	}
}

// exec runs one autocommit write statement, retrying while the database is busy.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	for {
		res, err := db.sql.ExecContext(ctx, query, args...)
		if err == nil || !isBusy(err) || ctx.Err() != nil {
			return res, err
		}
		if err := pause(ctx); err != nil {
			return nil, err
		}
	}
}

// pause yields briefly between retries (the busy_timeout already waited).
func pause(ctx context.Context) error {
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
