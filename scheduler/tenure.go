package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"hexcron/clock"
	"hexcron/state"
)

// DefaultOwnerTTL is how long an owner registration (and the daemon's lease) lives
// without renewal; it is renewed every third of it.
const DefaultOwnerTTL = 15 * time.Second

// TenureStore is what a Tenure needs of the database (*state.DB).
type TenureStore interface {
	RegisterOwner(ctx context.Context, role state.Role, host string, pid int, now time.Time, ttl time.Duration) (state.Owner, error)
	RenewOwner(ctx context.Context, id string, now time.Time, ttl time.Duration) (time.Time, error)
	ReleaseOwner(ctx context.Context, id string) error
	AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (state.Lease, error)
	RenewLease(ctx context.Context, owner string, epoch int64, now time.Time, ttl time.Duration) (state.Lease, error)
	ReleaseLease(ctx context.Context, owner string, epoch int64, now time.Time) error
}

// TenureConfig describes the process registering.
type TenureConfig struct {
	Store TenureStore
	Role  state.Role // daemon or trigger
	Lead  bool       // take the lease: the daemon that triggers schedules
	Host  string     // for people reading the owners table
	PID   int
	Clock clock.Clock   // default clock.System
	TTL   time.Duration // default DefaultOwnerTTL
	// Logger receives a WARN when a renewal fails for a reason other than fencing
	// (default: discarded). Fencing itself is reported by whoever watches Lost.
	Logger *slog.Logger
}

// Tenure is this process's right to admit triggers: its owner row and, for the leading
// daemon, the lease and its epoch. Keep renews both; Check is the local test made
// before every admission (the database checks again inside the admission's
// transaction). Once fenced, a Tenure stays fenced.
type Tenure struct {
	cfg   TenureConfig
	owner state.Owner
	epoch int64

	expires atomic.Int64 // unix ns on cfg.Clock: the earlier of the registration's and the lease's expiry

	lostOnce sync.Once
	lost     chan struct{}
	lostErr  error // set before lost is closed
}

