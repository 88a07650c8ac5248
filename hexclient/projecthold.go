package hexclient

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// How a 403 is handled. Hex answers 403 when the token's user may not do something to
// one project (not shared with the user, shared for viewing only) or when the token
// lacks a scope ("Run projects"). Neither is about the token as a whole, and neither
// heals by retrying, so:
//
//   - The request that got the 403 fails with Hex's reason and trace id (a
//     *ProjectRefusedError wrapping the *APIError); nothing else pauses.
//   - The project is held: no request of the refused kind (a RunProject or CancelRun
//     after a RunProject's or CancelRun's 403; a read after a read's 403) is sent until
//     its next probe, one Config.ForbiddenProbe (1h) after the 403. Such a request
//     fails at once with a *ProjectRefusedError that says so (Sent false). A read's 403
//     does not hold RunProject: it cannot tell a project not shared from a token
//     without the "Read projects" scope, which may still run it. RunProject
//     requests to one project are serialised (see reserveProject), so a refusing
//     project sees at most its first request and one probe an hour: at most 2
//     RunProject requests in any hour.
//   - The probe is whichever request to the project comes first once it is due: a read
//     (a status poll, a listing) or a RunProject of a slot due anyway. An answer other
//     than 403 lifts the part of the hold it speaks for: a 2xx read lifts a read hold
//     (and makes a RunProject probe due at once), a RunProject that is not refused
//     (201, or an ambiguous outcome) lifts the hold.
//   - ReleaseHolds (the daemon calls it on reload: "fix access, then reload") lifts
//     every hold at once.
//   - One ERROR is logged when a hold begins, not one per refused slot or probe.

// DefaultForbiddenProbe is how long a project stays held after a 403 before one
// request may probe it again.
const DefaultForbiddenProbe = time.Hour

// ErrProjectRefused is matched (errors.Is) by every *ProjectRefusedError.
var ErrProjectRefused = errors.New("hexclient: project refused (403)")

// ProjectRefusedError is a request to a project that Hex refused with 403 (Sent true:
// this call's request got it), or that was not sent because the project is held after
// a 403 (Sent false). Last is Hex's latest 403; errors.As finds it as an *APIError.
type ProjectRefusedError struct {
	Project   string
	Since     time.Time // the first 403 of this hold
	At        time.Time // when Hex's latest 403 arrived
	NextProbe time.Time // no request to the project before this
	Sent      bool      // this call's request got the 403
	First     bool      // this call's 403 began the hold
	Last      *APIError // Hex's latest 403 (reason, trace id)
}

