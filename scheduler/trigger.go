package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/state"
)

// The trigger-and-record flow: the one way hexcron triggers a slot and records what
// came of it, used by the daemon for every firing and by `hexcron trigger` (and, through
// the daemon, by the gateway). Given a slot whose row exists, it runs the idempotent
// hexclient Trigger (one run per slot, ambiguous answers reconciled, never a blind
// re-POST) and moves the row to the state the outcome calls for, with the reason.
// What to log, count and do next is the caller's: the Outcome says what happened.

// TriggerStore is what the flow needs of the database (*state.DB).
type TriggerStore interface {
	Transition(ctx context.Context, key string, to state.State, u state.Update) error
	ClaimedRun(ctx context.Context, runID string) (slotKey string, ok bool, err error)
}

// TriggerClient is what the flow needs of the Hex client (*hexclient.Client).
type TriggerClient interface {
	Trigger(ctx context.Context, req hexclient.TriggerRequest) (*hexclient.Triggered, error)
}

// Trigger runs the trigger-and-record flow. Its zero Clock is the system clock; a nil
// Logger logs nothing.
type Trigger struct {
	Store TriggerStore
	Hex   TriggerClient
	Clock clock.Clock
	// Logger, when set, gets one INFO line per slot the first time its trigger has to
	// wait past its planned instant, saying why (the budget, a hold, paused auth).
	Logger *slog.Logger
	// Local shows an instant in the log's time zone (nil: as it is).
	Local func(time.Time) time.Time
}

// SlotRequest is one slot to trigger. Its row must exist (state.DB.PlanSlot, or
// ClaimManualSlot for a manual run): Slot carries at least its Key, Schedule, Kind,
// Planned, Project and Timeout.
type SlotRequest struct {
	Slot     state.Slot
	Body     hexclient.RunRequest // RunRequest builds it
	Deadline time.Time            // the last instant an attempt may be sent
	// OnWait, when not nil, is told every wait of the trigger (see hexclient.Wait);
	// it must not block.
	OnWait func(hexclient.Wait)
}

// Result says how a trigger ended.
type Result int

// The results of the flow.
const (
	// Triggered: Hex created the run (201); the row is triggered.
	Triggered Result = iota
	// Adopted: an ambiguous attempt's run was found in Hex's run list; the row is
	// triggered and marked adopted.
	Adopted
	// Skipped: no run, on purpose: the window closed before an attempt went through,
	// the project is held after a 403 and nothing was sent, or a manual trigger was
	// interrupted before any attempt. The row is skipped with the reason.
	Skipped
	// Failed: Hex refused the trigger for good (400, 403, 404, 422) or it failed in a
	// way that created no run. The row is failed with Hex's reason and trace id.
	Failed
	// Unknown: an ambiguous attempt could not be resolved (the run list could not be
	// read completely): Hex may have run it. The row is unknown; never sent again.
	Unknown
	// Unresolved: the deadline or a stop came while an ambiguous attempt's outcome was
	// still unknown: the row stays triggering, for a reconcile (Outcome.LastAttempt).
	Unresolved
	// Interrupted: ctx ended before any attempt's outcome was in doubt; a scheduled
	// slot's row is left as it is, for the next start.
	Interrupted
	// Fenced: this process no longer holds what it admits under (the lease, its
	// registration): nothing was sent and nothing recorded.
	Fenced
	// Taken: the slot was already triggered elsewhere: nothing recorded.
	Taken
)

var resultNames = [...]string{"triggered", "adopted", "skipped", "failed", "unknown", "unresolved", "interrupted", "fenced", "taken"}

// String names the result.
func (r Result) String() string { return resultNames[r] }

// Outcome is what the flow did for one slot.
type Outcome struct {
	Result Result
	// Run is the run created or adopted (Triggered, Adopted).
	Run *hexclient.Triggered
	// State is what the row was moved to ("" when nothing was recorded).
	State state.State
	// Reason is the recorded reason (Skipped, Failed, Unknown).
	Reason string
	// TraceID is Hex's trace id of the refusal (Failed).
	TraceID string
	// WaitReason says why the trigger went out after its planned instant ("" when it
	// did not wait); recorded on the row.
	WaitReason string
	// LastAttempt is when the unresolved attempt was sent (Unresolved).
	LastAttempt time.Time
	// Err is the trigger's error (nil for Triggered and Adopted).
	Err error
	// RecordErr is set when the outcome could not be recorded.
	RecordErr error

	skip skipReason // the metrics' skip reason (Skipped)
	held time.Time  // when the project's 403 hold ends (Failed by a 403)
}

