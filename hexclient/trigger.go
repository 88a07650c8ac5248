package hexclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// TriggerRequest is one slot to trigger.
type TriggerRequest struct {
	// Slot is the slot key; every attempt is recorded in the Ledger under it.
	Slot string
	// ProjectID is the Hex project to run.
	ProjectID string
	// Body is the RunProject request body.
	Body RunRequest
	// Deadline is the last instant a new attempt may be sent (zero: none).
	Deadline time.Time
	// Claimed reports whether a run id is already recorded for another slot; such
	// runs are never adopted. May be nil.
	Claimed func(runID string) bool
	// LogAttrs are slog key-value pairs every log line about this trigger carries
	// besides project and slot (the scheduler adds the schedule's name). May be nil.
	LogAttrs []any
	// OnWait, when not nil, is called each time the trigger has to wait before its
	// next attempt, with why and until when (see Wait). It must not block.
	OnWait func(Wait)
}

// WaitCause says why a trigger waits before its next attempt.
type WaitCause string

// The causes of a wait.
const (
	WaitBudget      WaitCause = "budget"       // a trigger rule or min_spacing has no room (Wait.Rules, Wait.Spacing)
	WaitRateLimited WaitCause = "rate_limited" // every trigger is held after Hex answered 429
	WaitKernelCap   WaitCause = "kernel_cap"   // every trigger is held after Hex answered 503 (no kernel free)
	WaitAuth        WaitCause = "auth"         // triggering is paused after Hex refused the token
	WaitProject     WaitCause = "project"      // another request to the project is in flight or unresolved
	WaitAllCalls    WaitCause = "all_calls"    // Hex's cap on calls of every kind has no room
)

// Wait is one wait of a trigger before an attempt.
type Wait struct {
	Cause WaitCause
	// Until is when the trigger looks again (at most its deadline; zero for an auth
	// pause, which ends when a probe succeeds).
	Until time.Time
	// Rules are the trigger rules with no room, and Spacing is true when min_spacing
	// alone holds it (Cause WaitBudget).
	Rules   []Rule
	Spacing bool
}

// Triggered is the run a Trigger created or adopted.
type Triggered struct {
	RunID        string
	RunURL       string
	RunStatusURL string
	TraceID      string
	// ProjectVersion is the published project version the run executes, as Hex
	// reported it (RunProject's or the listing's projectVersion); "" when not given.
	ProjectVersion string
	// Adopted is true when an ambiguous attempt's run was found by listing.
	Adopted bool
	// Attempts is how many RunProject requests were sent.
	Attempts int
	// Sent is when the attempt that created the run was sent (for an adopted run, the
	// earliest unresolved attempt).
	Sent time.Time
}

// errDeadlineReached is internal: a wait ended at the slot's deadline.
var errDeadlineReached = errors.New("deadline reached")

// triggerRun is the state of one Trigger call.
type triggerRun struct {
	c          *Client
	req        TriggerRequest
	log        *slog.Logger
	body       []byte
	attempts   int
	unresolved time.Time // earliest send time of an ambiguous attempt not yet resolved
	firstAmb   time.Time // send time of this call's first ambiguous attempt (adoption cutoff)
	pend       *pending  // this call's entry among the client's unresolved attempts
	ambN       int       // ambiguous or unreachable outcomes so far (backoff exponent)
	last       error
	waited     Wait // the latest wait before an attempt
}

// wait records (and reports through OnWait) that the trigger waits.
func (t *triggerRun) wait(w Wait) {
	if w.Until.After(t.req.Deadline) {
		w.Until = t.req.Deadline
	}
	t.waited = w
	if t.req.OnWait != nil {
		t.req.OnWait(w)
	}
}

