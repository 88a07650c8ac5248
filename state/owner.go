package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Who may admit triggers. Every process that admits RunProject attempts registers an
// owner row and renews it while it lives; the daemon that triggers schedules also holds
// the lease, whose epoch grows each time it is taken. Admit checks, in its own
// transaction, that the admitting process still holds what it registered: a daemon
// that lost the lease, or a `hexcron trigger` whose registration lapsed, is fenced
// (ErrFenced) and can never trigger. See docs/state.md, "One daemon per database".

// Role is what an owner is.
type Role string

// The owner roles.
const (
	RoleDaemon  Role = "daemon"  // hexcron run
	RoleTrigger Role = "trigger" // hexcron trigger
)

// ownerRetention is how long an expired owner row is kept (for `status` and for
// reading which process claimed a slot) before a registration deletes it.
const ownerRetention = 24 * time.Hour

// Owner is one row of the owners table: a process that may admit triggers.
type Owner struct {
	ID      string // random, 16 hex characters
	Role    Role
	Host    string
	PID     int
	Started time.Time // registered
	Renewed time.Time // last renewal
	Expires time.Time // the row is dead from this instant unless renewed before
}

// Live reports whether the owner's registration has not expired at now.
func (o Owner) Live(now time.Time) bool { return now.Before(o.Expires) }

// Holder says on whose behalf Admit claims: the admitting process's owner id and, for
// the daemon that leads, the lease epoch it took. The zero Holder admits anonymously
// (no fencing, the slot's owner stays NULL): tests and tools only.
type Holder struct {
	Owner string // owners.id
	Epoch int64  // the lease epoch of the leader; 0 for a process that does not lead
}

// Lease is the single row naming the daemon that triggers schedules.
type Lease struct {
	Epoch   int64     // incremented every time the lease is taken
	Owner   string    // the leader's owner id; "" when nobody leads
	Since   time.Time // when the current leader took it
	Expires time.Time // the leader must renew before this
}

// ErrFenced means the process no longer holds what it was admitting under: another
// daemon took the lease (a higher epoch), or this process's owner registration lapsed.
// It must stop triggering.
var ErrFenced = errors.New("fenced: this process no longer holds the database's lease or registration")

// ErrLeaseHeld means AcquireLease found the lease held by another live owner.
var ErrLeaseHeld = errors.New("the lease is held by another hexcron daemon")

// FencedError reports why an admission or a renewal was fenced.
type FencedError struct {
	Owner string // the fenced owner
	Epoch int64  // the epoch it held (0: not a leader)
	Why   string // what changed, in words
}

func (e *FencedError) Error() string {
	if e.Epoch > 0 {
		return fmt.Sprintf("owner %s (lease epoch %d) is fenced: %s", e.Owner, e.Epoch, e.Why)
	}
	return fmt.Sprintf("owner %s is fenced: %s", e.Owner, e.Why)
}

// Is makes errors.Is(err, ErrFenced) true.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// LeaseHeldError names the live leader AcquireLease found.
type LeaseHeldError struct {
	Lease
	Holder Owner // the leader's owner row
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("the lease (epoch %d) is held by hexcron %s pid %d on %s until %s",
		e.Epoch, e.Holder.Role, e.Holder.PID, e.Holder.Host, e.Expires.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLeaseHeld) true.
func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }

// newOwnerID returns 16 random hex characters.
func newOwnerID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// RegisterOwner records a new owner (role, host and pid describe the process), live
// until now+ttl, and deletes the rows that expired more than a day ago (the table stays
// small). The caller renews it every ttl/3 with RenewOwner and deletes it with
// ReleaseOwner on a clean exit.
func (db *DB) RegisterOwner(ctx context.Context, role Role, host string, pid int, now time.Time, ttl time.Duration) (Owner, error) {
	if ttl <= 0 {
		return Owner{}, fmt.Errorf("register owner: ttl %s must be positive", ttl)
	}
	id, err := newOwnerID()
	if err != nil {
		return Owner{}, fmt.Errorf("register owner: %w", err)
	}
	o := Owner{ID: id, Role: role, Host: host, PID: pid, Started: now, Renewed: now, Expires: now.Add(ttl)}
	tx, err := db.begin(ctx)
	if err != nil {
		return Owner{}, classify("register owner", db.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "DELETE FROM owners WHERE expires_ms < ?", now.Add(-ownerRetention).UnixMilli()); err != nil {
		return Owner{}, classify("register owner", db.path, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO owners (id, role, host, pid, started_ms, renewed_ms, expires_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, o.ID, string(o.Role), o.Host, o.PID, now.UnixMilli(), now.UnixMilli(), o.Expires.UnixMilli())
	if err != nil {
		return Owner{}, classify("register owner", db.path, err)
	}
	if err := tx.Commit(); err != nil {
		return Owner{}, classify("register owner", db.path, err)
	}
	return o, nil
}

// RenewOwner extends owner id's registration to now+ttl. A registration that already
// expired (the process was paused past its TTL: another process may have settled its
// claims since) or was deleted is not revived: RenewOwner returns a *FencedError.
func (db *DB) RenewOwner(ctx context.Context, id string, now time.Time, ttl time.Duration) (time.Time, error) {
	expires := now.Add(ttl)
	res, err := db.exec(ctx, "UPDATE owners SET renewed_ms = ?, expires_ms = ? WHERE id = ? AND expires_ms > ?",
		now.UnixMilli(), expires.UnixMilli(), id, now.UnixMilli())
	if err != nil {
		return time.Time{}, classify("renew owner", db.path, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return time.Time{}, fmt.Errorf("renew owner: %w", &FencedError{Owner: id, Why: "its registration expired or was removed"})
	}
	return expires, nil
}

// ReleaseOwner deletes owner id's row (a clean exit): its claims left triggering are
// then settled by the daemon at once. Releasing an unknown id is not an error.
func (db *DB) ReleaseOwner(ctx context.Context, id string) error {
	_, err := db.exec(ctx, "DELETE FROM owners WHERE id = ?", id)
	return classify("release owner", db.path, err)
}

// Owners returns every owner row (live and recently expired), oldest first.
func (db *DB) Owners(ctx context.Context) ([]Owner, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, role, host, pid, started_ms, renewed_ms, expires_ms
		FROM owners ORDER BY started_ms, id`)
	if err != nil {
		return nil, classify("list owners", db.path, err)
	}
	defer rows.Close()
	var out []Owner
	for rows.Next() {
		o, err := scanOwner(rows)
		if err != nil {
			return nil, classify("list owners", db.path, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("list owners", db.path, err)
	}
	return out, nil
}

func scanOwner(r rowScanner) (Owner, error) {
	var o Owner
	var started, renewed, expires int64
	err := r.Scan(&o.ID, &o.Role, &o.Host, &o.PID, &started, &renewed, &expires)
	o.Started, o.Renewed, o.Expires = fromMS(started), fromMS(renewed), fromMS(expires)
	return o, err
}

// AcquireLease makes owner the leader until now+ttl and returns the lease with its new
// epoch (one more than before). It succeeds when nobody leads, when the lease expired,
// when the leader's owner row is gone or expired, or when this handle holds the daemon
// flock (LockDaemon): on SQLite that lock proves every earlier leader is dead, so the
// daemon takes over at once instead of waiting for the lease to expire. Otherwise it
// returns a *LeaseHeldError (ErrLeaseHeld).
func (db *DB) AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (Lease, error) {
	tx, err := db.begin(ctx)
	if err != nil {
		return Lease{}, classify("acquire lease", db.path, err)
	}
	defer tx.Rollback()
	cur, err := readLease(ctx, tx)
	if err != nil {
		return Lease{}, classify("acquire lease", db.path, err)
	}
	if cur.Owner != "" && cur.Owner != owner && !db.locked && now.Before(cur.Expires) {
		holder, err := scanOwner(tx.QueryRowContext(ctx, `SELECT id, role, host, pid, started_ms, renewed_ms, expires_ms
			FROM owners WHERE id = ?`, cur.Owner))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return Lease{}, classify("acquire lease", db.path, err)
		case holder.Live(now):
			return Lease{}, fmt.Errorf("acquire lease: %w", &LeaseHeldError{Lease: cur, Holder: holder})
		}
	}
	l := Lease{Epoch: cur.Epoch + 1, Owner: owner, Since: now, Expires: now.Add(ttl)}
	_, err = tx.ExecContext(ctx, "UPDATE lease SET epoch = ?, owner = ?, since_ms = ?, expires_ms = ? WHERE id = 1",
		l.Epoch, l.Owner, now.UnixMilli(), l.Expires.UnixMilli())
	if err != nil {
		return Lease{}, classify("acquire lease", db.path, err)
	}
	if err := tx.Commit(); err != nil {
		return Lease{}, classify("acquire lease", db.path, err)
	}
	return l, nil
}

// RenewLease extends the lease of owner at epoch, and owner's registration, to now+ttl
// in one transaction. When another owner or a later epoch holds the lease, it returns a
// *FencedError (ErrFenced): the caller must stop triggering. The leader's own
// registration having lapsed (a pause) does not fence it: the lease is what it leads by.
func (db *DB) RenewLease(ctx context.Context, owner string, epoch int64, now time.Time, ttl time.Duration) (Lease, error) {
	tx, err := db.begin(ctx)
	if err != nil {
		return Lease{}, classify("renew lease", db.path, err)
	}
	defer tx.Rollback()
	cur, err := readLease(ctx, tx)
	if err != nil {
		return Lease{}, classify("renew lease", db.path, err)
	}
	if err := leaseFence(cur, Holder{Owner: owner, Epoch: epoch}); err != nil {
		return Lease{}, fmt.Errorf("renew lease: %w", err)
	}
	cur.Expires = now.Add(ttl)
	if _, err := tx.ExecContext(ctx, "UPDATE lease SET expires_ms = ? WHERE id = 1", cur.Expires.UnixMilli()); err != nil {
		return Lease{}, classify("renew lease", db.path, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE owners SET renewed_ms = ?, expires_ms = ? WHERE id = ?",
		now.UnixMilli(), cur.Expires.UnixMilli(), owner); err != nil {
		return Lease{}, classify("renew lease", db.path, err)
	}
	if err := tx.Commit(); err != nil {
		return Lease{}, classify("renew lease", db.path, err)
	}
	return cur, nil
}

// ReleaseLease gives the lease up (a clean exit) when owner still holds it at epoch,
// so that a standby need not wait for it to expire; the epoch stays.
func (db *DB) ReleaseLease(ctx context.Context, owner string, epoch int64, now time.Time) error {
	_, err := db.exec(ctx, "UPDATE lease SET owner = NULL, expires_ms = ? WHERE id = 1 AND owner = ? AND epoch = ?",
		now.UnixMilli(), owner, epoch)
	return classify("release lease", db.path, err)
}

// CurrentLease returns the lease row as it is.
func (db *DB) CurrentLease(ctx context.Context) (Lease, error) {
	l, err := readLease(ctx, db.sql)
	if err != nil {
		return Lease{}, classify("read lease", db.path, err)
	}
	return l, nil
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readLease(ctx context.Context, q rowQuerier) (Lease, error) {
	var l Lease
	var owner sql.NullString
	var since, expires int64
	err := q.QueryRowContext(ctx, "SELECT epoch, owner, since_ms, expires_ms FROM lease WHERE id = 1").Scan(&l.Epoch, &owner, &since, &expires)
	l.Owner, l.Since, l.Expires = owner.String, fromMS(since), fromMS(expires)
	return l, err
}

// leaseFence is nil when by still holds lease cur.
func leaseFence(cur Lease, by Holder) error {
	if cur.Owner == by.Owner && cur.Epoch == by.Epoch {
		return nil
	}
	why := fmt.Sprintf("the lease is now at epoch %d", cur.Epoch)
	switch {
	case cur.Owner == "":
		why += " and nobody holds it"
	case cur.Owner != by.Owner:
		why += ", held by owner " + cur.Owner
	}
	return &FencedError{Owner: by.Owner, Epoch: by.Epoch, Why: why}
}

// checkHolder is Admit's fence, inside its transaction: the leader must still hold the
// lease at its epoch; any other named owner must still be registered and live at now.
func checkHolder(ctx context.Context, tx *sql.Tx, by Holder, now time.Time) error {
	switch {
	case by.Epoch != 0:
		cur, err := readLease(ctx, tx)
		if err != nil {
			return err
		}
		return leaseFence(cur, by)
	case by.Owner != "":
		var expires int64
		err := tx.QueryRowContext(ctx, "SELECT expires_ms FROM owners WHERE id = ?", by.Owner).Scan(&expires)
		if errors.Is(err, sql.ErrNoRows) {
			return &FencedError{Owner: by.Owner, Why: "its registration was removed"}
		}
		if err != nil {
			return err
		}
		if !now.Before(fromMS(expires)) {
			return &FencedError{Owner: by.Owner, Why: "its registration expired at " + fromMS(expires).Format(time.RFC3339Nano)}
		}
	}
	return nil
}
