package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/state"
)

// A database that cannot be reached (state.ErrUnreachable: PostgreSQL restarting, a
// network cut) is a fault like any other, and the daemon rides it out:
//
//   - nothing is triggered: admission needs the database, and the Hex client waits
//     and asks again (hexclient.ErrLedgerUnavailable) while the slot's window lasts;
//   - the outage is logged once as an ERROR when it starts and once as INFO when it
//     ends; every other line it causes is logged at DEBUG (demoteHandler);
//   - what the daemon records meanwhile (a slot planned, skipped, triggered, a run's
//     progress and end) is kept in memory, in order, and written when the database
//     answers again (guardedStore), so that no slot is lost and none left triggering;
//   - the runs in flight keep being polled from the last list of active runs read,
//     updated with what was kept;
//   - the same holds while the daemon's lease is not renewed (a pause, the database
//     slow): what it decides is kept until the renewal succeeds, and dropped when it
//     turns out another daemon took the lease (that one decides those slots).

// maxKept bounds the writes kept during an outage; past it the oldest are dropped
// with an ERROR (an outage that long has left the slots' windows anyway).
const maxKept = 10000

// guardedStore wraps the daemon's Store: see above.
type guardedStore struct {
	Store
	log    *slog.Logger // not demoted: the outage's own lines
	clock  clock.Clock
	tenure *Tenure // nil: no lease to hold writes back for

	mu       sync.Mutex
	down     bool
	since    time.Time
	kept     []keptWrite
	dropped  int
	active   map[string]state.Slot // last ActiveRuns read, with the writes since applied
	haveRuns bool
}

// keptWrite is one write waiting for the database.
type keptWrite struct {
	what  string
	slot  string
	apply func(ctx context.Context, st Store) error
}

func newGuardedStore(st Store, log *slog.Logger, c clock.Clock, t *Tenure) *guardedStore {
	return &guardedStore{Store: st, log: log, clock: c, tenure: t, active: map[string]state.Slot{}}
}

// holdLocked reports whether writes must wait: the lease is not renewed in time. A
// fenced tenure drops what was kept: the daemon that took the lease decides.
func (g *guardedStore) holdLocked() bool {
	if g.tenure == nil {
		return false
	}
	if err := g.tenure.Err(); err != nil {
		if len(g.kept) > 0 {
			g.log.Info("writes kept while the lease was not renewed are dropped: another daemon leads", "dropped", len(g.kept))
			g.kept = nil
		}
		return true
	}
	return g.tenure.Check(g.clock.Now()) != nil
}

// Down reports whether the database is unreachable now (as last seen).
func (g *guardedStore) Down() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.down
}

// observe notes the result of one call: the first unreachable error starts an outage
// (one ERROR), a success ends it (one INFO).
func (g *guardedStore) observe(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.observeLocked(err)
}

func (g *guardedStore) observeLocked(err error) {
	switch {
	case errors.Is(err, state.ErrUnreachable):
		if !g.down {
			g.down, g.since = true, g.clock.Now()
			g.log.Error("the database is unreachable: nothing is triggered until it answers again; "+
				"runs in flight are still tracked and what happens meanwhile is written when it is back; retrying", keyErr, err)
		}
	case err == nil || !isTransient(err):
		if g.down {
			g.down = false
			g.log.Info("the database answers again", "outage", g.clock.Now().Sub(g.since).Round(time.Millisecond), "kept_writes", len(g.kept))
		}
	}
}

// isTransient reports errors that say nothing about the database's reachability
// (a stop in progress).
func isTransient(err error) bool {
	return errors.Is(err, context.Canceled)
}

// flushLocked writes the kept writes in order until one meets the outage again.
func (g *guardedStore) flushLocked(ctx context.Context) {
	for len(g.kept) > 0 {
		w := g.kept[0]
		err := w.apply(ctx, g.Store)
		g.observeLocked(err)
		if errors.Is(err, state.ErrUnreachable) || isTransient(err) {
			return
		}
		if err != nil {
			g.log.Error("a write kept during the database outage was refused", "what", w.what, keySlot, w.slot, keyErr, err)
		}
		g.kept = g.kept[1:]
	}
	if g.dropped > 0 {
		g.log.Error("writes kept during the database outage were dropped (too many)", "dropped", g.dropped)
		g.dropped = 0
	}
}

// write runs one write: after the kept ones (which go first), or kept itself when the
// database cannot be reached. A kept write returns nil: it will be applied in order.
func (g *guardedStore) write(ctx context.Context, what, slot string, apply func(ctx context.Context, st Store) error) error {
	g.mu.Lock()
	held := g.holdLocked()
	if g.tenure != nil && g.tenure.Err() != nil {
		g.mu.Unlock()
		return nil // fenced: the daemon that leads decides this slot
	}
	if len(g.kept) > 0 && !held {
		g.flushLocked(ctx)
	}
	if held || len(g.kept) > 0 {
		g.keepLocked(keptWrite{what: what, slot: slot, apply: apply})
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	// The common case, without holding the lock across the database call.
	err := apply(ctx, g.Store)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.observeLocked(err)
	if !errors.Is(err, state.ErrUnreachable) {
		return err
	}
	g.keepLocked(keptWrite{what: what, slot: slot, apply: apply})
	return nil
}

func (g *guardedStore) keepLocked(w keptWrite) {
	if len(g.kept) >= maxKept {
		g.kept = g.kept[1:]
		g.dropped++
	}
	g.kept = append(g.kept, w)
}

// Flush writes what was kept, if the database answers (called as the loop wakes).
func (g *guardedStore) Flush(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.kept) > 0 && !g.holdLocked() {
		g.flushLocked(ctx)
	}
}