// Trigger creates one run for req.Slot, or adopts the run an ambiguous attempt
// created. It blocks until the run exists (*Triggered), the request fails permanently
// (*APIError with Class ClassPermanent), Hex refuses the project with 403 or the
// project is held after one (*ProjectRefusedError, matching ErrProjectRefused), an
// ambiguous attempt cannot be resolved (*UnresolvedError, matching ErrUnresolved),
// req.Deadline passes (*DeadlineError, matching ErrDeadline) or ctx ends
// (*CanceledError). A Ledger error (for instance a slot already triggered elsewhere)
// is returned wrapped. See docs/trigger-protocol.md.
func (c *Client) Trigger(ctx context.Context, req TriggerRequest) (*Triggered, error) {
	body, err := marshalBody(req.Body)
	if err != nil {
		return nil, fmt.Errorf("hexclient: trigger %s: %w", req.Slot, err)
	}
	if req.Deadline.IsZero() {
		req.Deadline = time.Unix(1<<62, 0)
	}
	t := &triggerRun{c: c, req: req, body: body,
		log: c.log.With(append([]any{KeyProject, req.ProjectID, KeySlot, req.Slot}, req.LogAttrs...)...)}
	res, err := t.run(ctx)
	c.forgetPending(t.pend)
	switch {
	case res != nil && res.Adopted:
		c.obs.OnTrigger("trigger_adopted")
	case res != nil:
		c.obs.OnTrigger("trigger_created")
	case errors.Is(err, ErrDeadline):
		c.obs.OnTrigger("trigger_deadline")
		attrs := []any{KeyAttempt, t.attempts, "unresolved", !t.unresolved.IsZero()}
		if t.last != nil {
			attrs = append(attrs, KeyErr, t.last)
		}
		if t.waited.Cause != "" {
			attrs = append(attrs, "waiting_for", string(t.waited.Cause))
		}
		t.log.Debug("trigger deadline passed; slot not triggered", attrs...)
	case errors.Is(err, ErrUnresolved):
		c.obs.OnTrigger("trigger_unresolved")
	case errors.Is(err, ErrProjectRefused):
		c.obs.OnTrigger("trigger_refused")
	case errors.As(err, new(*CanceledError)):
		c.obs.OnTrigger("trigger_canceled")
		t.log.Info("trigger interrupted", KeyAttempt, t.attempts, "unresolved", !t.unresolved.IsZero())
	default:
		c.obs.OnTrigger("trigger_failed")
	}
	return res, err
}

func (t *triggerRun) deadlineErr() error {
	return &DeadlineError{Slot: t.req.Slot, Deadline: t.req.Deadline, Attempts: t.attempts, Last: t.last, Unresolved: t.unresolved, Waited: t.waited}
}

func (t *triggerRun) canceledErr(err error) error {
	return &CanceledError{Slot: t.req.Slot, Attempts: t.attempts, Unresolved: t.unresolved, Err: err}
}

// stopErr converts a wait's error into Trigger's error.
func (t *triggerRun) stopErr(err error) error {
	if errors.Is(err, errDeadlineReached) {
		return t.deadlineErr()
	}
	return t.canceledErr(err)
}

