package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mattn/go-sqlite3"
)

// ErrKeyReused means an Idempotency-Key came back with a different request than the
// one it was first used for.
var ErrKeyReused = errors.New("idempotency key reused with a different request")

// ErrSlotExists means a slot with the submitted key already exists (two submissions in
// one millisecond): submit again with another key.
var ErrSlotExists = errors.New("slot key already exists")

// KeyReusedError is ErrKeyReused with the slot the key belongs to.
type KeyReusedError struct {
	Client, Key string
	Slot        string // the slot the key was first used for
}

func (e *KeyReusedError) Error() string {
	return fmt.Sprintf("idempotency key %q of client %s was first used for slot %s with a different request", e.Key, e.Client, e.Slot)
}

// Is makes errors.Is(err, ErrKeyReused) true.
func (e *KeyReusedError) Is(target error) bool { return target == ErrKeyReused }

// Submission is a gateway request to record as a slot.
type Submission struct {
	// Slot is the row to create: state planned, Kind manual, with Client, Deadline and
	// (with a key) IdemKey set.
	Slot Slot
	// Key is the request's Idempotency-Key ("" without one).
	Key string
	// Hash identifies the request (hex SHA-256 of what makes it that request): the same
	// key with another hash is refused with a *KeyReusedError.
	Hash string
	// Body is the RunProject body (JSON) to send, kept with the key so that a queued
	// request can be triggered after a restart.
	Body string
	// Expires is when the key is forgotten.
	Expires time.Time
}

// Submitted is what Submit did.
type Submitted struct {
	// Slot is the request's slot: the one just created, or the one the key made earlier.
	Slot Slot
	// Created is true when Slot was created by this call.
	Created bool
	// Wait is positive when the client's quota refused the request: nothing was
	// recorded, and this is how long until the quota has room.
	Wait time.Duration
}

