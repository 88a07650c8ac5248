package state

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"
)

// SetHeartbeat records that the daemon was alive at t. After downtime, the scheduler
// reads it back to find the slots missed since (catch-up).
func (db *DB) SetHeartbeat(ctx context.Context, t time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO meta (name, value) VALUES ('heartbeat', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.FormatInt(t.UnixMilli(), 10))
	return classify("set heartbeat", db.path, err)
}

// Heartbeat returns the last instant recorded by SetHeartbeat; ok is false when the
// daemon never ran on this database.
func (db *DB) Heartbeat(ctx context.Context) (t time.Time, ok bool, err error) {
	var v string
	err = db.sql.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = 'heartbeat'").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, classify("heartbeat", db.path, err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, classify("heartbeat", db.path, err)
	}
	return fromMS(ms), true, nil
}