func (t *triggerRun) run(ctx context.Context) (*Triggered, error) {
	c := t.c
	for {
		if !t.unresolved.IsZero() {
			res, err := t.resolve(ctx)
			if res != nil || err != nil {
				return res, err
			}
		}
		if !c.clock.Now().Before(t.req.Deadline) {
			return nil, t.deadlineErr()
		}
		token, id, sent, rbDone, err := t.admit(ctx)
		if err != nil {
			return nil, err
		}
		t.attempts++
		alog := t.log.With(KeyAttempt, t.attempts)
		resp, sendErr := c.send(ctx, "run project", token, http.MethodPost, "/projects/"+url.PathEscape(t.req.ProjectID)+"/runs", nil, t.body)
		arrived := c.clock.Now()
		rbDone(arrived)
		var class Class
		var apiErr *APIError
		if sendErr != nil && errors.As(sendErr, &apiErr) && apiErr.NotSent {
			// Nothing was written: not an attempt. Its ledger row and claim are undone.
			t.attempts--
			if err := c.ledger.Void(context.WithoutCancel(ctx), id, arrived); err != nil {
				alog.Warn("could not void an attempt that was never sent", KeyErr, err)
			}
		} else if err := c.ledger.Complete(context.WithoutCancel(ctx), id, arrived); err != nil {
			alog.Warn("could not record the attempt's completion in the ledger", KeyErr, err)
		}
		if sendErr != nil {
			errors.As(sendErr, &apiErr)
			class = apiErr.Class
		} else {
			class = Classify(resp.status, nil)
			if class != ClassOK {
				apiErr = newHTTPError("run project", resp.status, resp.header, resp.body, redactor(token))
			}
		}
		var created *RunCreated
		if class == ClassOK {
			var derr error
			if created, derr = decodeRunCreated(resp.body); derr != nil {
				// A 2xx without a run id: a run probably exists; find it.
				alog.Warn("RunProject answered 2xx with an unreadable body; reconciling", KeyStatus, resp.status, KeyErr, derr)
				class = ClassAmbiguous
				apiErr = &APIError{Op: "run project", Status: resp.status, Class: ClassAmbiguous, Err: derr}
			}
		}
		// Before this attempt stops counting as in flight, its run is marked handed
		// out (201) or the attempt joins the unresolved ones (ambiguous), so that no
		// reconcile can see the run as nobody's (see reconcile.go).
		switch class {
		case ClassOK:
			c.succeeded(created.RunID, arrived)
		case ClassAmbiguous, ClassCanceled:
			t.markAmbiguous(sent)
		}
		refused := c.afterRunProject(alog, t.req.ProjectID, class, apiErr, arrived)
		c.endInflight(t.req.ProjectID)
		c.obs.OnTrigger(class.String())
		if apiErr != nil {
			t.last = apiErr
		}
		switch class {
		case ClassOK:
			if created.TraceID == "" {
				created.TraceID = resp.header.Get("x-trace-id")
			}
			if created.RunStatusURL == "" {
				created.RunStatusURL = c.runStatusURL(t.req.ProjectID, created.RunID)
			}
			alog.Debug("run triggered", KeyRun, created.RunID, KeyTraceID, created.TraceID)
			return &Triggered{RunID: created.RunID, RunURL: created.RunURL, RunStatusURL: created.RunStatusURL,
				TraceID: created.TraceID, ProjectVersion: created.ProjectVersion, Attempts: t.attempts, Sent: sent}, nil

		case ClassRateLimited:
			t.rateLimited(alog, resp, apiErr, arrived)

		case ClassKernelCap:
			// Only Retry-After speaks for the kernel cap: the RateLimit-Reset headers Hex
			// (and hexsim) put on every limited response describe the rate-limit window,
			// which says nothing about when a kernel frees, and would end the hold at once.
			wait, ok := ParseRetryAfter(resp.header.Get("Retry-After"), arrived)
			c.mu.Lock()
			n := c.kernelN
			c.kernelN++
			c.mu.Unlock()
			if !ok {
				wait = c.halfJitter(c.cfg.KernelBackoff, n)
			}
			until := arrived.Add(wait)
			c.setHold("kernel_cap", until)
			alog.Warn("Hex is at its running-kernel cap (503, no run created); holding triggers until a run ends",
				KeyStatus, resp.status, KeyWait, wait, KeyTraceID, apiErr.TraceID)

		case ClassAmbiguous:
			alog.Warn("RunProject outcome is ambiguous; will list the project's runs before any retry",
				KeyStatus, statusOf(resp), KeyErr, apiErr, KeyTraceID, apiErr.TraceID)

		case ClassUnreachable:
			wait := c.jitter(c.cfg.ServerBackoff, t.ambN)
			t.ambN++
			alog.Warn("Hex unreachable (nothing was sent); retrying", KeyErr, apiErr, KeyWait, wait)
			if err := c.sleepUntil(ctx, arrived.Add(wait), t.req.Deadline, nil); err != nil {
				return nil, t.stopErr(err)
			}

		case ClassAuth:
			c.pauseAuth(alog, apiErr)

		case ClassForbidden:
			return nil, refused

		case ClassCanceled:
			return nil, t.canceledErr(apiErr.Err)

		default: // ClassPermanent
			alog.Error("RunProject failed permanently; not retrying",
				KeyStatus, apiErr.Status, KeyErr, apiErr, KeyTraceID, apiErr.TraceID)
			return nil, apiErr
		}
	}
}

