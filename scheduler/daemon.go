package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hexcron/budget"
	"hexcron/clock"
	"hexcron/planner"
	"hexcron/state"
)

// Config holds the daemon's dependencies; New fills the defaults.
type Config struct {
	Clock    clock.Clock
	Logger   *slog.Logger
	Store    Store
	Hex      Hex
	Notifier Notifier
	Metrics  *Metrics // nil: metrics off

	// Load reads and fully validates the schedules file; it is called at start and on
	// every reload.
	Load func() (*planner.Config, error)

	// Horizon is how far ahead each plan looks (default 2h); Replan is how often the
	// plan is rebuilt as the horizon rolls (default 10m).
	Horizon, Replan time.Duration
	// Heartbeat is how often the daemon records that it is alive, which catch-up reads
	// after downtime (default 30s).
	Heartbeat time.Duration
	// Reconcile is how long after an interrupted attempt recovery waits before it asks
	// Hex whether the run exists: the attempt's timeout plus Hex's visibility delay
	// (default 45s).
	Reconcile time.Duration
	// Grace is how long SIGTERM lets triggers already in flight finish (default 10s).
	Grace time.Duration
	// NoPreflight turns off the preflight (Check) at start and on reload.
	NoPreflight bool
	// PauseCheck is how often the loop reads the pauses `hexcron pause` writes (default
	// 5s); it also reads them before it acts on a due firing.
	PauseCheck time.Duration
	// Version is hexcron's version, for the start line.
	Version string
	// Tenure is the daemon's registration and lease (see Register): Run keeps it
	// renewed, stops triggering when it is fenced, and releases it on a clean stop. Its
	// ledger must admit under it. nil: no fencing (tests).
	Tenure *Tenure
	// Shared is set when the database is on a server that several machines share
	// (PostgreSQL), where other daemons stand by and the connection can be lost:
	//   - once fenced, Run stops triggering at once, lets its triggers end, and returns
	//     an error matching state.ErrFenced, so that the process stands by again (see
	//     Lead); without it a fenced daemon keeps running, triggering nothing, until
	//     stopped;
	//   - an unreachable database is an outage the daemon rides out (outage.go).
	Shared bool
	// Gateway is the database of the trigger gateway's requests (see Submit); nil
	// turns the gateway's path off.
	Gateway GatewayStore
}

// Daemon is the scheduling loop. Run it once.
type Daemon struct {
	cfg   Config
	guard *guardedStore // cfg.Store when Shared: rides out database outages (outage.go)
	log   *slog.Logger  // lines about the database being unreachable are logged at DEBUG

	mu   sync.Mutex
	conf *planner.Config

	// Owned by the loop goroutine.
	plan       []planner.Firing
	extra      map[string]planner.Firing   // catch-up and re-trigger firings, by slot
	unplaced   map[string]planner.Unplaced // seen unplaced, by slot, until their window closes
	announced  map[string]time.Time        // slot -> planned instant last logged
	inflight   map[string]planner.Firing   // triggers running in goroutines, by slot
	queued     map[string]planner.Firing   // overlap queue: series -> the one waiting firing
	held       map[string]planner.Firing   // max_running holds, by slot
	nextReplan time.Time
	nextPrune  time.Time   // when the next background prune starts (see retention.go)
	pruning    atomic.Bool // a prune is running
	stopping   bool        // shutdown has begun: start nothing new
	fenced     bool        // another daemon leads this database: trigger nothing (see fence.go)
	settling   settleSet
	reloads    reloadState // see reload.go
	pauses     pauseView   // see pause.go

	stopPreflight context.CancelFunc // cancels the running preflight (see projecthold.go)
	endTerm       context.CancelFunc // cancels Run's context (see yield)
	gw            *gatewayState      // the gateway's requests (see submit.go); nil without one

	flow        Trigger           // the trigger-and-record flow
	planReasons map[string]string // slot -> why it is planned where it is (shifted), until triggered
	shiftLogged map[string]bool   // slots whose move was logged at INFO (once each)

	alive atomic.Int64 // when the loop last ran (unix ns on the daemon's clock); read by Healthy

	events   chan event
	pollWake chan struct{}
	wg       sync.WaitGroup
}

// event is something a goroutine reports to the loop.
type event interface{}

type triggerDone struct {
	f   planner.Firing
	out Outcome
}

type runEnded struct{ series string }

type retrigger struct{ f planner.Firing }