// Kept is the number of writes waiting for the database.
func (g *guardedStore) Kept() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.kept)
}

// Transition is Store.Transition, kept during an outage.
func (g *guardedStore) Transition(ctx context.Context, key string, to state.State, u state.Update) error {
	err := g.write(ctx, "transition to "+string(to), key, func(ctx context.Context, st Store) error {
		return st.Transition(ctx, key, to, u)
	})
	if err == nil {
		g.noteRun(key, to, u)
	}
	return err
}

// SkipSlot is Store.SkipSlot, kept during an outage.
func (g *guardedStore) SkipSlot(ctx context.Context, s state.Slot, reason string, at time.Time) error {
	err := g.write(ctx, "skip", s.Key, func(ctx context.Context, st Store) error { return st.SkipSlot(ctx, s, reason, at) })
	if err == nil {
		g.noteRun(s.Key, state.StateSkipped, state.Update{})
	}
	return err
}

// PlanSlot is Store.PlanSlot, kept during an outage (then reporting no row created).
func (g *guardedStore) PlanSlot(ctx context.Context, s state.Slot, now time.Time) (bool, error) {
	var created bool
	err := g.write(ctx, "plan", s.Key, func(ctx context.Context, st Store) error {
		var err error
		created, err = st.PlanSlot(ctx, s, now)
		return err
	})
	return created, err
}

// noteRun applies a write to the list of active runs kept for the poller.
func (g *guardedStore) noteRun(key string, to state.State, u state.Update) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if to != state.StateTriggered && to != state.StateRunning {
		delete(g.active, key)
		return
	}
	r, ok := g.active[key]
	if !ok {
		s, err := state.ParseSlotKey(key)
		if err != nil {
			return
		}
		r = s
	}
	r.State = to
	if u.RunID != "" {
		r.RunID, r.RunURL = u.RunID, u.RunURL
	}
	if !u.Triggered.IsZero() {
		r.Triggered = u.Triggered
	}
	if !u.Started.IsZero() {
		r.Started = u.Started
	}
	if u.Project != "" {
		r.Project = u.Project
	}
	if u.Timeout != 0 {
		r.Timeout = u.Timeout
	}
	if r.RunID == "" {
		return // nothing to poll
	}
	g.active[key] = r
}

// ActiveRuns is Store.ActiveRuns; during an outage it answers from the last list read,
// with the writes kept since applied, so that runs in flight are still polled.
func (g *guardedStore) ActiveRuns(ctx context.Context) ([]state.Slot, error) {
	g.Flush(ctx)
	runs, err := g.Store.ActiveRuns(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.observeLocked(err)
	if err == nil {
		if len(g.kept) == 0 {
			clear(g.active)
			for _, r := range runs {
				g.active[r.Key] = r
			}
			g.haveRuns = true
		}
		return runs, nil
	}
	if !errors.Is(err, state.ErrUnreachable) || !g.haveRuns {
		return nil, err
	}
	out := make([]state.Slot, 0, len(g.active))
	for _, r := range g.active {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Planned.Equal(out[j].Planned) {
			return out[i].Planned.Before(out[j].Planned)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// The reads and the other writes only report what they meet.

func (g *guardedStore) Heartbeat(ctx context.Context) (time.Time, bool, error) {
	t, ok, err := g.Store.Heartbeat(ctx)
	g.observe(err)
	return t, ok, err
}

func (g *guardedStore) SetHeartbeat(ctx context.Context, t time.Time) error {
	g.Flush(ctx)
	err := g.Store.SetHeartbeat(ctx, t)
	g.observe(err)
	return err
}

func (g *guardedStore) Attempts(ctx context.Context, since time.Time) ([]state.Attempt, error) {
	as, err := g.Store.Attempts(ctx, since)
	g.observe(err)
	return as, err
}

func (g *guardedStore) History(ctx context.Context, f state.Filter) ([]state.Slot, error) {
	ss, err := g.Store.History(ctx, f)
	g.observe(err)
	return ss, err
}

func (g *guardedStore) SlotsInState(ctx context.Context, states ...state.State) ([]state.Slot, error) {
	ss, err := g.Store.SlotsInState(ctx, states...)
	g.observe(err)
	return ss, err
}

func (g *guardedStore) ClaimedRun(ctx context.Context, runID string) (string, bool, error) {
	k, ok, err := g.Store.ClaimedRun(ctx, runID)
	g.observe(err)
	return k, ok, err
}

func (g *guardedStore) BudgetUsed(ctx context.Context, now time.Time, windows []time.Duration) ([]int, error) {
	u, err := g.Store.BudgetUsed(ctx, now, windows)
	g.observe(err)
	return u, err
}

func (g *guardedStore) Owners(ctx context.Context) ([]state.Owner, error) {
	o, err := g.Store.Owners(ctx)
	g.observe(err)
	return o, err
}

// demoteHandler logs at DEBUG the WARN and ERROR lines whose error is the database
// being unreachable (or the ledger unavailable because of it): the outage has its own
// ERROR line, once.
type demoteHandler struct{ slog.Handler }

func (h demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || !aboutOutage(r) {
		return h.Handler.Handle(ctx, r)
	}
	if !h.Handler.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	d := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool { d.AddAttrs(a); return true })
	return h.Handler.Handle(ctx, d)
}

func (h demoteHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteHandler{h.Handler.WithAttrs(as)}
}

func (h demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{h.Handler.WithGroup(name)}
}

func aboutOutage(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && (errors.Is(err, state.ErrUnreachable) || errors.Is(err, hexclient.ErrLedgerUnavailable)) {
			found = true
			return false
		}
		return true
	})
	return found
}
