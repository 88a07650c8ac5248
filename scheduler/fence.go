package scheduler

import (
	"context"
	"sync"
	"time"

	"hexcron/state"
)

// keepTenure starts renewing the daemon's registration and lease; the returned
// function stops it.
func (d *Daemon) keepTenure(ctx context.Context) func() {
	t := d.cfg.Tenure
	if t == nil {
		return func() {}
	}
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); t.Keep(kctx) }()
	return func() { cancel(); <-done }
}

// tenureLost is closed when the daemon is fenced (never, without a Tenure).
func (d *Daemon) tenureLost() <-chan struct{} {
	if d.cfg.Tenure == nil || d.fenced {
		return nil
	}
	return d.cfg.Tenure.Lost()
}

// fence stops all triggering for good: another daemon took the database's lease (or
// this one's registration lapsed). It logs one ERROR; what this daemon had planned is
// left to the leader.
func (d *Daemon) fence(err error) {
	if d.fenced {
		return
	}
	d.fenced = true
	d.plan = nil
	clear(d.extra)
	clear(d.unplaced)
	clear(d.held)
	clear(d.queued)
	d.cfg.Metrics.SetLeader(false)
	if d.gw != nil {
		clear(d.gw.firings)
		d.closeGateway("this hexcron daemon no longer leads its database")
	}
	if d.cfg.Shared {
		d.log.Error("this daemon lost the lease: another hexcron daemon took over (this one was paused, cut off or too slow "+
			"to renew past its lease); it triggers nothing and stands by again", keyErr, err)
		d.cfg.Notifier.Notify("STATUS=standby: lost the lease to another hexcron daemon")
		return
	}
	d.log.Error("this daemon no longer leads the database: it triggers nothing from now on. "+
		"Another hexcron daemon took its lease (two daemons reached one database, or this one was paused past its lease); "+
		"stop this one", keyErr, err)
	d.cfg.Notifier.Notify("STATUS=fenced: another hexcron daemon leads this database; triggering stopped")
}

// releaseTenure gives up the lease and the owner row on a clean stop.
func (d *Daemon) releaseTenure(ctx context.Context) {
	if d.cfg.Tenure == nil {
		return
	}
	if err := d.cfg.Tenure.Release(ctx); err != nil {
		d.log.Warn("could not release the lease at stop; the next start takes it over anyway", keyErr, err)
	}
}

// me is the daemon's owner id ("" without a Tenure).
func (d *Daemon) me() string {
	if d.cfg.Tenure == nil {
		return ""
	}
	return d.cfg.Tenure.Owner()
}

// settleSet tracks the slots a settle goroutine is working on, so that one slot is
// never settled twice at once. The zero value is ready to use.
type settleSet struct {
	mu    sync.Mutex
	slots map[string]bool
}

// begin reports whether key was not being settled, and marks it.
func (s *settleSet) begin(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slots[key] {
		return false
	}
	if s.slots == nil {
		s.slots = map[string]bool{}
	}
	s.slots[key] = true
	return true
}

func (s *settleSet) end(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.slots, key)
}

// liveOwners returns the ids of the owner rows live at now.
func (d *Daemon) liveOwners(ctx context.Context, now time.Time) (map[string]state.Owner, error) {
	owners, err := d.cfg.Store.Owners(ctx)
	if err != nil {
		return nil, err
	}
	live := make(map[string]state.Owner, len(owners))
	for _, o := range owners {
		if o.Live(now) {
			live[o.ID] = o
		}
	}
	return live, nil
}

// settleOrphans runs with every heartbeat: a slot left triggering by another process
// (a `hexcron trigger`) is settled once that process's registration is gone (a clean
// exit that left an outcome unknown) or expired (it died or hung), as recovery settles
// a slot a crashed daemon left. Slots without an owner are only settled at start.
func (d *Daemon) settleOrphans(ctx context.Context, now time.Time) {
	if d.fenced || d.stopping {
		return
	}
	pending, err := d.cfg.Store.SlotsInState(ctx, state.StateTriggering)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("look for orphaned triggers", keyErr, err)
		}
		return
	}
	var live map[string]state.Owner
	for _, p := range pending {
		if p.Owner == "" || p.Owner == d.me() {
			continue
		}
		if _, ok := d.inflight[p.Key]; ok {
			continue
		}
		if live == nil {
			if live, err = d.liveOwners(ctx, now); err != nil {
				if ctx.Err() == nil {
					d.log.Error("look for orphaned triggers", keyErr, err)
				}
				return
			}
		}
		if _, ok := live[p.Owner]; ok {
			continue
		}
		d.startSettle(ctx, p, "recovering a trigger its process left (its registration is gone)")
	}
}

// startSettle settles p in a goroutine unless another goroutine already does.
func (d *Daemon) startSettle(ctx context.Context, p state.Slot, msg string) {
	if !d.settling.begin(p.Key) {
		return
	}
	d.log.Info(msg, keySchedule, p.Schedule, keySlot, p.Key, "last_attempt", d.local(p.LastAttempt), "owner", p.Owner)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.settling.end(p.Key)
		// ctx, not trigCtx: a stop must not wait out the reconcile delay (and its
		// retries); an unsettled slot stays triggering for the next start.
		d.settle(ctx, p)
	}()
}
