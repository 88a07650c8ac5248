package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hexcron/state"
)

// The trigger gateway's requests (see state.DB.Submit). Submit holds an advisory lock
// per gateway client for its transaction, so that any number of processes on any
// number of machines serialise one client's submissions: the Idempotency-Key lookup,
// the quota's count and the inserts see every submission committed before, and two
// requests with one key make one slot. The keys' created and expiry instants are the
// server's (see clock.go); the slots' instants are the daemon's, as for every slot.

// clientKey is the advisory lock of one gateway client's submissions.
func (db *DB) clientKey(client string) int64 {
	return lockKey("hexcron gateway " + db.schema + "\x00" + client)
}

// Submit records a gateway request as a slot, with its Idempotency-Key and under its
// client's quota, in one transaction holding the client's advisory lock (see
// state.DB.Submit for what it does with a key seen before and the quota).
func (db *DB) Submit(ctx context.Context, sub state.Submission, now, since time.Time, quota func(recent []time.Time) time.Duration) (state.Submitted, error) {
	s, err := state.FillSlot(sub.Slot)
	if err != nil {
		return state.Submitted{}, fmt.Errorf("submit: %w", err)
	}
	if s.Client == "" {
		return state.Submitted{}, errors.New("submit: the slot has no client")
	}
	var out state.Submitted
	err = db.tx(ctx, "submit", func(ctx context.Context, tx pgx.Tx) error {
		out = state.Submitted{}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", db.clientKey(s.Client)); err != nil {
			return d(err)
		}
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		if sub.Key != "" {
			var hash, slot string
			var expires int64
			err := tx.QueryRow(ctx, "SELECT body_sha256, slot, expires_ms FROM idempotency WHERE client = $1 AND key = $2",
				s.Client, sub.Key).Scan(&hash, &slot, &expires)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return d(err)
			case expires <= f.now:
				if _, err := tx.Exec(ctx, "DELETE FROM idempotency WHERE client = $1 AND key = $2", s.Client, sub.Key); err != nil {
					return d(err)
				}
			case hash != sub.Hash:
				return fmt.Errorf("submit: %w", &state.KeyReusedError{Client: s.Client, Key: sub.Key, Slot: slot})
			default:
				prev, err := scanSlot(tx.QueryRow(ctx, selectSlot+" WHERE key = $1", slot))
				if err != nil {
					return d(err)
				}
				if prev.State != state.StateSkipped {
					out.Slot = prev
					return nil
				}
			}
		}
		recent, err := recentRequests(ctx, tx, s.Client, since)
		if err != nil {
			return err
		}
		if wait := quota(recent); wait > 0 {
			out.Wait = wait
			return nil
		}
		row := s
		row.State, row.Attempts, row.LastAttempt, row.Owner = state.StatePlanned, 0, time.Time{}, ""
		row.IdemKey = sub.Key
		if _, err := insertSlot(ctx, tx, row, now, false); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" {
				return fmt.Errorf("submit %s: %w", s.Key, state.ErrSlotExists)
			}
			return d(err)
		}
		if sub.Key != "" {
			_, err := tx.Exec(ctx, `INSERT INTO idempotency (client, key, body_sha256, slot, body, created_ms, expires_ms)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (client, key) DO UPDATE SET slot = excluded.slot, body = excluded.body,
				created_ms = excluded.created_ms, expires_ms = excluded.expires_ms`,
				s.Client, sub.Key, sub.Hash, s.Key, sub.Body, f.now, f.toServer(sub.Expires))
			if err != nil {
				return d(err)
			}
		}
		row.Created, row.Updated = now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
		out = state.Submitted{Slot: row, Created: true}
		return nil
	})
	if err != nil {
		return state.Submitted{}, err
	}
	return out, nil
}

// recentRequests returns the nominal instants of client's slots after since, skipped
// ones excepted, oldest first: what its quota counts.
func recentRequests(ctx context.Context, q querier, client string, since time.Time) ([]time.Time, error) {
	rows, err := q.Query(ctx, "SELECT nominal_ms FROM slots WHERE client = $1 AND nominal_ms > $2 AND state <> 'skipped' ORDER BY nominal_ms",
		client, since.UnixMilli())
	if err != nil {
		return nil, d(err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return nil, d(err)
		}
		out = append(out, fromMS(ms))
	}
	return out, d(rows.Err())
}

// QueuedRequests returns the gateway slots still planned, oldest first, each with the
// body its Idempotency-Key stored ("" without a key, or when the key has gone).
func (db *DB) QueuedRequests(ctx context.Context) ([]state.Queued, error) {
	var out []state.Queued
	err := db.read(ctx, "queued requests", func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, selectSlot+` WHERE state = 'planned' AND client IS NOT NULL ORDER BY nominal_ms, key COLLATE "C"`)
		if err != nil {
			return d(err)
		}
		var keys []string
		for rows.Next() {
			s, err := scanSlot(rows)
			if err != nil {
				rows.Close()
				return d(err)
			}
			out = append(out, state.Queued{Slot: s})
			keys = append(keys, s.Key)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return d(err)
		}
		if len(keys) == 0 {
			return nil
		}
		// The bodies of the keys that still point at these slots.
		bodies := map[string]string{}
		rows, err = q.Query(ctx, "SELECT client, key, slot, body FROM idempotency WHERE slot = ANY($1)", keys)
		if err != nil {
			return d(err)
		}
		defer rows.Close()
		for rows.Next() {
			var client, key, slot, body string
			if err := rows.Scan(&client, &key, &slot, &body); err != nil {
				return d(err)
			}
			bodies[client+"\x00"+key+"\x00"+slot] = body
		}
		if err := rows.Err(); err != nil {
			return d(err)
		}
		for i, qd := range out {
			if qd.Slot.IdemKey != "" {
				out[i].Body = bodies[qd.Slot.Client+"\x00"+qd.Slot.IdemKey+"\x00"+qd.Slot.Key]
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PruneIdempotency forgets the Idempotency-Keys expired at now (on the server's clock)
// and returns how many. (A key also goes when PruneHistory deletes its slot.)
func (db *DB) PruneIdempotency(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, "prune idempotency keys", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM idempotency WHERE expires_ms <= $1", f.now)
		n = tag.RowsAffected()
		return d(err)
	})
	return n, err
}

// SlotOfRun returns the slot that records Hex run runID, or ErrNotFound.
func (db *DB) SlotOfRun(ctx context.Context, runID string) (state.Slot, error) {
	var s state.Slot
	err := db.read(ctx, "slot of run", func(ctx context.Context, q querier) error {
		var err error
		s, err = scanSlot(q.QueryRow(ctx, selectSlot+" WHERE run_id = $1", runID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("run %s: %w", runID, state.ErrNotFound)
		}
		return d(err)
	})
	return s, err
}
