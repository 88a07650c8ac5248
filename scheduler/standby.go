package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"hexcron/clock"
	"hexcron/state"
)

// LeaseStore is what standing by needs of the database: the tenure's calls, the lease
// as it is, and the owners (to name the leader).
type LeaseStore interface {
	TenureStore
	CurrentLease(ctx context.Context) (state.Lease, error)
	Owners(ctx context.Context) ([]state.Owner, error)
}

// LeadConfig describes a daemon that leads or stands by on a shared database.
type LeadConfig struct {
	Store LeaseStore
	// Tenure is the registration each term of leadership takes (Role daemon, Lead
	// true; Store is set from Store).
	Tenure   TenureConfig
	Notifier Notifier // default NopNotifier
	Metrics  *Metrics
	Logger   *slog.Logger
	// Run leads under t until ctx ends (it returns nil) or t is fenced (it returns an
	// error matching state.ErrFenced): it builds and runs the Daemon, Shared set.
	Run func(ctx context.Context, t *Tenure) error
}

// Lead runs a daemon that shares its database with standbys (PostgreSQL): it stands by
// (READY=1 and healthy to systemd, STATUS=standby, hexcron_leader 0) while another
// daemon holds a live lease, takes the lease as soon as it lapses (on the database
// server's clock) or is released, leads through cfg.Run (which runs the normal crash
// recovery first), and stands by again when fenced. It returns when ctx ends, or with
// cfg.Run's error other than fencing.
func Lead(ctx context.Context, cfg LeadConfig) error {
	if cfg.Notifier == nil {
		cfg.Notifier = NopNotifier{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tenure.Clock == nil {
		cfg.Tenure.Clock = clock.System{}
	}
	if cfg.Tenure.TTL <= 0 {
		cfg.Tenure.TTL = DefaultOwnerTTL
	}
	cfg.Tenure.Store, cfg.Tenure.Role, cfg.Tenure.Lead = cfg.Store, state.RoleDaemon, true
	for {
		cfg.Metrics.SetLeader(false)
		t, err := standBy(ctx, cfg)
		if err != nil {
			return nil // ctx ended
		}
		cfg.Metrics.SetLeader(true)
		cfg.Logger.Info("this daemon leads: it took the lease", "epoch", t.Epoch(), "owner", t.Owner())
		err = cfg.Run(ctx, t)
		switch {
		case ctx.Err() != nil:
			return err
		case errors.Is(err, state.ErrFenced):
			// Fenced: Run said why, once. Stand by again, with a new registration.
		case errors.Is(err, state.ErrUnreachable):
			// The database went away while the term started (its first reads): give
			// the lease up if it can be, and stand by until the database answers.
			cfg.Logger.Error("the database became unreachable while this daemon took over; standing by again", keyErr, err)
			_ = t.Release(context.WithoutCancel(ctx))
		default:
			return err
		}
	}
}

// standBy waits until this process takes the lease, and returns its tenure; it
// returns ctx's error when ctx ends first.
func standBy(ctx context.Context, cfg LeadConfig) (*Tenure, error) {
	c := cfg.Tenure.Clock
	log := cfg.Logger
	var shown string   // the leader last announced
	var unreached bool // the database was unreachable at the last try
	for {
		now := c.Now()
		l, err := cfg.Store.CurrentLease(ctx)
		if err == nil && (l.Owner == "" || !now.Before(l.Expires)) {
			var t *Tenure
			t, err = Register(ctx, cfg.Tenure)
			if err == nil {
				return t, nil
			}
			if errors.Is(err, state.ErrLeaseHeld) {
				err = nil // another standby was quicker: read the lease again
				l, err = cfg.Store.CurrentLease(ctx)
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			if !unreached {
				log.Error("standing by: cannot read the lease; retrying", keyErr, err)
				cfg.Notifier.Notify("READY=1")
				cfg.Notifier.Notify("STATUS=standby: the database is unreachable")
				unreached, shown = true, ""
			}
		default:
			if unreached {
				log.Info("standing by: the database answers again")
				unreached = false
			}
			if who := leaderText(ctx, cfg.Store, l); who != shown {
				shown = who
				log.Info("standing by: "+who, "epoch", l.Epoch, "expires", l.Expires)
				cfg.Notifier.Notify("READY=1")
				cfg.Notifier.Notify("STATUS=standby: " + who)
			}
		}
		// Wake when the lease would lapse (a little after, for the clocks' sake),
		// and at least every third of the TTL (a release, a takeover elsewhere).
		wait := cfg.Tenure.TTL / 3
		if err == nil && l.Owner != "" {
			wait = min(wait, l.Expires.Sub(now)+100*time.Millisecond)
		}
		if err := clock.Sleep(ctx, c, max(wait, 50*time.Millisecond)); err != nil {
			return nil, err
		}
	}
}

// leaderText names the leader for people: "hexcron on HOST (pid N) leads since T".
func leaderText(ctx context.Context, st LeaseStore, l state.Lease) string {
	if l.Owner == "" {
		return "nobody leads"
	}
	since := l.Since.UTC().Format(time.RFC3339)
	owners, err := st.Owners(ctx)
	if err == nil {
		for _, o := range owners {
			if o.ID == l.Owner {
				return fmt.Sprintf("hexcron on %s (pid %d) leads since %s", o.Host, o.PID, since)
			}
		}
	}
	return fmt.Sprintf("owner %s leads since %s", l.Owner, since)
}
