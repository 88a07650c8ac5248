package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hexcron/budget"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/state"
)

// The gateway's requests (package gateway, wired in by main) reach the daemon here. A
// request becomes a manual slot of its client, recorded with its Idempotency-Key and
// the client's quota in one transaction (GatewayStore.Submit); the slot then goes to
// the loop as an extra firing with the client's priority, released now, deadline now
// plus the request's wait. The planner places it among the schedules' firings, so that
// it never takes an instant a higher-priority firing needs; admission is the ledger's,
// as for any trigger. The request's HTTP call waits for the outcome:
//
//   - placed within its wait: the trigger fires at the planned instant and the call
//     gets the run (or Hex's refusal);
//   - not: the call gets a 429 with the ledger's prediction of when it would fit
//     (the plan with a deadline one horizon away). With an Idempotency-Key the request
//     stays queued with that later deadline, and a retry with the key picks it up;
//     without one it is recorded skipped.
//
// Everything the loop owns about gateway firings lives in gatewayState.firings; the
// waiting calls are in gatewayState.waits, which any goroutine may touch.

// GatewayStore is what the gateway path needs of the database (*state.DB).
type GatewayStore interface {
	Submit(ctx context.Context, sub state.Submission, now, since time.Time, quota func([]time.Time) time.Duration) (state.Submitted, error)
	QueuedRequests(ctx context.Context) ([]state.Queued, error)
	PruneIdempotency(ctx context.Context, now time.Time) (int64, error)
	SlotOfRun(ctx context.Context, runID string) (state.Slot, error)
	Slot(ctx context.Context, key string) (state.Slot, error)
}

// QueueStore reads the gateway's queued requests (*state.DB, read-only is enough).
type QueueStore interface {
	QueuedRequests(ctx context.Context) ([]state.Queued, error)
}

// QueuedFirings returns the gateway requests queued in st (planned, with a deadline
// after from) as firings for the planner, with their client's priority in conf,
// released at the later of their request and from: the demand `hexcron plan --db` and
// `hexcron status` count, as the daemon's plan does.
func QueuedFirings(ctx context.Context, st QueueStore, conf *planner.Config, from time.Time) ([]planner.Firing, error) {
	qs, err := st.QueuedRequests(ctx)
	if err != nil {
		return nil, err
	}
	var out []planner.Firing
	for _, q := range qs {
		s := q.Slot
		if !s.Deadline.After(from) {
			continue
		}
		prio := 0
		if c := conf.Gateway.Client(s.Client); c != nil {
			prio = c.Priority
		}
		rel := s.Nominal
		if rel.Before(from) {
			rel = from
		}
		out = append(out, gwFiringOf(s, prio, rel, s.Deadline))
	}
	return out, nil
}

// Request is one gateway request for a run.
type Request struct {
	// Client is the gateway client's name (gateway.clients[].name).
	Client string
	// Project is the Hex project of a project run, with Body the RunProject body to
	// send; "" for a schedule run.
	Project string
	Body    hexclient.RunRequest
	// Schedule names the configured schedule of a schedule run, with Params the
	// overrides of its params (values of its matrix keys pick the combination).
	Schedule string
	Params   map[string]any
	// Key is the Idempotency-Key ("" without one); Hash identifies the request for it.
	Key, Hash string
	// Wait is how long the request may wait for room, at most the client's wait; a
	// negative Wait is the client's.
	Wait time.Duration
}

// ReplyKind is what became of a request.
type ReplyKind int

// The outcomes of a request.
const (
	// ReplyTriggered: the run exists (created or adopted); Slot has its id.
	ReplyTriggered ReplyKind = iota
	// ReplyNoRoom: not admitted within the wait. RetryAfter is the ledger's
	// prediction; Queued says whether the request stays queued (it had a key).
	ReplyNoRoom
	// ReplyQuota: the client's max_per_hour is used up for RetryAfter.
	ReplyQuota
	// ReplyRefused: Hex refused the run for good (Reason has Hex's words).
	ReplyRefused
	// ReplySkipped: not run, on purpose (the schedule's overlap policy, ...).
	ReplySkipped
	// ReplyUnknown: Hex may have run it and hexcron cannot tell; never sent again.
	ReplyUnknown
	// ReplyPending: still queued or being triggered when the call's time was up;
	// ask again (with the Idempotency-Key) after RetryAfter.
	ReplyPending
	// ReplyUnavailable: the daemon is starting, stopping or no longer leads.
	ReplyUnavailable
	// ReplyKeyReused: the Idempotency-Key was used for another request.
	ReplyKeyReused
)

// Reply is the answer to a request.
type Reply struct {
	Kind       ReplyKind
	Slot       state.Slot // the request's slot, as recorded (zero for quota, unavailable, key reused)
	RetryAfter time.Duration
	Queued     bool
	Reason     string
}

// RequestError is a request the daemon cannot take as made: NotFound for a schedule
// that does not exist (HTTP 404), else a bad request (400).
type RequestError struct {
	NotFound bool
	Reason   string
}

func (e *RequestError) Error() string { return e.Reason }