func statusOf(r *response) int {
	if r == nil {
		return 0
	}
	return r.status
}

func (t *triggerRun) markAmbiguous(sent time.Time) {
	if t.unresolved.IsZero() {
		t.unresolved = sent
	}
	if t.firstAmb.IsZero() {
		t.firstAmb = sent
	}
	if t.pend == nil {
		t.pend = t.c.addPending(t.req.ProjectID)
	}
}

// rateLimited handles a 429 on a trigger the budget had admitted.
func (t *triggerRun) rateLimited(alog *slog.Logger, resp *response, apiErr *APIError, now time.Time) {
	c := t.c
	c.obs.On429(false)
	if c.adapt.decrease(now) {
		alog.Warn(MsgTrigger429,
			KeyStatus, resp.status, KeyTraceID, apiErr.TraceID, "factor", Decrease)
	}
	c.mu.Lock()
	n := c.rateN
	c.rateN++
	c.mu.Unlock()
	wait, ok := HeaderWait(resp.header, now)
	if !ok {
		wait = c.jitter(c.cfg.RateLimitBackoff, n)
	}
	apiErr.RetryAfter = wait
	c.setHold("rate_limited", now.Add(wait))
	alog.Info("rate limited; waiting", KeyWait, wait, KeyTraceID, apiErr.TraceID)
}