// New checks cfg and fills its defaults.
func New(cfg Config) (*Daemon, error) {
	if cfg.Store == nil || cfg.Hex == nil || cfg.Load == nil {
		return nil, errors.New("scheduler: Store, Hex and Load are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Notifier == nil {
		cfg.Notifier = NopNotifier{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Horizon, 2*time.Hour)
	def(&cfg.Replan, 10*time.Minute)
	def(&cfg.Heartbeat, 30*time.Second)
	def(&cfg.Reconcile, 45*time.Second)
	def(&cfg.Grace, 10*time.Second)
	def(&cfg.PauseCheck, 5*time.Second)
	var guard *guardedStore
	if cfg.Shared {
		guard = newGuardedStore(cfg.Store, cfg.Logger, cfg.Clock, cfg.Tenure)
		cfg.Store = guard
	}
	d := &Daemon{
		planReasons: map[string]string{},
		shiftLogged: map[string]bool{},
		cfg:         cfg,
		guard:       guard,
		log:         slog.New(demoteHandler{cfg.Logger.Handler()}),
		extra:       map[string]planner.Firing{},
		unplaced:    map[string]planner.Unplaced{},
		announced:   map[string]time.Time{},
		inflight:    map[string]planner.Firing{},
		queued:      map[string]planner.Firing{},
		held:        map[string]planner.Firing{},
		events:      make(chan event, 64),
		pollWake:    make(chan struct{}, 1),
		gw:          newGatewayState(cfg.Gateway),
	}
	d.flow = Trigger{Store: cfg.Store, Hex: cfg.Hex, Clock: cfg.Clock, Logger: d.log, Local: d.local}
	return d, nil
}

// local shows t in the config's default time zone, as people read their schedules.
func (d *Daemon) local(t time.Time) time.Time {
	if c := d.config(); c != nil && c.Location != nil {
		return t.In(c.Location)
	}
	return t
}

// config returns the config in force.
func (d *Daemon) config() *planner.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conf
}

// Run loads the config, settles what a previous process left, catches up, and then
// fires the plan until ctx is done. A request on reload re-reads the config. Run returns
// nil after a clean stop.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	// A fenced daemon with standbys ends its own goroutines (recovery's included) and
	// returns: its context is cancelled then (see yield).
	ctx, d.endTerm = context.WithCancel(ctx)
	defer d.endTerm()
	conf, err := d.cfg.Load()
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	d.conf = conf
	c := d.cfg.Clock
	now := c.Now()
	d.metricsConfig(ctx, conf, now)

	lastAlive, _, err := d.cfg.Store.Heartbeat(ctx)
	if err != nil {
		return fmt.Errorf("read heartbeat: %w", err)
	}
	// Triggers run on their own context so that SIGTERM can let in-flight attempts
	// finish (and be recorded) for a grace period.
	trigCtx, stopTriggers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTriggers()

	if err := d.recoverSlots(ctx, trigCtx, now); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	d.pinRuns(ctx, conf, now)
	if err := d.catchUp(ctx, lastAlive, now); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if err := d.sweepPlanned(ctx, now); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if err := d.thinOpenWindows(ctx, now); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if err := d.restoreQueued(ctx, lastAlive, now); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if err := d.restoreGateway(ctx, now); err != nil {
		return fmt.Errorf("restore gateway requests: %w", err)
	}
	// Only now that every missed slot has a row: a process killed before this point
	// leaves the old heartbeat, and the next start catches up the same downtime.
	if err := d.cfg.Store.SetHeartbeat(ctx, now); err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	d.replan(ctx, now)
	d.cfg.Notifier.Notify("READY=1")
	d.cfg.Metrics.SetLeader(d.cfg.Tenure == nil || d.cfg.Tenure.Err() == nil)
	d.notifyStatus(ctx, now)
	d.log.Info("hexcron running", "version", d.cfg.Version, "schedules", len(conf.Schedules), "horizon", planner.FormatDuration(d.cfg.Horizon),
		"retention", planner.FormatDuration(conf.State.Retention), "firings_planned", len(d.plan))
	d.startPreflight(ctx, conf, true)
	d.startPrune(ctx, now)

	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); d.poll(pollCtx) }()
	stopKeep := d.keepTenure(ctx)
	defer stopKeep()

	nextBeat := now.Add(d.cfg.Heartbeat)
	watch := d.cfg.Notifier.WatchdogInterval()
	nextWatch := now
	for {
		now = c.Now()
		d.alive.Store(now.UnixNano())
		if watch > 0 && !now.Before(nextWatch) {
			d.cfg.Notifier.Notify("WATCHDOG=1")
			nextWatch = now.Add(watch)
		}
		if !now.Before(nextBeat) {
			if err := d.cfg.Store.SetHeartbeat(ctx, now); err != nil && ctx.Err() == nil {
				d.log.Error("write heartbeat", keyErr, err)
			}
			nextBeat = now.Add(d.cfg.Heartbeat)
			d.notifyStatus(ctx, now)
			if d.entitled(ctx, now) {
				d.settleOrphans(ctx, now)
				d.prunePauses(ctx, now)
			}
		}
		if !now.Before(d.pauses.next) {
			d.readPauses(ctx, now)
		}
		if !now.Before(d.nextReplan) {
			d.replan(ctx, now)
		}
		if !now.Before(d.nextPrune) {
			d.startPrune(ctx, now)
		}
		entitled := d.entitled(ctx, now)
		if entitled {
			d.fireDue(ctx, trigCtx, now)
			d.expire(ctx, now)
		}

		wake := minTime(minTime(minTime(d.nextReplan, nextBeat), d.nextPrune), d.pauses.next)
		if len(d.plan) > 0 {
			wake = minTime(wake, d.plan[0].Planned)
		}
		d.observeLoop(now)
		if watch > 0 {
			wake = minTime(wake, nextWatch)
		}
		for _, f := range d.held {
			wake = minTime(wake, f.Deadline.Add(time.Second))
		}
		if !entitled && !d.fenced {
			wake = minTime(wake, now.Add(time.Second)) // renew and act as soon as the lease allows
		}
		t := c.NewTimer(wake.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			stopPoll()
			<-pollDone
			return d.shutdown(trigCtx, stopTriggers)
		case <-reload:
			d.reload(ctx)
		case ev := <-d.events:
			d.handle(ctx, trigCtx, ev)
		case a := <-d.gwAsks():
			d.serveAsks(ctx, trigCtx, a)
		case <-d.tenureLost():
			d.fence(d.cfg.Tenure.Err())
		case <-t.C():
		}
		t.Stop()
		if d.fenced && d.cfg.Shared {
			stopPoll()
			<-pollDone
			return d.yield(stopTriggers)
		}
	}
}