// answerGrace is how long past a request's wait its call waits for the outcome of a
// trigger already under way (an attempt's timeout, a reconcile).
const answerGrace = 45 * time.Second

// maxQueued bounds the gateway requests queued in the daemon at once.
const maxQueued = 1000

// gwFiring is one gateway request the loop places and fires.
type gwFiring struct {
	client   string
	project  string
	body     hexclient.RunRequest
	timeout  time.Duration
	keyed    bool
	schedule bool // a configured schedule's run: its overlap policy applies
	answered bool // its call was answered 429 (it stays queued: keyed)
}

// gwAsk is a call waiting for its request's placement, sent to the loop.
type gwAsk struct {
	slot     state.Slot
	fire     gwFiring
	wait     time.Duration // as the request asked (answerBy is it rounded up to a second)
	answerBy time.Time
	abandon  bool // the call gave up before its request was triggered
}

type gatewayState struct {
	store   GatewayStore
	asks    chan gwAsk
	firings map[string]*gwFiring // owned by the loop
	open    atomic.Bool          // the loop takes requests
	pruned  atomic.Int64         // when keys were last pruned (unix ns)

	keyMu   sync.Mutex
	lastKey time.Time

	mu    sync.Mutex
	waits map[string]*gwWait // slot -> the calls waiting for its outcome
}

type gwWait struct {
	done chan struct{}
	out  Reply
	refs int
}

func newGatewayState(st GatewayStore) *gatewayState {
	if st == nil {
		return nil
	}
	return &gatewayState{store: st, asks: make(chan gwAsk, 256), firings: map[string]*gwFiring{}, waits: map[string]*gwWait{}}
}

// gwAsks is the channel of calls for the loop (nil without a gateway: never ready).
func (d *Daemon) gwAsks() <-chan gwAsk {
	if d.gw == nil {
		return nil
	}
	return d.gw.asks
}

// watch registers a call waiting for slot's outcome.
func (g *gatewayState) watch(slot string) *gwWait {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.waits[slot]
	if w == nil {
		w = &gwWait{done: make(chan struct{})}
		g.waits[slot] = w
	}
	w.refs++
	return w
}

func (g *gatewayState) unwatch(slot string, w *gwWait) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w.refs--
	if w.refs <= 0 && g.waits[slot] == w {
		delete(g.waits, slot)
	}
}

// finish answers every call waiting for slot.
func (g *gatewayState) finish(slot string, out Reply) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.waits[slot]; w != nil {
		w.out = out
		close(w.done)
		delete(g.waits, slot)
	}
}

// finishAll answers every waiting call (the daemon stops, or is fenced).
func (g *gatewayState) finishAll(out Reply, except func(slot string) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for slot, w := range g.waits {
		if except(slot) {
			continue
		}
		w.out = out
		close(w.done)
		delete(g.waits, slot)
	}
}

// newKey returns the slot key of a request of label made at now: label@<UTC ms>+manual,
// unique in this process.
func (g *gatewayState) newKey(label string, now time.Time) (string, time.Time) {
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	t := now.UTC().Truncate(time.Millisecond)
	if !t.After(g.lastKey) {
		t = g.lastKey.Add(time.Millisecond)
	}
	g.lastKey = t
	return label + "@" + t.Format("2006-01-02T15:04:05.000Z") + "+manual", t
}

// ProjectLabel is the schedule column of a gateway request's slot for a run of a
// project (not of a configured schedule): "project:<id>".
func ProjectLabel(project string) string { return "project:" + project }

// Config returns the config in force.
func (d *Daemon) Config() *planner.Config { return d.config() }