// admit waits for the hold, the auth pause, the project's turn, the token and the
// budget, and records one attempt in the ledger (and in the all-calls read log). The
// attempt then counts as the project's one request in flight. A project held after a
// 403 ends the trigger at once with a *ProjectRefusedError.
func (t *triggerRun) admit(ctx context.Context) (token string, id int64, sent time.Time, done func(time.Time), err error) {
	c := t.c
	project := t.req.ProjectID
	for {
		now := c.clock.Now()
		if !now.Before(t.req.Deadline) {
			return "", 0, time.Time{}, nil, t.deadlineErr()
		}
		c.mu.Lock()
		until, reason, paused, changed := c.holdUntil, c.holdReason, c.authPaused, c.holdChanged
		c.mu.Unlock()
		if paused {
			t.wait(Wait{Cause: WaitAuth})
			if err := c.probeAuth(ctx, t.req.Deadline, t.log); err != nil {
				return "", 0, time.Time{}, nil, t.stopErr(err)
			}
			continue
		}
		if until.After(now) {
			if reason == "kernel_cap" && c.takeKernelPass(t) {
				t.log.Debug("a kernel freed: this trigger goes first (earliest deadline)")
			} else {
				t.log.Debug("triggers held", "reason", reason, KeyWait, until.Sub(now))
				cause := WaitRateLimited
				if reason == "kernel_cap" {
					cause = WaitKernelCap
				}
				t.wait(Wait{Cause: cause, Until: until})
				err := c.sleepUntil(ctx, until, t.req.Deadline, changed)
				if reason == "kernel_cap" && err != nil {
					c.leaveKernelWait(t)
				}
				if err != nil {
					return "", 0, time.Time{}, nil, t.stopErr(err)
				}
				continue
			}
		}
		c.leaveKernelWait(t)
		// One RunProject request to a project at a time, and none while an ambiguous
		// attempt on it is unresolved: a run is then never handed to the wrong slot of
		// the project (see reconcile.go), and a project refusing with 403 sees one
		// request, not one per slot.
		busy, refused := c.reserveProject(project, now)
		if refused != nil {
			t.log.Debug("project held after a 403; not sent", KeyErr, refused)
			return "", 0, time.Time{}, nil, refused
		}
		if busy {
			t.wait(Wait{Cause: WaitProject})
			if err := c.sleepUntil(ctx, t.req.Deadline, t.req.Deadline, changed); err != nil {
				return "", 0, time.Time{}, nil, t.stopErr(err)
			}
			continue
		}
		tok, terr := c.token()
		if terr != nil {
			c.releaseProject(project)
			c.pauseAuth(t.log, &APIError{Op: "read token", Class: ClassAuth, Err: terr})
			continue
		}
		b := withUsable(c.budget, c.adapt.usable(now))
		var wait time.Duration
		var aid int64
		var w Wait
		rbDone, err := c.reads.reserveAll(now, func(allWait time.Duration) (bool, error) {
			if allWait > 0 {
				wait, w = allWait, Wait{Cause: WaitAllCalls}
				return false, nil
			}
			var err error
			aid, wait, err = c.ledger.Admit(ctx, now, b.Since(now), t.req.Slot, func(a []Attempt) time.Duration {
				wait := b.Wait(now, a)
				if wait > 0 {
					w = Wait{Cause: WaitBudget}
					w.Rules, w.Spacing = b.Full(now, a)
				}
				return wait
			})
			return err == nil && wait <= 0, err
		})
		if err != nil {
			c.releaseProject(project)
			if ctx.Err() != nil {
				return "", 0, time.Time{}, nil, t.canceledErr(ctx.Err())
			}
			return "", 0, time.Time{}, nil, fmt.Errorf("hexclient: trigger %s: %w", t.req.Slot, err)
		}
		if rbDone != nil {
			return tok, aid, now, rbDone, nil
		}
		c.releaseProject(project)
		t.log.Debug(MsgWaitingForBudget, KeyWait, wait, "cause", string(w.Cause))
		w.Until = now.Add(wait)
		t.wait(w)
		// Not woken by other changes: the project's release just now is one, and two
		// triggers of one project waiting for budget must not wake each other in turn.
		// The budget and every hold are checked again after the wait.
		if err := c.sleepUntil(ctx, now.Add(wait), t.req.Deadline, nil); err != nil {
			return "", 0, time.Time{}, nil, t.stopErr(err)
		}
	}
}