// entitled reports whether the daemon may decide slots' fates at now (fire, skip,
// settle): always with a database of its own; with a shared one, while its lease
// covers now, renewing it when its last renewal is too old (after a pause, or while
// the database was unreachable). A daemon whose lease lapsed must not skip a slot
// another daemon may have taken over; once renewed, or fenced, it knows.
func (d *Daemon) entitled(ctx context.Context, now time.Time) bool {
	t := d.cfg.Tenure
	if !d.cfg.Shared || t == nil {
		return true
	}
	if d.fenced {
		return false
	}
	err := t.Ensure(ctx, now)
	if errors.Is(err, state.ErrFenced) {
		d.fence(err)
	}
	if err == nil {
		d.guard.Flush(ctx) // what was kept while the lease lapsed
	}
	return err == nil
}

// yield ends the run of a fenced daemon that has standbys: its triggers are stopped
// (their admissions are refused anyway), their goroutines awaited, and its owner row
// released; the new leader's recovery settles whatever they left.
func (d *Daemon) yield(stopTriggers context.CancelFunc) error {
	stopTriggers()
	d.endTerm()
	ctx := context.Background()
	for len(d.inflight) > 0 {
		d.handle(ctx, nil, <-d.events)
	}
	d.wg.Wait()
	d.closeGateway("this hexcron daemon no longer leads its database") // the calls whose trigger was under way
	d.releaseTenure(ctx)
	return fmt.Errorf("scheduler: %w", d.cfg.Tenure.Err())
}

// Healthy reports an error while the daemon has not finished starting, or when its
// loop has not run for longer than it ever sleeps (a stall): it backs /healthz.
func (d *Daemon) Healthy() error {
	last := d.alive.Load()
	if last == 0 {
		return errors.New("starting")
	}
	limit := 2*d.cfg.Heartbeat + time.Minute
	if since := d.cfg.Clock.Now().Sub(time.Unix(0, last)); since > limit {
		return fmt.Errorf("scheduling loop stalled: last ran %s ago", since.Round(time.Second))
	}
	return nil
}

// shutdown stops new triggers, gives the ones in flight a grace period to finish and be
// recorded, and leaves the rest for the next start's recovery.
func (d *Daemon) shutdown(trigCtx context.Context, stopTriggers context.CancelFunc) error {
	d.cfg.Notifier.Notify("STOPPING=1")
	d.stopping = true
	d.closeGateway("hexcron is stopping")
	if d.stopPreflight != nil {
		d.stopPreflight()
	}
	ctx := context.Background()
	n := len(d.inflight)
	d.log.Info("stopping: no new triggers", "in_flight", n)
	grace := d.cfg.Clock.NewTimer(d.cfg.Grace)
	defer grace.Stop()
	for len(d.inflight) > 0 {
		select {
		case ev := <-d.events:
			d.handle(ctx, trigCtx, ev)
		case <-grace.C():
			stopTriggers()
			grace = d.cfg.Clock.NewTimer(time.Hour) // results still arrive as goroutines see ctx done
		}
	}
	d.wg.Wait()
	d.closeGateway("hexcron is stopping")
	for _, f := range sortedFirings(d.queued) {
		d.log.Info("queued firing left planned at stop", keySchedule, f.Schedule, keySlot, f.Slot,
			keyReason, "the next start queues it again if it is back within the schedule's catchup")
	}
	if err := d.cfg.Store.SetHeartbeat(ctx, d.cfg.Clock.Now()); err != nil {
		d.log.Error("write heartbeat", keyErr, err)
	}
	d.releaseTenure(ctx)
	d.log.Info("stopped")
	return nil
}