// Submit records req as a slot of its client and waits for its outcome: see the comment
// at the top of this file. It returns a *RequestError for a request that cannot be
// made as asked, and other errors for failures of the database.
func (d *Daemon) Submit(ctx context.Context, req Request) (Reply, error) {
	g := d.gw
	if g == nil || !g.open.Load() {
		return Reply{Kind: ReplyUnavailable, Reason: "hexcron is starting or stopping"}, nil
	}
	if t := d.cfg.Tenure; t != nil && t.Err() != nil {
		return Reply{Kind: ReplyUnavailable, Reason: "this hexcron daemon no longer leads its database"}, nil
	}
	conf := d.config()
	client := conf.Gateway.Client(req.Client)
	if client == nil {
		return Reply{}, &RequestError{Reason: fmt.Sprintf("no gateway client %q in the config in force", req.Client)}
	}
	fire := gwFiring{client: client.Name, keyed: req.Key != ""}
	var label string
	var matrix map[string]string
	if req.Schedule != "" {
		s := conf.Schedule(req.Schedule)
		if s == nil {
			return Reply{}, &RequestError{NotFound: true, Reason: fmt.Sprintf("no schedule %q in the config", req.Schedule)}
		}
		m, body, err := scheduleRun(s, req.Params)
		if err != nil {
			return Reply{}, &RequestError{Reason: err.Error()}
		}
		label, matrix = s.Name, m
		fire.project, fire.body, fire.timeout, fire.schedule = s.Project, body, s.Timeout, true
	} else {
		label = ProjectLabel(strings.ToLower(req.Project))
		fire.project, fire.body = strings.ToLower(req.Project), req.Body
	}
	body, err := json.Marshal(fire.body)
	if err != nil {
		return Reply{}, &RequestError{Reason: fmt.Sprintf("the request body cannot be encoded: %v", err)}
	}
	wait := client.Wait
	if req.Wait >= 0 {
		wait = min(wait, req.Wait)
	}
	ttl := conf.Gateway.IdempotencyTTL
	now := d.cfg.Clock.Now()
	d.pruneKeys(ctx, now)
	quota := func(recent []time.Time) time.Duration {
		if client.MaxPerHour <= 0 || len(recent) < client.MaxPerHour {
			return 0
		}
		// The place frees when the oldest request that fills the quota leaves the hour.
		return max(recent[len(recent)-client.MaxPerHour].Add(time.Hour).Sub(now), time.Second)
	}
	var res state.Submitted
	for try := 0; ; try++ {
		key, nominal := g.newKey(label, now)
		sub := state.Submission{
			Slot: state.Slot{Key: key, Schedule: label, Nominal: nominal, Planned: nominal, Matrix: matrix, Kind: state.KindManual,
				Project: fire.project, Timeout: fire.timeout, Client: client.Name, Deadline: answerTime(now, wait)},
			Key: req.Key, Hash: req.Hash, Body: string(body), Expires: now.Add(ttl),
		}
		res, err = g.store.Submit(ctx, sub, now, now.Add(-time.Hour), quota)
		if errors.Is(err, state.ErrSlotExists) && try < 3 {
			continue
		}
		break
	}
	var kr *state.KeyReusedError
	switch {
	case errors.As(err, &kr):
		return Reply{Kind: ReplyKeyReused, Reason: fmt.Sprintf("Idempotency-Key %q was used for another request (slot %s): "+
			"a key names one request; use a new key for a new request", req.Key, kr.Slot)}, nil
	case err != nil:
		return Reply{}, fmt.Errorf("submit: %w", err)
	case res.Wait > 0:
		return Reply{Kind: ReplyQuota, RetryAfter: res.Wait,
			Reason: fmt.Sprintf("client %s has used its max_per_hour (%d requests in the last hour)", client.Name, client.MaxPerHour)}, nil
	}
	s := res.Slot
	w := g.watch(s.Key)
	defer g.unwatch(s.Key, w)
	if !res.Created {
		if out, done := finalOutcome(s); done {
			return out, nil
		}
		if s.State == state.StateTriggering {
			return d.await(ctx, w, s, answerTime(now, wait), false)
		}
	}
	answerBy := answerTime(now, wait)
	select {
	case g.asks <- gwAsk{slot: s, fire: fire, wait: wait, answerBy: answerBy}:
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	}
	if res.Created {
		d.log.Info("gateway request", keySchedule, label, keySlot, s.Key, "client", client.Name, keyWait, wait,
			"idempotency_key", req.Key != "")
	}
	return d.await(ctx, w, s, answerBy, !fire.keyed)
}