// Register records this process as an owner (and, with cfg.Lead, takes the lease).
func Register(ctx context.Context, cfg TenureConfig) (*Tenure, error) {
	if cfg.Store == nil {
		return nil, errors.New("register owner: no store")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultOwnerTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Clock.Now()
	o, err := cfg.Store.RegisterOwner(ctx, cfg.Role, cfg.Host, cfg.PID, now, cfg.TTL)
	if err != nil {
		return nil, err
	}
	t := &Tenure{cfg: cfg, owner: o, lost: make(chan struct{})}
	t.expires.Store(o.Expires.UnixNano())
	if cfg.Lead {
		l, err := cfg.Store.AcquireLease(ctx, o.ID, now, cfg.TTL)
		if err != nil {
			_ = cfg.Store.ReleaseOwner(context.WithoutCancel(ctx), o.ID)
			return nil, err
		}
		t.epoch = l.Epoch
		t.expires.Store(min(o.Expires.UnixNano(), l.Expires.UnixNano()))
	}
	return t, nil
}

// Owner is this process's owner id.
func (t *Tenure) Owner() string { return t.owner.ID }

// Epoch is the lease epoch this process leads under (0 when it does not lead).
func (t *Tenure) Epoch() int64 { return t.epoch }

// Holder is what Admit checks: the owner id and the epoch.
func (t *Tenure) Holder() state.Holder { return state.Holder{Owner: t.owner.ID, Epoch: t.epoch} }

// Lost is closed when the process is fenced; Err then says why.
func (t *Tenure) Lost() <-chan struct{} { return t.lost }

// Err is the fencing error once Lost is closed, else nil.
func (t *Tenure) Err() error {
	select {
	case <-t.lost:
		return t.lostErr
	default:
		return nil
	}
}

// Check is nil while this process may admit at now: it is not fenced and its last
// successful renewal still covers now. Otherwise it returns the fencing error (matching
// state.ErrFenced), or an error saying the renewals are late.
func (t *Tenure) Check(now time.Time) error {
	if err := t.Err(); err != nil {
		return err
	}
	if exp := time.Unix(0, t.expires.Load()); !now.Before(exp) {
		return &notRenewedError{owner: t.owner.ID, epoch: t.epoch, until: exp}
	}
	return nil
}

// errNotRenewed matches a Check that failed only because the last renewal is too old
// (the database is unreachable or slow): not fenced, it may admit again once renewed.
var errNotRenewed = errors.New("not renewed in time")

type notRenewedError struct {
	owner string
	epoch int64
	until time.Time
}

func (e *notRenewedError) Error() string {
	return fmt.Sprintf("owner %s (lease epoch %d) was last renewed for until %s: renewals are failing or late; not admitting until one succeeds",
		e.owner, e.epoch, e.until.UTC().Format(time.RFC3339Nano))
}

func (e *notRenewedError) Is(target error) bool { return target == errNotRenewed }

// lapsed makes the next Ensure renew (the database said the lease expired by its clock).
func (t *Tenure) lapsed() { t.expires.Store(0) }

// fence marks the tenure lost (once) with err.
func (t *Tenure) fence(err error) {
	t.lostOnce.Do(func() {
		t.lostErr = err
		close(t.lost)
	})
}

// Keep renews the registration (and the lease) every TTL/3 until ctx ends or the
// process is fenced.
func (t *Tenure) Keep(ctx context.Context) {
	c := t.cfg.Clock
	failing := false
	for {
		if err := clock.Sleep(ctx, c, t.cfg.TTL/3); err != nil {
			return
		}
		select {
		case <-t.lost:
			return
		default:
		}
		if err := t.renew(ctx, c.Now()); err != nil {
			if errors.Is(err, state.ErrFenced) {
				t.fence(err)
				return
			}
			if ctx.Err() != nil {
				return
			}
			// Once per streak of failures: the database being down is reported by
			// whoever depends on it (the daemon logs the outage once).
			level := slog.LevelWarn
			if failing {
				level = slog.LevelDebug
			}
			failing = true
			t.cfg.Logger.Log(ctx, level, "could not renew this process's registration in the database; retrying "+
				"(it admits nothing while its last renewal has expired)", keyErr, err)
			continue
		}
		if failing {
			t.cfg.Logger.Info("renewed this process's registration in the database again")
			failing = false
		}
	}
}

// renew extends the registration: the leader's through the lease (one transaction
// renews both), anyone else's directly.
func (t *Tenure) renew(ctx context.Context, now time.Time) error {
	var exp time.Time
	if t.cfg.Lead {
		l, err := t.cfg.Store.RenewLease(ctx, t.owner.ID, t.epoch, now, t.cfg.TTL)
		if err != nil {
			return err
		}
		exp = l.Expires
	} else {
		var err error
		if exp, err = t.cfg.Store.RenewOwner(ctx, t.owner.ID, now, t.cfg.TTL); err != nil {
			return err
		}
	}
	t.expires.Store(exp.UnixNano())
	return nil
}

// Ensure is nil when this process may admit at now: Check passes, or a renewal made
// now succeeds (after a pause longer than the renewal period, for instance). A fencing
// error fences the tenure for good.
func (t *Tenure) Ensure(ctx context.Context, now time.Time) error {
	if t.Check(now) == nil {
		return nil
	}
	if err := t.Err(); err != nil {
		return err
	}
	if err := t.renew(ctx, now); err != nil {
		if errors.Is(err, state.ErrFenced) {
			t.fence(err)
		}
		return err
	}
	return nil
}

// Release gives the lease up and deletes the owner row (a clean exit), so that what
// this process left triggering is settled at once by the daemon.
func (t *Tenure) Release(ctx context.Context) error {
	var errs []error
	if t.cfg.Lead && t.Err() == nil {
		errs = append(errs, t.cfg.Store.ReleaseLease(ctx, t.owner.ID, t.epoch, t.cfg.Clock.Now()))
	}
	errs = append(errs, t.cfg.Store.ReleaseOwner(ctx, t.owner.ID))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release owner %s: %w", t.owner.ID, err)
	}
	return nil
}