// replan rebuilds the plan from now, counting the ledger's recent attempts (this and
// other processes', in flight or answered) into every rule as admission counts them.
func (d *Daemon) replan(ctx context.Context, now time.Time) {
	conf := d.config()
	d.nextReplan = now.Add(d.cfg.Replan)
	past, handled, err := planInput(ctx, d.cfg.Store, conf, now)
	if err != nil {
		d.log.Error("replan", keyErr, err)
		return
	}
	waiting := make(map[string]bool, len(d.queued))
	for _, f := range d.queued {
		waiting[f.Slot] = true
	}
	extra := make([]planner.Firing, 0, len(d.extra))
	for _, f := range d.extra {
		if _, busy := d.inflight[f.Slot]; !busy { // a re-trigger under way is not planned again
			extra = append(extra, f)
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Slot < extra[j].Slot })
	res := d.planGateway(ctx, conf, planner.Input{
		From:        now,
		Horizon:     d.cfg.Horizon,
		Past:        past,
		OpenWindows: true,
		Extra:       extra,
		Skip: func(slot string) bool {
			if _, ok := d.inflight[slot]; ok {
				return true
			}
			if _, ok := d.extra[slot]; ok {
				return false // a catch-up or re-trigger: its row is not `planned` on purpose
			}
			if _, ok := d.held[slot]; ok {
				return true
			}
			if waiting[slot] {
				return true // queued: it fires when the run it waits for ends, not by the plan
			}
			return handled[slot]
		},
	}, now)
	d.plan = res.Firings
	d.logReplan(conf, res, past, now)
}

// logReplan logs one summary line of a replan (firings planned, shifted, unplaced, the
// next firing), one WARN line when firings became unplaced (counts and schedules), and
// a line per slot only when its planned instant changed within the next hour; every
// other firing's plan is at DEBUG. It remembers why each shifted firing is planned
// where it is, for its trigger's line and its row.
func (d *Daemon) logReplan(conf *planner.Config, res *planner.Result, past []budget.Attempt, now time.Time) {
	var fresh []planner.Unplaced
	for _, u := range res.Unplaced {
		if _, seen := d.unplaced[u.Firing.Slot]; !seen {
			if !d.isGateway(u.Firing.Slot) { // a gateway request's call is answered instead
				fresh = append(fresh, u)
			}
			d.log.Debug("cannot place firing under the caps", keySchedule, u.Firing.Schedule, keySlot, u.Firing.Slot,
				keyReason, u.Reason, "competing", strings.Join(u.Competing, ","))
		}
		d.unplaced[u.Firing.Slot] = u
	}
	if len(fresh) > 0 {
		d.log.Warn(MsgCannotPlace, append([]any{"count", len(fresh), "first", d.local(fresh[0].Firing.Nominal)},
			summarizeUnplaced(fresh)...)...)
	}
	soon := now.Add(time.Hour)
	horizonLog := now.Add(d.cfg.Replan + time.Minute)
	shifted := 0
	for _, f := range d.plan {
		delete(d.unplaced, f.Slot)
		shift := f.Planned.Sub(f.Nominal)
		if shift > 0 && f.Release.Equal(f.Nominal) {
			shifted++
		}
		if f.Planned.After(horizonLog) {
			continue
		}
		why := ""
		if shift > 0 && f.Release.Equal(f.Nominal) {
			why = shiftReason(conf, f, d.plan, past)
			d.planReasons[f.Slot] = why
		} else {
			delete(d.planReasons, f.Slot)
		}
		prev, seen := d.announced[f.Slot]
		d.announced[f.Slot] = f.Planned
		switch {
		case !seen:
			attrs := []any{keySchedule, f.Schedule, keySlot, f.Slot, keyPlanned, d.local(f.Planned)}
			if why != "" {
				attrs = append(attrs, keyShift, planner.FormatDuration(shift), keyReason, why)
			}
			d.log.Debug("planned", attrs...)
		case !prev.Equal(f.Planned):
			level := slog.LevelDebug
			if (f.Planned.Before(soon) || prev.Before(soon)) && !d.shiftLogged[f.Slot] {
				level = slog.LevelInfo // once per slot: later moves are at DEBUG, its row keeps the last reason
				d.shiftLogged[f.Slot] = true
			}
			attrs := []any{keySchedule, f.Schedule, keySlot, f.Slot, "from", d.local(prev), keyPlanned, d.local(f.Planned)}
			if why != "" {
				attrs = append(attrs, keyShift, planner.FormatDuration(shift), keyReason, why)
			} else {
				attrs = append(attrs, keyReason, "back to its nominal instant")
			}
			d.log.Log(context.Background(), level, "shifted", attrs...)
		}
	}
	attrs := []any{"firings", len(d.plan), "shifted", shifted, "unplaced", len(d.unplaced)}
	if len(d.plan) > 0 {
		attrs = append(attrs, "next", d.plan[0].Schedule, "next_at", d.local(d.plan[0].Planned))
	}
	d.log.Info(MsgReplanned, attrs...)
}