// answerTime is the last instant a request made at now with wait may be placed at:
// now plus wait, rounded up to the plan's whole seconds (so that a wait of 0 takes the
// next second if it has room).
func answerTime(now time.Time, wait time.Duration) time.Time {
	t := now.Add(wait)
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// await waits for the outcome of slot s until answerBy plus answerGrace. A call that
// gives up first (its client went away, or time is up) and would leave nothing to pick
// the request up (abandonable: it had no key) withdraws the request unless its trigger
// has begun.
func (d *Daemon) await(ctx context.Context, w *gwWait, s state.Slot, answerBy time.Time, abandonable bool) (Reply, error) {
	c := d.cfg.Clock
	t := c.NewTimer(max(answerBy.Add(answerGrace).Sub(c.Now()), 0))
	defer t.Stop()
	select {
	case <-w.done:
		return w.out, nil
	case <-ctx.Done():
	case <-t.C():
	}
	if abandonable {
		give := c.NewTimer(time.Second)
		select {
		case d.gw.asks <- gwAsk{slot: s, abandon: true}:
		case <-give.C(): // the loop is stopping; the next start settles the request
		}
		give.Stop()
	}
	cur, err := d.gw.store.Slot(context.WithoutCancel(ctx), s.Key)
	if err == nil {
		if out, done := finalOutcome(cur); done {
			return out, nil
		}
		s = cur
	}
	if ctx.Err() != nil {
		return Reply{}, ctx.Err()
	}
	reason := "still queued when the wait was over"
	if s.State == state.StateTriggering {
		reason = "the trigger is still under way"
	}
	if abandonable && s.State == state.StatePlanned {
		reason += "; the request was withdrawn (send an Idempotency-Key to keep it queued)"
	}
	return Reply{Kind: ReplyPending, Slot: s, RetryAfter: 10 * time.Second, Queued: !abandonable, Reason: reason}, nil
}

// finalOutcome is the outcome a recorded slot already tells, if it tells one.
func finalOutcome(s state.Slot) (Reply, bool) {
	switch {
	case s.RunID != "":
		return Reply{Kind: ReplyTriggered, Slot: s}, true
	case s.State == state.StateFailed:
		return Reply{Kind: ReplyRefused, Slot: s, Reason: s.Reason}, true
	case s.State == state.StateUnknown:
		return Reply{Kind: ReplyUnknown, Slot: s, Reason: s.Reason}, true
	case s.State == state.StateSkipped:
		return Reply{Kind: ReplySkipped, Slot: s, Reason: s.Reason}, true
	case s.State.Terminal():
		return Reply{Kind: ReplyUnknown, Slot: s, Reason: s.Reason}, true
	}
	return Reply{}, false
}

// scheduleRun is the matrix combination and RunProject body of a gateway run of
// schedule s with params on top of its own: the values of its matrix keys (strings)
// pick the combination, as `hexcron trigger --param` does.
func scheduleRun(s *planner.Schedule, params map[string]any) (map[string]string, hexclient.RunRequest, error) {
	if s.View != "" && len(params) > 0 {
		return nil, hexclient.RunRequest{}, fmt.Errorf("schedule %s runs the saved view %s: params cannot be combined with it (Hex refuses viewId together with inputParams)", s.Name, s.View)
	}
	var matrix map[string]string
	if len(s.Matrix) > 0 {
		matrix = map[string]string{}
		var missing []string
		for k, vals := range s.Matrix {
			v, ok := params[k].(string)
			switch {
			case !ok:
				missing = append(missing, fmt.Sprintf("%s (one of %s)", k, strings.Join(vals, ", ")))
			case !contains(vals, v):
				return nil, hexclient.RunRequest{}, fmt.Errorf("param %s=%q is not a value of schedule %s's matrix (%s)", k, v, s.Name, strings.Join(vals, ", "))
			default:
				matrix[k] = v
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return nil, hexclient.RunRequest{}, fmt.Errorf("schedule %s has a matrix: pick the combination with params %s", s.Name, strings.Join(missing, ", "))
		}
	}
	f := planner.Firing{Schedule: s.Name, Matrix: matrix}
	body := runRequest(s, f)
	if len(params) > 0 {
		if body.InputParams == nil {
			body.InputParams = map[string]any{}
		}
		for k, v := range params {
			// Text given for a param the schedule has as a number, a boolean, a list...
			// is read as JSON, as `hexcron trigger --param` reads it.
			if text, isText := v.(string); isText {
				if old, ok := s.Params[k]; ok && old != nil {
					if _, oldText := old.(string); !oldText {
						var typed any
						if err := json.Unmarshal([]byte(text), &typed); err != nil {
							return nil, hexclient.RunRequest{}, fmt.Errorf("param %s=%q: schedule %s's %s is %T, so the value is read as JSON: %v", k, text, s.Name, k, old, err)
						}
						v = typed
					}
				}
			}
			body.InputParams[k] = v
		}
	}
	return matrix, body, nil
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// pruneKeys forgets expired Idempotency-Keys, at most once an hour.
func (d *Daemon) pruneKeys(ctx context.Context, now time.Time) {
	last := d.gw.pruned.Load()
	if now.UnixNano()-last < int64(time.Hour) || !d.gw.pruned.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if n, err := d.gw.store.PruneIdempotency(ctx, now); err != nil {
		d.log.Warn("prune expired idempotency keys", keyErr, err)
	} else if n > 0 {
		d.log.Debug("pruned expired idempotency keys", "count", n)
	}
}

// RunOf returns the slot of run runID if client's request started it (ErrNotFound
// otherwise): the gateway answers run status from hexcron's own tracking.
func (d *Daemon) RunOf(ctx context.Context, client, runID string) (state.Slot, error) {
	if d.gw == nil {
		return state.Slot{}, state.ErrNotFound
	}
	s, err := d.gw.store.SlotOfRun(ctx, runID)
	if err != nil {
		return state.Slot{}, err
	}
	if s.Client != client {
		return state.Slot{}, fmt.Errorf("run %s: %w", runID, state.ErrNotFound)
	}
	return s, nil
}

// ErrRunEnded is Cancel's answer for a run that has already ended.
var ErrRunEnded = errors.New("run already ended")

// Cancel cancels run runID, started by client's request, through Hex (CancelRun) and
// records it killed; the run's slot is returned. A run that has already ended gives
// ErrRunEnded, one client's request did not start ErrNotFound.
func (d *Daemon) Cancel(ctx context.Context, client, runID string) (state.Slot, error) {
	s, err := d.RunOf(ctx, client, runID)
	if err != nil {
		return state.Slot{}, err
	}
	if s.State.Terminal() {
		return s, fmt.Errorf("cancel run %s: %w (%s)", runID, ErrRunEnded, s.State)
	}
	project := projectOf(d.config(), s)
	if err := d.cfg.Hex.CancelRun(ctx, project, runID); err != nil {
		var apiErr *hexclient.APIError
		if !(errors.As(err, &apiErr) && apiErr.Status == 404) {
			return s, fmt.Errorf("cancel run %s: %w", runID, err)
		}
	}
	now := d.cfg.Clock.Now()
	reason := "cancelled through the gateway by client " + client
	if err := d.cfg.Store.Transition(ctx, s.Key, state.StateKilled, state.Update{At: now, Reason: reason, Ended: now}); err != nil {
		var te *state.TransitionError
		if errors.As(err, &te) && te.From.Terminal() {
			return s, fmt.Errorf("cancel run %s: %w (%s)", runID, ErrRunEnded, te.From)
		}
		return s, fmt.Errorf("cancel run %s: record: %w", runID, err)
	}
	d.cfg.Metrics.ObserveRun(s.Schedule, string(state.StateKilled))
	d.log.Info("killed", keySchedule, s.Schedule, keySlot, s.Key, keyRun, runID, keyReason, reason)
	d.cfg.Hex.KernelFreed()
	select {
	case d.events <- runEnded{series: seriesOfSlot(s.Key)}:
	case <-ctx.Done():
	}
	s.State, s.Reason, s.Ended = state.StateKilled, reason, now
	return s, nil
}

// --- the loop's side -------------------------------------------------------------

// serveAsks takes a call's ask and every other one already waiting, places the new
// requests, and answers those that cannot be admitted within their wait.
func (d *Daemon) serveAsks(ctx, trigCtx context.Context, first gwAsk) {
	asks := []gwAsk{first}
	for len(asks) < cap(d.gw.asks) {
		select {
		case a := <-d.gw.asks:
			asks = append(asks, a)
			continue
		default:
		}
		break
	}
	now := d.cfg.Clock.Now()
	var placing []gwAsk
	for _, a := range asks {
		if a.abandon {
			d.abandon(ctx, a.slot, now)
			continue
		}
		if d.stopping || d.fenced {
			d.gw.finish(a.slot.Key, Reply{Kind: ReplyUnavailable, Slot: a.slot, Reason: "hexcron is stopping"})
			continue
		}
		key := a.slot.Key
		if _, inflight := d.inflight[key]; inflight {
			continue // being triggered: its outcome answers the call
		}
		if _, ok := d.gw.firings[key]; !ok {
			if len(d.gw.firings) >= maxQueued {
				d.gw.finish(key, Reply{Kind: ReplyNoRoom, Slot: a.slot, RetryAfter: time.Minute,
					Reason: fmt.Sprintf("%d gateway requests are queued already", maxQueued)})
				if !a.fire.keyed {
					d.skip(ctx, gwFiringOf(a.slot, 0, now, a.answerBy), skipUnplaced, "the gateway queue was full")
				}
				continue
			}
			f := a.fire
			d.gw.firings[key] = &f
			c := d.config().Gateway.Client(a.slot.Client)
			prio := 0
			if c != nil {
				prio = c.Priority
			}
			deadline := a.answerBy
			if !a.slot.Deadline.IsZero() && a.slot.Deadline.After(deadline) {
				deadline = a.slot.Deadline
			}
			d.extra[key] = gwFiringOf(a.slot, prio, now, deadline)
		}
		placing = append(placing, a)
	}
	if len(placing) == 0 {
		return
	}
	d.replan(ctx, now)
	at := d.plannedAt()
	var late []gwAsk
	for _, a := range placing {
		if _, ok := d.gw.firings[a.slot.Key]; !ok {
			continue // answered already (refused by planGateway)
		}
		if p, ok := at[a.slot.Key]; ok && !p.After(a.answerBy) {
			continue // placed within its wait: the trigger's outcome answers it
		}
		late = append(late, a)
	}
	if len(late) == 0 {
		d.observeQueued()
		return
	}
	// Where would each fit if it could wait one horizon? That is the honest Retry-After.
	limit := now.Add(d.cfg.Horizon)
	for _, a := range late {
		if f, ok := d.extra[a.slot.Key]; ok && f.Deadline.Before(limit) {
			f.Deadline = limit
			d.extra[a.slot.Key] = f
		}
	}
	d.replan(ctx, now)
	at = d.plannedAt()
	dropped := false
	for _, a := range late {
		key := a.slot.Key
		g, ok := d.gw.firings[key]
		if !ok {
			continue
		}
		p, placed := at[key]
		if placed && !p.After(a.answerBy) {
			continue
		}
		retry := d.cfg.Horizon
		if placed {
			retry = max(p.Sub(now), time.Second)
		}
		reason := fmt.Sprintf("no room under the trigger caps within the wait (%s)", a.wait)
		if g.keyed {
			g.answered = true
			row := a.slot
			row.Planned, row.Deadline = now, limit
			if placed {
				row.Planned = p
			}
			if _, err := d.cfg.Store.PlanSlot(ctx, row, now); err != nil {
				d.log.Error("record queued gateway request", keySlot, key, keyErr, err)
			}
			d.gw.finish(key, Reply{Kind: ReplyNoRoom, Slot: a.slot, RetryAfter: retry, Queued: true,
				Reason: reason + "; queued: a retry with the same Idempotency-Key picks it up"})
			continue
		}
		if f, ok := d.extra[key]; ok {
			d.refuse(ctx, f, retry, reason)
			dropped = true
		}
	}
	if dropped {
		d.nextReplan = time.Time{} // the loop re-plans before it fires anything
	}
	d.observeQueued()
}

// planGateway is planner.Plan for the daemon's plan, keeping the gateway's promise: a
// gateway request never leaves a firing of higher priority without room in its window.
// The planner alone only guarantees that within the window of the firing left out (a
// request placed before it may use up an hour's budget it needed), so the plan is
// compared with the plan without the gateway's requests; when a firing of higher
// priority than some request is left unplaced only with them, the requests are taken
// one at a time, highest priority first, and each one that leaves such a firing out is
// answered 429 (Retry-After: until that firing's window closes) and recorded skipped.
func (d *Daemon) planGateway(ctx context.Context, conf *planner.Config, in planner.Input, now time.Time) *planner.Result {
	if d.gw == nil || len(d.gw.firings) == 0 {
		return planner.Plan(conf, in)
	}
	in.Past = d.pendingGateway(ctx, conf, in.Past, now)
	var cands, rest []planner.Firing
	for _, f := range in.Extra {
		_, gw := d.gw.firings[f.Slot]
		_, inflight := d.inflight[f.Slot]
		if gw && !inflight { // one being triggered keeps its place
			cands = append(cands, f)
		} else {
			rest = append(rest, f)
		}
	}
	if len(cands) == 0 {
		return planner.Plan(conf, in)
	}
	all := planner.Plan(conf, in)
	lowest := cands[0].Priority
	for _, c := range cands {
		lowest = min(lowest, c.Priority)
	}
	above := false // is anything of higher priority than some request left out?
	for _, u := range all.Unplaced {
		above = above || u.Priority > lowest
	}
	if !above {
		return all
	}
	base := in
	base.Extra = rest
	cur := planner.Plan(conf, base)
	if pushedOut(cur, all, lowest, "") == nil {
		return all
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].Priority != cands[j].Priority {
			return cands[i].Priority > cands[j].Priority
		}
		return cands[i].Deadline.Before(cands[j].Deadline)
	})
	for _, c := range cands {
		try := base
		try.Extra = append(slices.Clone(base.Extra), c)
		res := planner.Plan(conf, try)
		if u := pushedOut(cur, res, c.Priority, c.Slot); u != nil {
			retry := max(u.Deadline.Sub(now), time.Second)
			reason := fmt.Sprintf("placing it would leave %s (priority %d, above the client's %d) without room in its window", u.Slot, u.Priority, c.Priority)
			d.refuse(ctx, c, retry, reason)
			continue
		}
		base, cur = try, res
	}
	return cur
}

// pendingGateway adds to past an attempt in flight from now for each gateway request
// whose trigger has begun but is not in the ledger yet (it waits for the project's
// other request, or for its turn): the replan leaves it out of the plan, and without
// this its place would be given to another request, which would then not be admitted
// in time.
func (d *Daemon) pendingGateway(ctx context.Context, conf *planner.Config, past []budget.Attempt, now time.Time) []budget.Attempt {
	var pending []string
	for slot := range d.inflight {
		if _, ok := d.gw.firings[slot]; ok {
			pending = append(pending, slot)
		}
	}
	if len(pending) == 0 {
		return past
	}
	atts, err := d.cfg.Store.Attempts(ctx, conf.Budget.Trigger().Since(now))
	if err != nil {
		d.log.Error("replan: read ledger", keyErr, err)
		return past
	}
	sent := map[string]bool{}
	for _, a := range atts {
		sent[a.Slot] = true
	}
	out := slices.Clone(past)
	for _, slot := range pending {
		if !sent[slot] {
			out = append(out, budget.Attempt{Sent: now})
		}
	}
	return out
}

// pushedOut returns a firing of priority above prio (other than the firing called
// self) that with is unplaced and without was not, or nil.
func pushedOut(without, with *planner.Result, prio int, self string) *planner.Unplaced {
	before := make(map[string]bool, len(without.Unplaced))
	for _, u := range without.Unplaced {
		before[u.Slot] = true
	}
	for i := range with.Unplaced {
		u := &with.Unplaced[i]
		if u.Slot != self && !before[u.Slot] && u.Priority > prio {
			return u
		}
	}
	return nil
}

// refuse records gateway firing f skipped, out of the plan, and then answers its
// calls 429 with retry and reason.
func (d *Daemon) refuse(ctx context.Context, f planner.Firing, retry time.Duration, reason string) {
	delete(d.gw.firings, f.Slot) // answered here, not by gatewaySkipped
	delete(d.unplaced, f.Slot)
	full := reason + fmt.Sprintf("; answered 429, Retry-After %ds", ceilSeconds(retry))
	d.skip(ctx, f, skipUnplaced, full)
	s := gwSlotOf(f)
	s.State, s.Reason = state.StateSkipped, full
	d.gw.finish(f.Slot, Reply{Kind: ReplyNoRoom, Slot: s, RetryAfter: retry, Reason: reason})
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// gwSlotOf is the slot row of a gateway firing, for an outcome.
func gwSlotOf(f planner.Firing) state.Slot {
	s := slotOf(f, state.KindManual)
	s.Deadline = f.Deadline
	return s
}

// gwFiringOf is the planner firing of gateway slot s.
func gwFiringOf(s state.Slot, priority int, release, deadline time.Time) planner.Firing {
	return planner.Firing{Schedule: s.Schedule, Slot: s.Key, Nominal: s.Nominal, Matrix: s.Matrix, Priority: priority,
		Release: release, Deadline: deadline}
}

// plannedAt maps each planned slot to its planned instant.
func (d *Daemon) plannedAt() map[string]time.Time {
	out := make(map[string]time.Time, len(d.gw.firings))
	for _, f := range d.plan {
		if _, ok := d.gw.firings[f.Slot]; ok {
			out[f.Slot] = f.Planned
		}
	}
	return out
}

// abandon withdraws a request whose call gave up, unless its trigger has begun.
func (d *Daemon) abandon(ctx context.Context, s state.Slot, now time.Time) {
	key := s.Key
	g, ok := d.gw.firings[key]
	if !ok || g.keyed {
		return
	}
	if _, inflight := d.inflight[key]; inflight {
		return
	}
	f, ok := d.extra[key]
	if !ok {
		f = gwFiringOf(s, 0, now, now)
	}
	if h, held := d.held[key]; held {
		f = h
		delete(d.held, key)
	}
	if q, queued := d.queued[seriesOf(f)]; queued && q.Slot == key {
		delete(d.queued, seriesOf(f))
	}
	delete(d.unplaced, key)
	d.skip(ctx, f, skipUnplaced, "the gateway request's call gave up before it was triggered (without an Idempotency-Key nothing picks it up)")
	d.nextReplan = time.Time{}
}

// restoreGateway runs once at start: a gateway request still queued (planned) when the
// last process stopped is queued again when it had an Idempotency-Key (its body was
// kept with the key) and its deadline is still ahead; any other is recorded skipped,
// with the reason. Then the daemon takes requests.
func (d *Daemon) restoreGateway(ctx context.Context, now time.Time) error {
	if d.gw == nil {
		return nil
	}
	qs, err := d.gw.store.QueuedRequests(ctx)
	if err != nil {
		return err
	}
	conf := d.config()
	for _, q := range qs {
		s := q.Slot
		client := conf.Gateway.Client(s.Client)
		fire := gwFiring{client: s.Client, project: s.Project, timeout: s.Timeout, keyed: true, answered: true}
		var reason string
		switch {
		case s.IdemKey == "" || q.Body == "":
			reason = "the gateway request's call ended with the process that took it (without an Idempotency-Key nothing picks it up)"
		case !s.Deadline.After(now):
			reason = "queued gateway request: its deadline passed while hexcron was down"
		case client == nil:
			reason = "queued gateway request: its client is no longer in the config"
		case !strings.HasPrefix(s.Schedule, "project:") && conf.Schedule(s.Schedule) == nil:
			reason = "queued gateway request: its schedule is no longer in the config"
		default:
			if err := json.Unmarshal([]byte(q.Body), &fire.body); err != nil {
				reason = "queued gateway request: its stored body cannot be read: " + err.Error()
			}
		}
		f := gwFiringOf(s, 0, now, s.Deadline)
		if reason != "" {
			if err := d.cfg.Store.SkipSlot(ctx, s, reason, now); err != nil {
				return err
			}
			d.cfg.Metrics.ObserveSkip(s.Schedule, skipMissed)
			d.log.Info("skipped", keySchedule, s.Schedule, keySlot, s.Key, keyReason, reason)
			continue
		}
		fire.schedule = !strings.HasPrefix(s.Schedule, "project:")
		f.Priority = client.Priority
		d.gw.firings[s.Key] = &fire
		d.extra[s.Key] = f
		d.log.Info("queued gateway request restored", keySchedule, s.Schedule, keySlot, s.Key, "client", s.Client)
	}
	d.gw.open.Store(true)
	return nil
}

// dispatchGateway dispatches a due gateway firing of a project (no schedule, so no
// overlap policy; max_running holds it like any firing) and reports whether f was one.
// A gateway run of a schedule goes through dispatch like the schedule's own firings.
func (d *Daemon) dispatchGateway(ctx, trigCtx context.Context, f planner.Firing, now time.Time) bool {
	if d.gw == nil {
		return false
	}
	g, ok := d.gw.firings[f.Slot]
	if !ok {
		return false
	}
	if g.schedule {
		if d.config().Schedule(f.Schedule) != nil {
			return false
		}
		d.skip(ctx, f, skipRemoved, "a reload removed the schedule of this gateway request")
		return true
	}
	_, wasHeld := d.held[f.Slot]
	delete(d.held, f.Slot)
	if max := d.config().Budget.MaxRunning; max > 0 {
		active, err := d.cfg.Store.ActiveRuns(ctx)
		if err != nil {
			d.log.Error("read active runs", keyErr, err)
			return true
		}
		if len(active)+len(d.inflight) >= max {
			if !wasHeld {
				d.log.Info("held", keySchedule, f.Schedule, keySlot, f.Slot,
					keyReason, fmt.Sprintf("max_running: %d runs in flight", len(active)+len(d.inflight)), "until", d.local(f.Deadline))
			}
			d.held[f.Slot] = f
			return true
		}
	}
	d.triggerGateway(ctx, trigCtx, f, now)
	return true
}

// triggerGateway starts the trigger of a gateway firing (its client's body, project
// and timeout) and reports whether f was one.
func (d *Daemon) triggerGateway(ctx, trigCtx context.Context, f planner.Firing, now time.Time) bool {
	if d.gw == nil {
		return false
	}
	g, ok := d.gw.firings[f.Slot]
	if !ok {
		return false
	}
	row := slotOf(f, state.KindManual)
	row.Project, row.Timeout, row.Client = g.project, g.timeout, g.client
	if _, err := d.cfg.Store.PlanSlot(ctx, row, now); err != nil {
		d.log.Error("record slot", keySlot, f.Slot, keyErr, err)
		return true
	}
	d.inflight[f.Slot] = f
	// The one trigger-and-record flow, with the client's body.
	req := SlotRequest{Slot: row, Body: g.body, Deadline: f.Deadline.Add(sendGrace)}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		out := d.flow.Run(trigCtx, req)
		d.events <- triggerDone{f: f, out: out}
	}()
	return true
}

// gatewayDone answers the calls waiting for a gateway firing whose trigger is over,
// from what the flow recorded.
func (d *Daemon) gatewayDone(ctx context.Context, ev triggerDone) {
	f := ev.f
	if d.gw == nil {
		return
	}
	if _, ok := d.gw.firings[f.Slot]; !ok {
		return
	}
	delete(d.gw.firings, f.Slot)
	d.observeQueued()
	s, err := d.gw.store.Slot(ctx, f.Slot)
	if err != nil {
		d.log.Error("read gateway slot", keySchedule, f.Schedule, keySlot, f.Slot, keyErr, err)
		return
	}
	out, done := finalOutcome(s)
	if !done {
		// Left triggering (a stop, or an ambiguous attempt that recovery settles): the
		// calls waiting read the slot when their time is up, a retry with the key later.
		return
	}
	if ev.out.Result == Skipped && ev.out.skip == skipWindowClosed {
		// The budget (or a hold after Hex's 429 or 503) outlasted the request's wait.
		out.Kind, out.RetryAfter = ReplyNoRoom, d.ledgerWait(ctx)
	}
	d.gw.finish(f.Slot, out)
}

// gatewaySkipped answers the calls waiting for a gateway firing recorded skipped.
func (d *Daemon) gatewaySkipped(f planner.Firing, kind skipReason, reason string) {
	if d.gw == nil {
		return
	}
	if _, ok := d.gw.firings[f.Slot]; !ok {
		return
	}
	delete(d.gw.firings, f.Slot)
	out := Reply{Kind: ReplySkipped, Slot: slotOf(f, state.KindManual), Reason: reason}
	out.Slot.State, out.Slot.Reason = state.StateSkipped, reason
	switch kind {
	case skipUnplaced, skipWindowClosed, skipMaxRunning:
		out.Kind, out.RetryAfter = ReplyNoRoom, d.ledgerWait(context.Background())
	}
	d.gw.finish(f.Slot, out)
	d.observeQueued()
}

// ledgerWait is how long until the ledger admits one more trigger (at least 1s).
func (d *Daemon) ledgerWait(ctx context.Context) time.Duration {
	now := d.cfg.Clock.Now()
	atts, err := d.cfg.Store.Attempts(ctx, d.config().Budget.Trigger().Since(now))
	if err != nil {
		return time.Minute
	}
	past := BudgetAttempts(atts)
	return max(d.config().Budget.Trigger().Wait(now, past), time.Second)
}

// closeGateway stops taking requests and answers every waiting call but those whose
// trigger is under way (their outcome answers them): the daemon stops or is fenced.
// Queued requests with a key stay planned for the next start. Called again once the
// triggers in flight are over, it answers the rest.
func (d *Daemon) closeGateway(why string) {
	if d.gw == nil {
		return
	}
	d.gw.open.Store(false)
	d.gw.finishAll(Reply{Kind: ReplyUnavailable, Reason: why}, func(slot string) bool {
		_, inflight := d.inflight[slot]
		return inflight
	})
}

// isGateway reports whether slot is a gateway request's firing.
func (d *Daemon) isGateway(slot string) bool {
	if d.gw == nil {
		return false
	}
	_, ok := d.gw.firings[slot]
	return ok
}

// observeQueued sets the gauge of gateway requests queued in the daemon.
func (d *Daemon) observeQueued() {
	n := 0
	for slot := range d.gw.firings {
		if _, ok := d.inflight[slot]; !ok {
			n++
		}
	}
	d.cfg.Metrics.SetGatewayQueued(n)
}