// resolve waits the visibility delay (and the backoff), then lists the project's API
// runs: it returns the adopted run, or nil, nil when a complete listing showed none (the
// caller may re-POST), or the error that ends Trigger. A failed listing is retried; a
// listing that cannot be completed is retried twice, then ends Trigger with an
// *UnresolvedError. Neither ever leads to a re-POST.
func (t *triggerRun) resolve(ctx context.Context) (*Triggered, error) {
	c := t.c
	wait := max(c.cfg.VisibilityDelay, c.jitter(c.cfg.ServerBackoff, t.ambN))
	t.ambN++
	incomplete := 0
	for {
		now := c.clock.Now()
		err := c.sleepUntil(ctx, now.Add(wait), t.req.Deadline, nil)
		if err != nil && !errors.Is(err, errDeadlineReached) {
			return nil, t.canceledErr(err)
		}
		pastDeadline := err != nil
		// A run from any earlier ambiguous attempt of this call is ours too (it may
		// have become visible late), so the cutoff is the first one's send time.
		run, lerr := c.reconcile(ctx, t.req.ProjectID, t.firstAmb, t.req.Claimed, t.log)
		switch {
		case lerr != nil:
			if ctx.Err() != nil {
				return nil, t.canceledErr(ctx.Err())
			}
			t.last = lerr
			if errors.Is(lerr, ErrIncompleteListing) {
				incomplete++
				if incomplete >= 3 || pastDeadline {
					t.log.Error("cannot tell whether an ambiguous trigger created a run: the project's run listing cannot be read completely; not sending it again",
						KeyErr, lerr)
					return nil, &UnresolvedError{Slot: t.req.Slot, Sent: t.unresolved, Attempts: t.attempts, Err: lerr}
				}
			}
			t.log.Warn("could not list the project's runs to resolve an ambiguous trigger", KeyErr, lerr)
			if pastDeadline {
				return nil, t.deadlineErr()
			}
			wait = max(c.cfg.VisibilityDelay, c.jitter(c.cfg.ServerBackoff, t.ambN))
			t.ambN++
			continue
		case run != nil:
			c.succeeded("", c.clock.Now())
			c.forgetPending(t.pend)
			t.pend = nil
			t.log.Debug("adopted the run an ambiguous attempt created", KeyRun, run.RunID, KeyTraceID, run.TraceID)
			return &Triggered{RunID: run.RunID, RunURL: run.RunURL, RunStatusURL: c.runStatusURL(t.req.ProjectID, run.RunID),
				TraceID: run.TraceID, ProjectVersion: run.ProjectVersion, Adopted: true, Attempts: t.attempts, Sent: t.unresolved}, nil
		default:
			t.unresolved = time.Time{}
			c.forgetPending(t.pend)
			t.pend = nil
			if pastDeadline {
				return nil, t.deadlineErr()
			}
			t.log.Info("no run appeared after the ambiguous attempt; trying again")
			return nil, nil
		}
	}
}

// KernelFreed ends a kernel-cap hold: the scheduler calls it when a run ends.
func (c *Client) KernelFreed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holdReason != "kernel_cap" || c.holdUntil.IsZero() {
		return
	}
	if len(c.kernelWaiters) <= 1 {
		// Nobody or one trigger waits: the hold simply ends.
		c.holdUntil, c.holdReason, c.kernelPasses = time.Time{}, "", 0
	} else {
		// Several wait for one kernel: let one through, not a herd that would spend
		// an attempt each and get 503 again.
		c.kernelPasses++
	}
	c.broadcastLocked()
}

// takeKernelPass registers t as waiting out a kernel-cap hold and reports whether it
// may go now: a freed kernel is waiting to be taken and t has the earliest deadline of
// the waiters (ties: whoever asks first).
func (c *Client) takeKernelPass(t *triggerRun) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kernelWaiters == nil {
		c.kernelWaiters = map[*triggerRun]time.Time{}
	}
	c.kernelWaiters[t] = t.req.Deadline
	if c.kernelPasses == 0 {
		return false
	}
	for o, d := range c.kernelWaiters {
		if o != t && d.Before(t.req.Deadline) {
			return false
		}
	}
	c.kernelPasses--
	delete(c.kernelWaiters, t)
	c.broadcastLocked() // the next earliest re-checks whether a pass is left
	return true
}

// leaveKernelWait forgets t as a kernel-cap waiter (it goes on, or gave up).
func (c *Client) leaveKernelWait(t *triggerRun) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.kernelWaiters[t]; ok {
		delete(c.kernelWaiters, t)
		c.broadcastLocked() // a pass it could have taken goes to the next
	}
}

// setHold holds every trigger of this client until until (a later hold wins).
func (c *Client) setHold(reason string, until time.Time) {
	c.mu.Lock()
	if reason == "kernel_cap" {
		c.kernelPasses = 0 // Hex says the kernels are full again
	}
	if until.After(c.holdUntil) {
		c.holdUntil, c.holdReason = until, reason
		c.broadcastLocked()
	}
	c.mu.Unlock()
	c.obs.OnHold(reason, until)
}