// Messages of the replan's lines.
const (
	MsgReplanned   = "replanned"
	MsgCannotPlace = "cannot place firings under the caps"
)

// summarizeUnplaced names the schedules of unplaced firings (the first five, with
// their counts) and the schedules they compete with, as log attributes.
func summarizeUnplaced(us []planner.Unplaced) []any {
	count := map[string]int{}
	var names []string
	competing := map[string]bool{}
	var comp []string
	for _, u := range us {
		if count[u.Firing.Schedule] == 0 {
			names = append(names, u.Firing.Schedule)
		}
		count[u.Firing.Schedule]++
		for _, c := range u.Competing {
			if !competing[c] {
				competing[c] = true
				comp = append(comp, c)
			}
		}
	}
	sort.SliceStable(names, func(i, j int) bool { return count[names[i]] > count[names[j]] })
	list := func(xs []string, n func(string) string) string {
		var parts []string
		for i, x := range xs {
			if i == 5 {
				parts = append(parts, fmt.Sprintf("and %d more", len(xs)-5))
				break
			}
			parts = append(parts, n(x))
		}
		return strings.Join(parts, ",")
	}
	out := []any{"schedules", list(names, func(s string) string { return fmt.Sprintf("%s(%d)", s, count[s]) })}
	if len(comp) > 0 {
		out = append(out, "competing", list(comp, func(s string) string { return s }))
	}
	out = append(out, keyReason, us[0].Reason)
	return out
}

// expire records firings whose window closed while they could not be placed or were
// held, so that nothing is dropped without a row and a log line.
func (d *Daemon) expire(ctx context.Context, now time.Time) {
	var gone []planner.Unplaced
	for slot, u := range d.unplaced {
		if now.After(u.Firing.Deadline) {
			d.record(ctx, u.Firing, skipUnplaced, "could not be placed under the caps: "+u.Reason, slog.LevelDebug)
			gone = append(gone, u)
			delete(d.unplaced, slot)
			delete(d.extra, slot)
			delete(d.planReasons, slot)
		}
	}
	if len(gone) > 0 {
		sort.Slice(gone, func(i, j int) bool { return gone[i].Firing.Slot < gone[j].Firing.Slot })
		d.log.Info(MsgSkippedUnplaced, append([]any{"count", len(gone)}, summarizeUnplaced(gone)...)...)
	}
	for slot, f := range d.held {
		if now.After(f.Deadline) {
			d.skip(ctx, f, skipMaxRunning, fmt.Sprintf("max_running (%d) reached until the window closed", d.config().Budget.MaxRunning))
			delete(d.held, slot)
			delete(d.extra, slot)
		}
	}
	for slot, t := range d.announced {
		if now.Sub(t) > 24*time.Hour {
			delete(d.announced, slot)
			delete(d.planReasons, slot)
			delete(d.shiftLogged, slot)
		}
	}
}

// MsgSkippedUnplaced is the one INFO line for the firings whose windows closed without
// room under the caps (each slot's own line is at DEBUG; its row has the reason).
const MsgSkippedUnplaced = "skipped firings that could not be placed under the caps"

// fireDue acts on every firing whose planned instant has come.
func (d *Daemon) fireDue(ctx, trigCtx context.Context, now time.Time) {
	if d.fenced {
		return
	}
	if due := (len(d.plan) > 0 && !d.plan[0].Planned.After(now)) || len(d.held) > 0; due && d.pauses.read.Before(now) {
		d.readPauses(ctx, now) // a pause set a moment ago applies to this firing
	}
	i := 0
	for ; i < len(d.plan) && !d.plan[i].Planned.After(now); i++ {
		d.dispatch(ctx, trigCtx, d.plan[i], now)
	}
	d.plan = d.plan[i:]
	// Held firings get another chance whenever the loop wakes (dispatch takes them out
	// of d.held, and logs nothing again for them).
	for _, f := range sortedFirings(d.held) {
		d.dispatch(ctx, trigCtx, f, now)
	}
}

