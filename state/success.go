package state

import (
	"context"
	"time"
)

// LastSuccess returns, per schedule, when its latest completed run ended (the run's
// ended time as recorded), over the history the database still holds: what
// hexcron_last_success_timestamp_seconds restarts from. Schedules without a completed
// run are absent.
func (db *DB) LastSuccess(ctx context.Context) (map[string]time.Time, error) {
	const op = "last success"
	rows, err := db.sql.QueryContext(ctx, `SELECT schedule, max(ended_ms) FROM slots
		WHERE state = 'completed' AND ended_ms IS NOT NULL GROUP BY schedule`)
	if err != nil {
		return nil, classify(op, db.path, err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var schedule string
		var ended int64
		if err := rows.Scan(&schedule, &ended); err != nil {
			return nil, classify(op, db.path, err)
		}
		out[schedule] = fromMS(ended)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(op, db.path, err)
	}
	return out, nil
}