func (c *Client) broadcastLocked() {
	close(c.holdChanged)
	c.holdChanged = make(chan struct{})
}

// succeeded records a run this client handed out and resets the failure counters.
func (c *Client) succeeded(runID string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kernelN, c.rateN, c.authN = 0, 0, 0
	if runID != "" {
		c.own[runID] = now
	}
	for id, at := range c.own {
		if now.Sub(at) > 48*time.Hour {
			delete(c.own, id)
		}
	}
}

// pauseAuth stops triggering after a 401 (or an unreadable token) until a probe
// succeeds; the first failure of an episode logs one ERROR saying what to do (a
// refused token, or a base URL of the wrong region or tenant).
func (c *Client) pauseAuth(log *slog.Logger, e *APIError) {
	c.mu.Lock()
	first := !c.authPaused
	c.authPaused = true
	c.authN++
	if first {
		c.broadcastLocked()
	}
	c.mu.Unlock()
	if !first {
		return
	}
	c.obs.OnHold("auth", time.Time{})
	log.Error("Hex refused the API token; triggering is paused. The token is revoked, expired or wrong, or hex.base_url is not your workspace's "+
		"region or tenant (an EU or single-tenant workspace is not reached through app.hex.tech). Rotate the token: a token file is re-read on every request, "+
		"so writing the new token there is enough; a systemd credential (LoadCredential= hex-token) is copied when the service starts, "+
		"so write it and run `systemctl restart hexcron` (a reload does not re-read it). "+
		"Triggering resumes by itself once a read with the token succeeds",
		KeyStatus, e.Status, KeyErr, e, KeyTraceID, e.TraceID)
}

// probeAuth waits until a cheap read (ListProjects limit=1) with the token source's
// current token is accepted (a 2xx, or a 403: the token is good, a scope is missing),
// one prober at a time. It returns errDeadlineReached or
// ctx's error when those end first.
func (c *Client) probeAuth(ctx context.Context, deadline time.Time, log *slog.Logger) error {
	c.mu.Lock()
	changed, n := c.holdChanged, c.authN
	c.mu.Unlock()
	select {
	case c.probe <- struct{}{}:
	default:
		// Someone else is probing: wait for the pause to change.
		return c.sleepUntil(ctx, deadline, deadline, changed)
	}
	defer func() { <-c.probe }()
	wait := time.Duration(0)
	if n > 1 {
		wait = c.jitter(c.cfg.AuthBackoff, n-2)
	}
	for i := 0; ; i++ {
		if wait > 0 {
			if err := c.sleepUntil(ctx, c.clock.Now().Add(wait), deadline, nil); err != nil {
				return err
			}
		}
		c.mu.Lock()
		paused := c.authPaused
		c.mu.Unlock()
		if !paused {
			return nil
		}
		_, err := c.ListProjects(ctx, ProjectsQuery{Limit: 1})
		var ae *APIError
		if err == nil || (errors.As(err, &ae) && ae.Class == ClassForbidden) {
			// A 403 is about a scope, not the token: Hex accepted the token.
			c.resumeAuth(log) // already done by the read itself; here for clarity
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Debug("auth probe failed", KeyErr, err)
		wait = c.jitter(c.cfg.AuthBackoff, i)
	}
}

// sleepUntil waits until until, or until deadline (errDeadlineReached), or until wake
// is closed (nil error), or until ctx ends (its error).
func (c *Client) sleepUntil(ctx context.Context, until, deadline time.Time, wake <-chan struct{}) error {
	now := c.clock.Now()
	hitDeadline := !until.Before(deadline)
	if hitDeadline {
		until = deadline
	}
	d := until.Sub(now)
	if d <= 0 {
		if hitDeadline {
			return errDeadlineReached
		}
		return ctx.Err()
	}
	tm := c.clock.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
		return nil
	case <-tm.C():
		if hitDeadline {
			return errDeadlineReached
		}
		return nil
	}
}