// dispatch applies the overlap policy and max_running to one due firing, then triggers.
func (d *Daemon) dispatch(ctx, trigCtx context.Context, f planner.Firing, now time.Time) {
	if _, ok := d.inflight[f.Slot]; ok {
		return
	}
	if d.dispatchGateway(ctx, trigCtx, f, now) {
		return
	}
	// A firing held by max_running comes back at every wake: its decisions were logged
	// the first time.
	_, wasHeld := d.held[f.Slot]
	delete(d.held, f.Slot)
	if q, ok := d.queued[seriesOf(f)]; ok && q.Slot == f.Slot {
		return // it is the firing that waits
	}
	conf := d.config()
	s := conf.Schedule(f.Schedule)
	if s == nil {
		delete(d.extra, f.Slot)
		return // removed by a reload after it was planned
	}
	if p, ok := d.pausedAt(f.Schedule, now); ok {
		d.skip(ctx, f, skipPaused, PauseReason(p, conf.Location))
		return
	}
	active, err := d.cfg.Store.ActiveRuns(ctx)
	if err != nil {
		d.log.Error("read active runs", keyErr, err)
		return
	}
	series := seriesOf(f)
	var mine []state.Slot
	for _, r := range active {
		if seriesOfSlot(r.Key) == series {
			mine = append(mine, r)
		}
	}
	for _, g := range d.inflight {
		if seriesOf(g) == series {
			mine = append(mine, state.Slot{Key: g.Slot, Schedule: g.Schedule, RunID: beingTriggered})
		}
	}
	if _, waits := d.queued[series]; waits && len(mine) == 0 && !d.stopping {
		// A firing waits for a run that ended without its end reaching the queue (recorded
		// by `hexcron trigger --wait`, or a trigger settled by recovery): it goes first,
		// then f meets it.
		d.dequeue(ctx, trigCtx, series, "nothing left to wait for")
		d.dispatch(ctx, trigCtx, f, now)
		return
	}
	if len(mine) > 0 {
		_, isQueued := d.queued[series]
		act, reason := decideOverlap(s.Overlap, len(mine), isQueued, mine[0].RunID)
		switch act {
		case actSkip:
			d.skip(ctx, f, skipOverlap, reason)
			return
		case actQueue:
			d.queued[series] = f
			delete(d.extra, f.Slot)
			d.log.Info("queued", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, reason)
			row := slotOf(f, state.KindScheduled)
			row.Reason = reason // marks the row queued, for the next start
			if _, err := d.cfg.Store.PlanSlot(ctx, row, now); err != nil {
				d.log.Error("record queued slot", keySchedule, f.Schedule, keySlot, f.Slot, keyErr, err)
			}
			return
		case actReplace:
			for _, r := range mine {
				if r.RunID == beingTriggered {
					continue
				}
				d.replace(ctx, projectOf(conf, r), r, f)
			}
		case actFire:
			if !wasHeld {
				// The schedule's own choice, not a change of its fate.
				d.log.Debug("overlap allowed", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, reason)
			}
		}
	}
	if max := conf.Budget.MaxRunning; max > 0 && len(active)+len(d.inflight) >= max {
		d.held[f.Slot] = f
		if wasHeld {
			return
		}
		reason := fmt.Sprintf("max_running: %d runs in flight", len(active)+len(d.inflight))
		d.log.Info("held", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, reason, "until", d.local(f.Deadline))
		// Its row now, so that a crash while it is held leaves a trace to settle.
		row := slotOf(f, state.KindScheduled)
		row.PlanReason = "held by " + reason
		if _, err := d.cfg.Store.PlanSlot(ctx, row, now); err != nil {
			d.log.Error("record held slot", keySchedule, f.Schedule, keySlot, f.Slot, keyErr, err)
		}
		return
	}
	d.trigger(ctx, trigCtx, s, f, now)
}

// sendGrace is how long past a firing's deadline its trigger may still be sent. The
// plan places firings at whole seconds up to and including the deadline, and the
// trigger of one planned at its deadline starts a moment after that instant: without
// the grace it would end "after 0 attempts" although the plan placed it.
const sendGrace = time.Second

// beingTriggered stands for the run id of a slot whose trigger is still in flight.
const beingTriggered = "(being triggered)"

// replace cancels a running run for the replace policy and records it.
func (d *Daemon) replace(ctx context.Context, project string, r state.Slot, by planner.Firing) {
	if err := d.cfg.Hex.CancelRun(ctx, project, r.RunID); err != nil {
		d.log.Warn("replace: cancel failed", keySchedule, r.Schedule, keySlot, r.Key, keyRun, r.RunID, keyErr, err)
		return
	}
	now := d.cfg.Clock.Now()
	reason := "replaced by " + by.Slot
	if err := d.cfg.Store.Transition(ctx, r.Key, state.StateKilled, state.Update{At: now, Reason: reason, Ended: now}); err != nil {
		d.log.Error("record replaced run", keySchedule, r.Schedule, keySlot, r.Key, keyErr, err)
	}
	d.cfg.Metrics.ObserveRun(r.Schedule, string(state.StateKilled))
	d.log.Info("killed", keySchedule, r.Schedule, keySlot, r.Key, keyRun, r.RunID, keyReason, reason)
	d.cfg.Hex.KernelFreed()
}