// Run triggers req's slot and records the outcome. The record is written even after
// ctx ended (what Hex said must not be lost).
func (t Trigger) Run(ctx context.Context, req SlotRequest) Outcome {
	c := t.Clock
	if c == nil {
		c = clock.System{}
	}
	s := req.Slot
	var mu sync.Mutex
	var waited hexclient.Wait
	hreq := hexclient.TriggerRequest{
		Slot:      s.Key,
		ProjectID: s.Project,
		Body:      req.Body,
		Deadline:  req.Deadline,
		Claimed: func(runID string) bool {
			slot, ok, err := t.Store.ClaimedRun(ctx, runID)
			return err != nil || (ok && slot != s.Key)
		},
		LogAttrs: []any{keySchedule, s.Schedule},
		OnWait: func(w hexclient.Wait) {
			mu.Lock()
			first := waited.Cause == ""
			waited = w
			mu.Unlock()
			if first && t.Logger != nil {
				attrs := []any{keySchedule, s.Schedule, keySlot, s.Key, keyReason, DescribeWait(w)}
				if !w.Until.IsZero() {
					attrs = append(attrs, "until", t.local(w.Until))
				}
				t.Logger.Info(MsgTriggerWaits, attrs...)
			}
			if req.OnWait != nil {
				req.OnWait(w)
			}
		},
	}
	res, err := t.Hex.Trigger(ctx, hreq)
	mu.Lock()
	out := Outcome{Run: res, Err: err}
	if waited.Cause != "" {
		out.WaitReason = DescribeWait(waited)
	}
	mu.Unlock()
	rctx := context.WithoutCancel(ctx)
	now := c.Now()
	if err == nil {
		out.Result, out.State = Triggered, state.StateTriggered
		if res.Adopted {
			out.Result = Adopted
		}
		out.RecordErr = t.Store.Transition(rctx, s.Key, state.StateTriggered, state.Update{
			At: now, RunID: res.RunID, RunURL: res.RunURL, TraceID: res.TraceID, Triggered: res.Sent,
			Project: s.Project, Timeout: s.Timeout, ProjectVersion: res.ProjectVersion,
			Adopted: res.Adopted, WaitReason: out.WaitReason,
		})
		return out
	}

	var (
		refused    *hexclient.ProjectRefusedError
		unresolved *hexclient.UnresolvedError
		dlErr      *hexclient.DeadlineError
		cErr       *hexclient.CanceledError
		apiErr     *hexclient.APIError
	)
	switch {
	case errors.Is(err, state.ErrFenced):
		out.Result, out.Reason = Fenced, "this process no longer holds the lease or its registration"
		return out
	case errors.Is(err, state.ErrSlotTaken):
		out.Result, out.Reason = Taken, "already triggered elsewhere"
		return out
	case errors.As(err, &refused) && refused.Sent:
		out.Result, out.State = Failed, state.StateFailed
		out.Reason, out.TraceID = fmt.Sprintf("403 from Hex: %s; fix access, then reload", dash(refused.Reason())), refused.TraceID()
		out.held = refused.NextProbe
	case errors.As(err, &refused):
		out.Result, out.State, out.skip = Skipped, state.StateSkipped, skipForbidden
		out.Reason = fmt.Sprintf("403 from Hex at %s: %s; fix access, then reload",
			t.local(refused.At).Format(time.RFC3339), dash(refused.Reason()))
	case errors.As(err, &unresolved):
		out.Result, out.State = Unknown, state.StateUnknown
		out.Reason = "the trigger's outcome is unknown: " + unresolved.Err.Error() + "; Hex may have run it (look for the run in Hex)"
	case errors.As(err, &dlErr) && !dlErr.Unresolved.IsZero():
		out.Result, out.LastAttempt = Unresolved, dlErr.Unresolved
		return out
	case errors.As(err, &cErr) && !cErr.Unresolved.IsZero():
		out.Result, out.LastAttempt = Unresolved, cErr.Unresolved
		return out
	case errors.As(err, &dlErr):
		out.Result, out.State, out.skip = Skipped, state.StateSkipped, skipWindowClosed
		out.Reason = windowClosedReason(dlErr, out.WaitReason)
	case errors.As(err, &cErr) || errors.Is(err, context.Canceled):
		if s.Kind != state.KindManual {
			// The next start plans it again while its window is open, else records it
			// missed.
			out.Result = Interrupted
			return out
		}
		// Nobody fires a manual slot again: it ends here.
		out.Result, out.State, out.skip = Skipped, state.StateSkipped, skipInterrupted
		out.Reason = "manual trigger interrupted before any run was started"
	case errors.As(err, &apiErr):
		out.Result, out.State = Failed, state.StateFailed
		out.Reason, out.TraceID = apiErr.Error(), apiErr.TraceID
	default:
		out.Result, out.State, out.Reason = Failed, state.StateFailed, err.Error()
	}
	out.RecordErr = t.Store.Transition(rctx, s.Key, out.State, state.Update{At: now, Reason: out.Reason, TraceID: out.TraceID, WaitReason: out.WaitReason})
	return out
}

