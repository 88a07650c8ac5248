package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hexcron/state"
)

// Owners and the lease live on the server's clock: registering, renewing, taking and
// checking them compares with the server's instant, never with a client's. The times
// returned are translated into the caller's clock (see clock.go).

// RegisterOwner records a new owner, live until the server's now+ttl, and deletes the
// rows that expired more than a day ago.
func (db *DB) RegisterOwner(ctx context.Context, role state.Role, host string, pid int, now time.Time, ttl time.Duration) (state.Owner, error) {
	if ttl <= 0 {
		return state.Owner{}, fmt.Errorf("register owner: ttl %s must be positive", ttl)
	}
	id, err := state.NewOwnerID()
	if err != nil {
		return state.Owner{}, fmt.Errorf("register owner: %w", err)
	}
	var o state.Owner
	err = db.tx(ctx, "register owner", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM owners WHERE expires_ms < $1", f.now-state.OwnerRetention.Milliseconds()); err != nil {
			return d(err)
		}
		exp := f.now + ttl.Milliseconds()
		if _, err := tx.Exec(ctx, `INSERT INTO owners (id, role, host, pid, started_ms, renewed_ms, expires_ms)
			VALUES ($1, $2, $3, $4, $5, $5, $6)`, id, string(role), host, pid, f.now, exp); err != nil {
			return d(err)
		}
		o = state.Owner{ID: id, Role: role, Host: host, PID: pid, Started: f.fromServer(f.now), Renewed: f.fromServer(f.now), Expires: f.fromServer(exp)}
		return nil
	})
	return o, err
}

// RenewOwner extends owner id's registration to the server's now+ttl. A registration
// already expired on the server's clock, or deleted, is not revived: *FencedError.
func (db *DB) RenewOwner(ctx context.Context, id string, now time.Time, ttl time.Duration) (time.Time, error) {
	var expires time.Time
	err := db.tx(ctx, "renew owner", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		exp := f.now + ttl.Milliseconds()
		tag, err := tx.Exec(ctx, "UPDATE owners SET renewed_ms = $1, expires_ms = $2 WHERE id = $3 AND expires_ms > $1", f.now, exp, id)
		if err != nil {
			return d(err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("renew owner: %w", &state.FencedError{Owner: id, Why: "its registration expired or was removed"})
		}
		expires = f.fromServer(exp)
		return nil
	})
	return expires, err
}

// ReleaseOwner deletes owner id's row (a clean exit).
func (db *DB) ReleaseOwner(ctx context.Context, id string) error {
	return db.tx(ctx, "release owner", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM owners WHERE id = $1", id)
		return d(err)
	})
}

// Owners returns every owner row (live and recently expired), oldest first, with its
// times in this process's clock.
func (db *DB) Owners(ctx context.Context) ([]state.Owner, error) {
	var out []state.Owner
	err := db.read(ctx, "list owners", func(ctx context.Context, q querier) error {
		f, err := db.readFrame(ctx, q)
		if err != nil {
			return err
		}
		rows, err := q.Query(ctx, `SELECT id, role, host, pid, started_ms, renewed_ms, expires_ms FROM owners ORDER BY started_ms, id`)
		if err != nil {
			return d(err)
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanOwner(rows, f)
			if err != nil {
				return d(err)
			}
			out = append(out, o)
		}
		return d(rows.Err())
	})
	return out, err
}

func scanOwner(r pgx.Row, f frame) (state.Owner, error) {
	var o state.Owner
	var role string
	var started, renewed, expires int64
	err := r.Scan(&o.ID, &role, &o.Host, &o.PID, &started, &renewed, &expires)
	o.Role = state.Role(role)
	o.Started, o.Renewed, o.Expires = f.fromServer(started), f.fromServer(renewed), f.fromServer(expires)
	return o, err
}