// trigger records f's row and starts the trigger-and-record flow (Trigger) in a
// goroutine; the outcome comes back to the loop as a triggerDone event.
func (d *Daemon) trigger(ctx, trigCtx context.Context, s *planner.Schedule, f planner.Firing, now time.Time) {
	if d.triggerGateway(ctx, trigCtx, f, now) {
		return
	}
	kind := state.KindScheduled
	if _, ok := d.extra[f.Slot]; ok && f.Release.After(f.Nominal.Add(s.Window)) {
		kind = state.KindCatchup
	}
	row := slotOf(f, kind)
	row.Project, row.Timeout = s.Project, s.Timeout
	row.PlanReason = d.planReasons[f.Slot]
	if _, err := d.cfg.Store.PlanSlot(ctx, row, now); err != nil {
		d.log.Error("record slot", keySchedule, f.Schedule, keySlot, f.Slot, keyErr, err)
		return
	}
	d.inflight[f.Slot] = f
	req := SlotRequest{Slot: row, Body: runRequest(s, f), Deadline: f.Deadline.Add(sendGrace)}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		out := d.flow.Run(trigCtx, req)
		d.events <- triggerDone{f: f, out: out}
	}()
}

// handle applies one event from a goroutine.
func (d *Daemon) handle(ctx, trigCtx context.Context, ev event) {
	switch ev := ev.(type) {
	case triggerDone:
		noRun := d.triggered(ctx, ev)
		d.gatewayDone(ctx, ev)
		if noRun && !d.stopping {
			// A firing queued behind this trigger waits for nothing now.
			d.dequeue(ctx, trigCtx, seriesOf(ev.f), "previous trigger created no run")
		}
	case runEnded:
		if !d.stopping {
			// A trigger of the series still in flight (the waiting firing may already
			// have gone when a due firing found nothing running) is what the queue now
			// waits for: its end, or its failure, dequeues.
			if !d.seriesInFlight(ev.series) {
				d.dequeue(ctx, trigCtx, ev.series, "previous run ended")
			}
			d.fireDue(ctx, trigCtx, d.cfg.Clock.Now()) // held firings may fit now
		}
	case retrigger:
		d.extra[ev.f.Slot] = ev.f
		d.nextReplan = time.Time{}
	case reloaded:
		d.reloaded(ctx, ev)
	}
}

// seriesInFlight reports whether a trigger of series is under way in this daemon.
func (d *Daemon) seriesInFlight(series string) bool {
	for _, g := range d.inflight {
		if seriesOf(g) == series {
			return true
		}
	}
	return false
}

// dequeue dispatches the firing queued on series, if any, now that what it waited for
// is over; its window starts now.
func (d *Daemon) dequeue(ctx, trigCtx context.Context, series, why string) {
	f, ok := d.queued[series]
	if !ok {
		return
	}
	delete(d.queued, series)
	now := d.cfg.Clock.Now()
	s := d.config().Schedule(f.Schedule)
	if s == nil {
		// requeue settles this at the reload; this is only the safety net
		d.skip(ctx, f, skipRemoved, "queued when a reload removed its schedule from the config")
		return
	}
	f.Release, f.Deadline = now, now.Add(s.Window)
	d.log.Info("dequeued: "+why, keySchedule, f.Schedule, keySlot, f.Slot)
	d.dispatch(ctx, trigCtx, f, now)
}

// triggered acts on the outcome of one trigger (the flow has recorded it): the log
// line, the metrics, and what comes next. It reports whether the trigger is over without
// a run (refused, or its window closed), as opposed to a run created or adopted, a stop,
// or an outcome still to be settled.
func (d *Daemon) triggered(ctx context.Context, ev triggerDone) (noRun bool) {
	f, out := ev.f, ev.out
	delete(d.inflight, f.Slot)
	delete(d.extra, f.Slot)
	if out.RecordErr != nil {
		d.log.Error("record trigger outcome", keySchedule, f.Schedule, keySlot, f.Slot, keyStatus, out.Result.String(), keyErr, out.RecordErr)
	}
	switch out.Result {
	case Triggered, Adopted:
		r := out.Run
		msg, outcome := "triggered", outcomeCreated
		if out.Result == Adopted {
			msg, outcome = "adopted after reconcile", outcomeAdopted
		}
		d.cfg.Metrics.ObserveTrigger(f.Schedule, outcome)
		d.cfg.Metrics.ObserveLateness(r.Sent.Sub(f.Nominal))
		attrs := []any{keySchedule, f.Schedule, keySlot, f.Slot, keyRun, r.RunID, keyURL, r.RunURL,
			keyTraceID, r.TraceID, keyNominal, d.local(f.Nominal)}
		if shift := r.Sent.Sub(f.Nominal).Round(time.Second); shift > 0 {
			attrs = append(attrs, keyShift, planner.FormatDuration(shift))
			if why := d.planReasons[f.Slot]; why != "" {
				attrs = append(attrs, keyReason, why)
			}
			if out.WaitReason != "" {
				attrs = append(attrs, "waited_for", out.WaitReason)
			}
		}
		if r.Attempts > 1 {
			attrs = append(attrs, keyAttempt, r.Attempts)
		}
		d.log.Info(msg, attrs...)
		delete(d.planReasons, f.Slot)
		d.wakePoller()
		d.notifyStatus(ctx, d.cfg.Clock.Now())
		if r.Sent.Sub(f.Planned) > 5*time.Second {
			d.nextReplan = time.Time{} // reality diverged from the plan (a wait, a retry)
		}
		return false
	case Interrupted:
		d.log.Warn("trigger interrupted by stop; the next start reconciles it", keySchedule, f.Schedule, keySlot, f.Slot)
		return false
	case Fenced:
		d.fence(out.Err)
		return false
	case Taken:
		d.log.Info("slot already triggered elsewhere", keySchedule, f.Schedule, keySlot, f.Slot)
		return false
	}
	delete(d.planReasons, f.Slot)
	d.nextReplan = time.Time{}
	switch out.Result {
	case Unresolved:
		if d.stopping {
			d.log.Warn("stopping with an ambiguous attempt unresolved; the next start reconciles it", keySchedule, f.Schedule, keySlot, f.Slot)
			return false
		}
		// An ambiguous attempt may still show up at Hex: settle it like a crash.
		d.log.Warn("window closed with an ambiguous attempt unresolved; reconciling", keySchedule, f.Schedule, keySlot, f.Slot, keyErr, out.Err)
		p := slotOf(f, state.KindScheduled)
		p.LastAttempt = out.LastAttempt
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.settle(ctx, p) }()
		return false
	case Skipped:
		if out.skip == skipWindowClosed {
			d.cfg.Metrics.ObserveTrigger(f.Schedule, outcomeWindowClosed)
		}
		d.cfg.Metrics.ObserveSkip(f.Schedule, out.skip)
		d.log.Info("skipped", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, out.Reason)
	case Unknown:
		d.cfg.Metrics.ObserveTrigger(f.Schedule, outcomeUnknown)
		d.log.Warn("unknown", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, out.Reason)
	case Failed:
		d.cfg.Metrics.ObserveTrigger(f.Schedule, outcomeFailed)
		if !out.held.IsZero() {
			// A 403: the client holds the project (one probe an hour) and logged the
			// outage's one ERROR with what to do.
			d.log.Warn("failed", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, out.Reason, keyTraceID, out.TraceID,
				"project_held_until", d.local(out.held))
		} else {
			d.log.Error("failed", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, out.Reason, keyTraceID, out.TraceID)
		}
	}
	return true
}