// Error says which project is refused, since when, Hex's reason and the next probe.
func (e *ProjectRefusedError) Error() string {
	what := "held after a 403"
	if e.Sent {
		what = "refused"
	}
	reason := ""
	if e.Last != nil {
		reason = ": " + e.Last.Error()
	}
	return fmt.Sprintf("hexclient: project %s %s (since %s)%s; next probe at %s", e.Project, what,
		e.Since.UTC().Format(time.RFC3339), reason, e.NextProbe.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrProjectRefused) true.
func (e *ProjectRefusedError) Is(target error) bool { return target == ErrProjectRefused }

// Unwrap returns Hex's 403 as an *APIError.
func (e *ProjectRefusedError) Unwrap() error {
	if e.Last == nil {
		return nil
	}
	return e.Last
}

// Reason is Hex's reason for the latest 403 ("" when it gave none).
func (e *ProjectRefusedError) Reason() string {
	if e.Last == nil {
		return ""
	}
	return e.Last.Reason
}

// TraceID is the trace id of Hex's latest 403.
func (e *ProjectRefusedError) TraceID() string {
	if e.Last == nil {
		return ""
	}
	return e.Last.TraceID
}

// projectHold is one project refused by Hex.
type projectHold struct {
	since, at time.Time
	probeAt   time.Time // no request before this
	last      *APIError
	run       bool // RunProject was refused
	reads     bool // a read was refused
	probing   bool // a RunProject probe is in flight
}

func (h *projectHold) err(project string, sent, first bool) *ProjectRefusedError {
	return &ProjectRefusedError{Project: project, Since: h.since, At: h.at, NextProbe: h.probeAt, Sent: sent, First: first, Last: h.last}
}

// reserveProject admits one RunProject request to project at now, under the client's
// lock: busy when another request to it is in flight or an ambiguous attempt on it is
// unresolved (wait and ask again); a *ProjectRefusedError when its runs are held (a
// RunProject or CancelRun got 403) and no probe is due. A read's 403 holds only reads:
// it cannot tell a project not shared from a token without the "Read projects" scope,
// which may still run it. Otherwise the request counts as in flight (release it with releaseProject if
// it is not sent, or endInflight once its answer is handled).
func (c *Client) reserveProject(project string, now time.Time) (busy bool, refused *ProjectRefusedError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[project] > 0 || c.hasPendingLocked(project) {
		return true, nil
	}
	if h := c.holds[project]; h != nil && h.run {
		if now.Before(h.probeAt) {
			return false, h.err(project, false, false)
		}
		h.probing = true
	}
	c.inflight[project]++
	return false, nil
}

// releaseProject undoes a reserveProject whose request was not sent.
func (c *Client) releaseProject(project string) {
	c.mu.Lock()
	if h := c.holds[project]; h != nil {
		h.probing = false
	}
	c.mu.Unlock()
	c.endInflight(project)
}

// afterRunProject updates project's hold with a RunProject's outcome, before the
// request stops counting as in flight. It returns the error for the caller when the
// answer was a 403.
func (c *Client) afterRunProject(log *slog.Logger, project string, class Class, apiErr *APIError, at time.Time) *ProjectRefusedError {
	if class == ClassForbidden {
		return c.refuse(log, project, apiErr, at, true)
	}
	c.mu.Lock()
	h := c.holds[project]
	lift := h != nil && (class == ClassOK || class == ClassAmbiguous)
	if h != nil {
		h.probing = false
	}
	if lift {
		delete(c.holds, project)
	}
	c.mu.Unlock()
	if lift {
		log.Info("Hex no longer refuses the project; its triggers resume", KeyProject, project)
	}
	return nil
}

// refuse records a 403 for project (from RunProject when run, else from a read) and
// returns the caller's error. The first 403 of a hold logs one ERROR; a refused probe
// logs a WARN. log carries the project.
func (c *Client) refuse(log *slog.Logger, project string, apiErr *APIError, at time.Time, run bool) *ProjectRefusedError {
	c.mu.Lock()
	h := c.holds[project]
	first := h == nil
	if first {
		h = &projectHold{since: at}
		c.holds[project] = h
	}
	h.at, h.last, h.probing = at, apiErr, false
	h.probeAt = at.Add(c.cfg.ForbiddenProbe)
	if run {
		h.run = true
	} else {
		h.reads = true
	}
	e := h.err(project, true, first)
	c.mu.Unlock()
	c.obs.OnHold("forbidden", e.NextProbe)
	what, fix := "reads of it", "share the project with the token's user, or give the token the \"Read projects\" scope, then reload"
	if run {
		what, fix = "runs of it", "share the project with the token's user with permission to run it, or give the token the \"Run projects\" scope, then reload"
	}
	if first {
		log.Error("Hex refused "+what+" (403): only this project is held; no request to it until one probe an hour. To fix: "+fix,
			KeyStatus, apiErr.Status, KeyErr, apiErr, KeyTraceID, apiErr.TraceID, "next_probe", e.NextProbe)
	} else {
		log.Warn("Hex still refuses the project (403); it stays held", KeyErr, apiErr,
			KeyTraceID, apiErr.TraceID, "next_probe", e.NextProbe)
	}
	return e
}

// readAllowed is checked before a read of project: a *ProjectRefusedError while reads
// of it are held (for a write, CancelRun: while it is held at all) and no probe is
// due; otherwise the request may be sent (and, when a probe was due, it is the probe:
// the next one is an interval away).
func (c *Client) readAllowed(project string, now time.Time, write bool) *ProjectRefusedError {
	if project == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.holds[project]
	if h == nil || (!h.reads && !write) {
		return nil
	}
	if now.Before(h.probeAt) {
		return h.err(project, false, false)
	}
	h.probeAt = now.Add(c.cfg.ForbiddenProbe)
	return nil
}

// readSucceeded lifts a read hold of project: its reads work again. A RunProject
// hold stays, with its probe due at once.
func (c *Client) readSucceeded(log *slog.Logger, project string, now time.Time) {
	if project == "" {
		return
	}
	c.mu.Lock()
	h := c.holds[project]
	if h == nil || !h.reads {
		c.mu.Unlock()
		return
	}
	h.reads = false
	lifted := !h.run
	if lifted {
		delete(c.holds, project)
	} else {
		h.probeAt = now
	}
	c.broadcastLocked()
	c.mu.Unlock()
	if lifted {
		log.Info("Hex no longer refuses reads of the project; it is no longer held", KeyProject, project)
	}
}

// ReleaseHolds lifts every project hold (after the operator fixed access and reloaded)
// and returns the projects it released.
func (c *Client) ReleaseHolds() []string {
	c.mu.Lock()
	var out []string
	for p := range c.holds {
		out = append(out, p)
	}
	clear(c.holds)
	c.broadcastLocked()
	c.mu.Unlock()
	if len(out) > 0 {
		c.log.Info("project holds lifted: the next request to each project will tell", "projects", len(out))
	}
	return out
}

// ProjectHold reports whether project is held after a 403, with Hex's latest refusal.
func (c *Client) ProjectHold(project string) (*ProjectRefusedError, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.holds[project]
	if h == nil {
		return nil, false
	}
	return h.err(project, false, false), true
}