// Submit records a gateway request as a slot, in one BEGIN IMMEDIATE transaction that
// also holds the Idempotency-Key and applies the client's quota, so that concurrent
// requests with one key make one slot and no two requests pass one quota place.
//
// With a key the client used before (and not expired): the same Hash returns the key's
// slot (Created false), unless that slot was skipped (it never reached Hex), in which
// case a new slot replaces it under the key; another Hash is refused with a
// *KeyReusedError. Otherwise quota is called with the nominal instants of the client's
// slots since since, skipped ones excepted, oldest first: a positive wait refuses the
// request (nothing recorded). Else the slot is inserted and the key recorded with it. A
// slot key that exists already gives ErrSlotExists.
func (db *DB) Submit(ctx context.Context, sub Submission, now, since time.Time, quota func(recent []time.Time) time.Duration) (Submitted, error) {
	s, err := complete(sub.Slot)
	if err != nil {
		return Submitted{}, fmt.Errorf("submit: %w", err)
	}
	if s.Client == "" {
		return Submitted{}, errors.New("submit: the slot has no client")
	}
	tx, err := db.begin(ctx)
	if err != nil {
		return Submitted{}, classify("submit", db.path, err)
	}
	defer tx.Rollback()
	if sub.Key != "" {
		var hash, slot string
		var expires int64
		err := tx.QueryRowContext(ctx, "SELECT body_sha256, slot, expires_ms FROM idempotency WHERE client = ? AND key = ?",
			s.Client, sub.Key).Scan(&hash, &slot, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return Submitted{}, classify("submit", db.path, err)
		case expires <= now.UnixMilli():
			if _, err := tx.ExecContext(ctx, "DELETE FROM idempotency WHERE client = ? AND key = ?", s.Client, sub.Key); err != nil {
				return Submitted{}, classify("submit", db.path, err)
			}
		case hash != sub.Hash:
			return Submitted{}, fmt.Errorf("submit: %w", &KeyReusedError{Client: s.Client, Key: sub.Key, Slot: slot})
		default:
			prev, err := scanSlot(tx.QueryRowContext(ctx, selectSlot+" WHERE key = ?", slot))
			if err != nil {
				return Submitted{}, classify("submit", db.path, err)
			}
			if prev.State != StateSkipped {
				return Submitted{Slot: prev}, nil
			}
		}
	}
	rows, err := tx.QueryContext(ctx, "SELECT nominal_ms FROM slots WHERE client = ? AND nominal_ms > ? AND state <> 'skipped' ORDER BY nominal_ms",
		s.Client, since.UnixMilli())
	if err != nil {
		return Submitted{}, classify("submit", db.path, err)
	}
	var recent []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			rows.Close()
			return Submitted{}, classify("submit", db.path, err)
		}
		recent = append(recent, fromMS(ms))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Submitted{}, classify("submit", db.path, err)
	}
	if wait := quota(recent); wait > 0 {
		return Submitted{Wait: wait}, nil
	}
	s.State, s.Attempts, s.LastAttempt, s.Owner = StatePlanned, 0, time.Time{}, ""
	s.IdemKey = sub.Key
	if err := insertSlot(ctx, tx, s, now); err != nil {
		var se sqlite3.Error
		if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
			return Submitted{}, fmt.Errorf("submit %s: %w", s.Key, ErrSlotExists)
		}
		return Submitted{}, classify("submit", db.path, err)
	}
	if sub.Key != "" {
		_, err := tx.ExecContext(ctx, `INSERT INTO idempotency (client, key, body_sha256, slot, body, created_ms, expires_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client, key) DO UPDATE SET slot = excluded.slot, body = excluded.body,
			created_ms = excluded.created_ms, expires_ms = excluded.expires_ms`,
			s.Client, sub.Key, sub.Hash, s.Key, sub.Body, now.UnixMilli(), sub.Expires.UnixMilli())
		if err != nil {
			return Submitted{}, classify("submit", db.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Submitted{}, classify("submit", db.path, err)
	}
	s.Created, s.Updated = now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
	return Submitted{Slot: s, Created: true}, nil
}

// Queued is a gateway slot still planned, with its key's stored body when it has one.
type Queued struct {
	Slot Slot
	// Body is the RunProject body stored with the slot's Idempotency-Key; "" when the
	// request had no key (or the key expired).
	Body string
}

// QueuedRequests returns the gateway slots still planned, oldest first, each with the
// body its Idempotency-Key stored.
func (db *DB) QueuedRequests(ctx context.Context) ([]Queued, error) {
	slots, err := db.querySlots(ctx, "queued requests", selectSlot+" WHERE state = 'planned' AND client IS NOT NULL ORDER BY nominal_ms, key")
	if err != nil {
		return nil, err
	}
	out := make([]Queued, len(slots))
	for i, s := range slots {
		out[i].Slot = s
		if s.IdemKey == "" {
			continue
		}
		err := db.sql.QueryRowContext(ctx, "SELECT body FROM idempotency WHERE client = ? AND key = ? AND slot = ?",
			s.Client, s.IdemKey, s.Key).Scan(&out[i].Body)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, classify("queued requests", db.path, err)
		}
	}
	return out, nil
}

// PruneIdempotency forgets the Idempotency-Keys expired at now and returns how many.
// (A key also goes when PruneHistory deletes its slot.)
func (db *DB) PruneIdempotency(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.exec(ctx, "DELETE FROM idempotency WHERE expires_ms <= ?", now.UnixMilli())
	if err != nil {
		return 0, classify("prune idempotency keys", db.path, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// SlotOfRun returns the slot that records Hex run runID, or ErrNotFound.
func (db *DB) SlotOfRun(ctx context.Context, runID string) (Slot, error) {
	s, err := scanSlot(db.sql.QueryRowContext(ctx, selectSlot+" WHERE run_id = ?", runID))
	if errors.Is(err, sql.ErrNoRows) {
		return Slot{}, fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return Slot{}, classify("slot of run", db.path, err)
	}
	return s, nil
}