func (t Trigger) local(at time.Time) time.Time {
	if t.Local == nil {
		return at
	}
	return t.Local(at)
}

// MsgTriggerWaits is the INFO line of a trigger that has to wait past its planned
// instant (once per slot).
const MsgTriggerWaits = "trigger waits past its planned instant"

// windowClosedReason is the reason of a slot whose window closed before an attempt
// went through.
func windowClosedReason(e *hexclient.DeadlineError, waited string) string {
	r := "window closed before the trigger went through"
	switch {
	case e.Attempts == 0 && waited != "":
		return r + ": no attempt could be sent, waiting for " + waited
	case e.Last != nil:
		return fmt.Sprintf("%s after %d attempts: %v", r, e.Attempts, e.Last)
	}
	return fmt.Sprintf("%s after %d attempts", r, e.Attempts)
}

// DescribeWait says in words why a trigger waits: "the trigger budget (rule 60/1h
// full)", "a hold after Hex answered 429", ...
func DescribeWait(w hexclient.Wait) string {
	switch w.Cause {
	case hexclient.WaitBudget:
		var full []string
		for _, r := range w.Rules {
			full = append(full, RuleName(r))
		}
		switch {
		case len(full) == 1:
			return "the trigger budget (rule " + full[0] + " full)"
		case len(full) > 1:
			return "the trigger budget (rules " + strings.Join(full, " and ") + " full)"
		case w.Spacing:
			return "min_spacing since the last trigger"
		}
		return "the trigger budget"
	case hexclient.WaitRateLimited:
		return "a hold after Hex answered 429"
	case hexclient.WaitKernelCap:
		return "a free kernel (Hex answered 503: kernel cap)"
	case hexclient.WaitAuth:
		return "Hex to accept the token again (401: triggering paused)"
	case hexclient.WaitProject:
		return "another request to the same project (one at a time)"
	case hexclient.WaitAllCalls:
		return "Hex's cap on calls of every kind"
	}
	return string(w.Cause)
}

// RuleName is a rule as LIMIT/PER, e.g. "60/1h".
func RuleName(r planner.Rule) string {
	return fmt.Sprintf("%d/%s", r.Limit, planner.FormatDuration(r.Per))
}

// ClaimManualSlot writes the row of a manual run of s now: the slot
// NAME@<now, UTC second>+manual, kind manual, with the matrix combination it runs and
// s's project and timeout (so that the daemon tracks the run, and cancels it at its
// timeout, whatever becomes of the schedule). Two manual runs in one second get two
// slots: the second waits for the next second (twice at most). It returns the row.
func ClaimManualSlot(ctx context.Context, st interface {
	PlanSlot(ctx context.Context, s state.Slot, now time.Time) (bool, error)
}, s *planner.Schedule, matrix map[string]string, clk clock.Clock) (state.Slot, error) {
	for try := 0; ; try++ {
		now := clk.Now()
		nominal := now.UTC().Truncate(time.Second)
		row := state.Slot{Key: planner.SlotKey(s.Name, nominal, nil) + "+manual", Schedule: s.Name, Nominal: nominal, Planned: nominal,
			Matrix: matrix, Kind: state.KindManual, Project: s.Project, Timeout: s.Timeout}
		created, err := st.PlanSlot(ctx, row, now)
		if err != nil {
			return state.Slot{}, err
		}
		if created {
			return row, nil
		}
		if try == 2 {
			return state.Slot{}, fmt.Errorf("slot %s already exists (another manual run of %s this second); try again", row.Key, s.Name)
		}
		if err := clock.Sleep(ctx, clk, nominal.Add(time.Second).Sub(now)); err != nil {
			return state.Slot{}, err
		}
	}
}