// skip records a slot as skipped with its reason: a row and a log line.
func (d *Daemon) skip(ctx context.Context, f planner.Firing, kind skipReason, reason string) {
	d.record(ctx, f, kind, reason, slog.LevelInfo)
}

// record is skip with the log line at level.
func (d *Daemon) record(ctx context.Context, f planner.Firing, kind skipReason, reason string, level slog.Level) {
	delete(d.extra, f.Slot)
	delete(d.planReasons, f.Slot)
	if err := d.cfg.Store.SkipSlot(ctx, slotOf(f, state.KindScheduled), reason, d.cfg.Clock.Now()); err != nil {
		d.log.Error("record skipped", keySchedule, f.Schedule, keySlot, f.Slot, keyErr, err)
	}
	d.cfg.Metrics.ObserveSkip(f.Schedule, kind)
	d.log.Log(context.Background(), level, "skipped", keySchedule, f.Schedule, keySlot, f.Slot, keyReason, reason)
	d.gatewaySkipped(f, kind, reason)
}

func (d *Daemon) wakePoller() {
	select {
	case d.pollWake <- struct{}{}:
	default:
	}
}

// notifyStatus sends systemd a one-line STATUS= and refreshes the budget gauges.
func (d *Daemon) notifyStatus(ctx context.Context, now time.Time) {
	conf := d.config()
	var parts []string
	if len(d.plan) > 0 {
		parts = append(parts, fmt.Sprintf("next %s at %s", d.plan[0].Schedule, d.plan[0].Planned.In(conf.Location).Format("15:04:05")))
	} else {
		parts = append(parts, "nothing planned")
	}
	var windows []time.Duration
	for _, r := range conf.Budget.Triggers {
		windows = append(windows, r.Per)
	}
	used, err := d.cfg.Store.BudgetUsed(ctx, now, windows)
	if err == nil {
		for i, r := range conf.Budget.Triggers {
			name := RuleName(r)
			parts = append(parts, fmt.Sprintf("budget %d/%d per %s", used[i], r.Limit-r.Reserve, planner.FormatDuration(r.Per)))
			d.cfg.Metrics.SetBudget(name, used[i], r.Limit-r.Reserve)
		}
	}
	parts = append(parts, fmt.Sprintf("%d triggers in flight", len(d.inflight)))
	if p := d.pausedStatus(); p != "" {
		parts = append(parts, p)
	}
	d.cfg.Notifier.Notify("STATUS=" + strings.Join(parts, ", "))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxWindow(c *planner.Config) time.Duration {
	var m time.Duration
	for _, s := range c.Schedules {
		if s.Window > m {
			m = s.Window
		}
	}
	return m
}

func sortedFirings(m map[string]planner.Firing) []planner.Firing {
	out := make([]planner.Firing, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot < out[j].Slot })
	return out
}