// AcquireLease makes owner the leader until the server's now+ttl and returns the lease
// with its new epoch, when nobody leads, the lease expired on the server's clock, or
// the leader's registration is gone or expired; otherwise *state.LeaseHeldError. It
// holds the budget's advisory lock, so that no admission interleaves with a takeover:
// every admission committed before it is visible to the new leader's recovery, and
// every admission after it sees the new epoch.
func (db *DB) AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (state.Lease, error) {
	var l state.Lease
	err := db.tx(ctx, "acquire lease", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", db.budgetKey); err != nil {
			return d(err)
		}
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		cur, err := readLease(ctx, tx, frame{}, true)
		if err != nil {
			return err
		}
		if cur.Owner != "" && cur.Owner != owner && f.now < cur.Expires.UnixMilli() {
			holder, err := scanOwner(tx.QueryRow(ctx, `SELECT id, role, host, pid, started_ms, renewed_ms, expires_ms
				FROM owners WHERE id = $1`, cur.Owner), f)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return d(err)
			case holder.Expires.Add(-f.off).UnixMilli() > f.now:
				cur.Since, cur.Expires = f.fromServer(cur.Since.UnixMilli()), f.fromServer(cur.Expires.UnixMilli())
				return fmt.Errorf("acquire lease: %w", &state.LeaseHeldError{Lease: cur, Holder: holder})
			}
		}
		exp := f.now + ttl.Milliseconds()
		if _, err := tx.Exec(ctx, "UPDATE lease SET epoch = $1, owner = $2, since_ms = $3, expires_ms = $4 WHERE id = 1",
			cur.Epoch+1, owner, f.now, exp); err != nil {
			return d(err)
		}
		l = state.Lease{Epoch: cur.Epoch + 1, Owner: owner, Since: f.fromServer(f.now), Expires: f.fromServer(exp)}
		return nil
	})
	return l, err
}

// RenewLease extends the lease of owner at epoch, and owner's registration, to the
// server's now+ttl. Another owner or a later epoch: *state.FencedError. A lease that
// expired while nobody took it is renewed (its epoch still excludes everyone else).
func (db *DB) RenewLease(ctx context.Context, owner string, epoch int64, now time.Time, ttl time.Duration) (state.Lease, error) {
	var l state.Lease
	err := db.tx(ctx, "renew lease", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		cur, err := readLease(ctx, tx, frame{}, true)
		if err != nil {
			return err
		}
		if err := state.LeaseFence(cur, state.Holder{Owner: owner, Epoch: epoch}); err != nil {
			return fmt.Errorf("renew lease: %w", err)
		}
		exp := f.now + ttl.Milliseconds()
		if _, err := tx.Exec(ctx, "UPDATE lease SET expires_ms = $1 WHERE id = 1", exp); err != nil {
			return d(err)
		}
		if _, err := tx.Exec(ctx, "UPDATE owners SET renewed_ms = $1, expires_ms = $2 WHERE id = $3", f.now, exp, owner); err != nil {
			return d(err)
		}
		l = state.Lease{Epoch: cur.Epoch, Owner: cur.Owner, Since: f.fromServer(cur.Since.UnixMilli()), Expires: f.fromServer(exp)}
		return nil
	})
	return l, err
}

// ReleaseLease gives the lease up when owner still holds it at epoch; the epoch stays.
func (db *DB) ReleaseLease(ctx context.Context, owner string, epoch int64, now time.Time) error {
	return db.tx(ctx, "release lease", func(ctx context.Context, tx pgx.Tx) error {
		f, err := db.serverNow(ctx, tx, now)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE lease SET owner = NULL, expires_ms = $1 WHERE id = 1 AND owner = $2 AND epoch = $3", f.now, owner, epoch)
		return d(err)
	})
}

// CurrentLease returns the lease row, its times in this process's clock.
func (db *DB) CurrentLease(ctx context.Context) (state.Lease, error) {
	var l state.Lease
	err := db.read(ctx, "read lease", func(ctx context.Context, q querier) error {
		f, err := db.readFrame(ctx, q)
		if err != nil {
			return err
		}
		l, err = readLease(ctx, q, f, false)
		return err
	})
	return l, err
}

// readLease reads the lease row (FOR UPDATE when lock), its times through f.
func readLease(ctx context.Context, q querier, f frame, lock bool) (state.Lease, error) {
	query := "SELECT epoch, owner, since_ms, expires_ms FROM lease WHERE id = 1"
	if lock {
		query += " FOR UPDATE"
	}
	var l state.Lease
	var owner *string
	var since, expires int64
	if err := q.QueryRow(ctx, query).Scan(&l.Epoch, &owner, &since, &expires); err != nil {
		return l, d(err)
	}
	if owner != nil {
		l.Owner = *owner
	}
	l.Since, l.Expires = f.fromServer(since), f.fromServer(expires)
	return l, nil
}
