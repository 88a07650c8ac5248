package hexsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runRequest is a parsed RunProject body.
type runRequest struct {
	inputs        map[string]json.RawMessage
	dryRun        bool
	notifications []notification
}

// notification is one entry of RunProject's notifications array.
type notification struct {
	Type                     string   `json:"type"`
	IncludeSuccessScreenshot bool     `json:"includeSuccessScreenshot"`
	ScreenshotFormat         string   `json:"screenshotFormat,omitempty"`
	SlackChannelIDs          []string `json:"slackChannelIds"`
	UserIDs                  []string `json:"userIds"`
	GroupIDs                 []string `json:"groupIds"`
	Subject                  string   `json:"subject,omitempty"`
	Body                     string   `json:"body,omitempty"`
}

// notificationRecipient is one entry of the 201's (and a run status') notifications:
// Hex answers one entry per recipient, {type, recipientType, recipient, ...}.
type notificationRecipient struct {
	Type                     string    `json:"type"`
	Subject                  string    `json:"subject,omitempty"`
	Body                     string    `json:"body,omitempty"`
	RecipientType            string    `json:"recipientType"`
	IncludeSuccessScreenshot bool      `json:"includeSuccessScreenshot"`
	ScreenshotFormat         []string  `json:"screenshotFormat,omitempty"`
	Recipient                recipient `json:"recipient"`
}

type recipient struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	IsPrivate bool   `json:"isPrivate"`
}

// recipients expands the request's notifications into Hex's response shape.
func recipients(notes []notification) []notificationRecipient {
	out := []notificationRecipient{}
	for _, n := range notes {
		var formats []string
		if n.ScreenshotFormat != "" {
			formats = []string{n.ScreenshotFormat}
		}
		add := func(kind string, ids []string) {
			for _, id := range ids {
				out = append(out, notificationRecipient{Type: n.Type, Subject: n.Subject, Body: n.Body, RecipientType: kind,
					IncludeSuccessScreenshot: n.IncludeSuccessScreenshot, ScreenshotFormat: formats,
					Recipient: recipient{ID: id, Name: strings.ToLower(kind) + "-" + id}})
			}
		}
		add("SLACK_CHANNEL", n.SlackChannelIDs)
		add("USER", n.UserIDs)
		add("GROUP", n.GroupIDs)
	}
	return out
}

// parseRunBody parses a RunProject body strictly: unknown fields, wrong types and
// contradictory fields are errors (answered 400). Booleans may be JSON booleans or the
// strings "true"/"false", as Hex's own examples send them.
func parseRunBody(r io.Reader) (runRequest, error) {
	var rr runRequest
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return rr, fmt.Errorf("read body: %w", err)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return rr, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return rr, fmt.Errorf("body is not a JSON object: %w", err)
	}
	var updateCache bool
	for k, v := range fields {
		var err error
		switch k {
		case "inputParams":
			if string(v) != "null" {
				err = json.Unmarshal(v, &rr.inputs)
				if err == nil && rr.inputs == nil {
					err = fmt.Errorf("not an object")
				}
			}
		case "dryRun":
			rr.dryRun, err = looseBool(v)
		case "updateCache":
			updateCache, err = looseBool(v)
		case "updatePublishedResults", "useCachedSqlResults":
			_, err = looseBool(v)
		case "viewId":
			var s string
			err = json.Unmarshal(v, &s)
		case "notifications":
			rr.notifications, err = parseNotifications(v)
		default:
			return rr, fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return rr, fmt.Errorf("field %q: %w", k, err)
		}
	}
	if _, ok := fields["viewId"]; ok && rr.inputs != nil {
		return rr, fmt.Errorf("viewId and inputParams cannot be given together")
	}
	if updateCache && len(rr.inputs) > 0 {
		return rr, fmt.Errorf("updateCache cannot be true when inputParams are given")
	}
	return rr, nil
}

func looseBool(v json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
			return b, nil
		}
	}
	return false, fmt.Errorf("not a boolean: %s", v)
}

func parseNotifications(v json.RawMessage) ([]notification, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, fmt.Errorf("not an array of objects: %w", err)
	}
	out := make([]notification, 0, len(raw))
	for i, m := range raw {
		n := notification{SlackChannelIDs: []string{}, UserIDs: []string{}, GroupIDs: []string{}}
		for k, f := range m {
			var err error
			switch k {
			case "type":
				err = json.Unmarshal(f, &n.Type)
			case "includeSuccessScreenshot":
				n.IncludeSuccessScreenshot, err = looseBool(f)
			case "slackChannelIds":
				err = json.Unmarshal(f, &n.SlackChannelIDs)
			case "userIds":
				err = json.Unmarshal(f, &n.UserIDs)
			case "groupIds":
				err = json.Unmarshal(f, &n.GroupIDs)
			case "screenshotFormat":
				err = json.Unmarshal(f, &n.ScreenshotFormat)
				if err == nil && n.ScreenshotFormat != "png" && n.ScreenshotFormat != "pdf" {
					err = fmt.Errorf("screenshotFormat %q is not png or pdf", n.ScreenshotFormat)
				}
			case "subject":
				err = json.Unmarshal(f, &n.Subject)
			case "body":
				err = json.Unmarshal(f, &n.Body)
			default:
				err = fmt.Errorf("unknown field %q", k)
			}
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
		}
		switch n.Type {
		case "SUCCESS", "FAILURE", "ALL":
		default:
			return nil, fmt.Errorf("item %d: type %q is not SUCCESS, FAILURE or ALL", i, n.Type)
		}
		out = append(out, n)
	}
	return out, nil
}

// runCreated is RunProject's 201 body.
type runCreated struct {
	ProjectID      string                  `json:"projectId"`
	RunID          string                  `json:"runId"`
	RunURL         string                  `json:"runUrl"`
	RunStatusURL   string                  `json:"runStatusUrl"`
	TraceID        string                  `json:"traceId"`
	ProjectVersion any                     `json:"projectVersion"`
	Notifications  []notificationRecipient `json:"notifications"`
}

// invalidParams is RunProject's other 422 form.
type invalidParams struct {
	Invalid  []invalidParam `json:"invalid"`
	NotFound []string       `json:"notFound"`
	TraceID  string         `json:"traceId"`
}

type invalidParam struct {
	ParamName     string `json:"paramName"`
	ParamValue    any    `json:"paramValue"`
	DataType      string `json:"dataType"`
	InputCellType string `json:"inputCellType"`
}

func (s *Server) runProject(c *call) {
	pid, ok := c.projectID()
	if !ok {
		return
	}
	req, err := parseRunBody(c.r.Body)
	if err != nil {
		c.error(http.StatusBadRequest, "Invalid request body", err.Error())
		return
	}
	s.mu.Lock()
	p := s.lookupProjectLocked(pid)
	var unknown []string
	if p != nil && s.cfg.RejectUnknownInputs && p.inputs != nil {
		for k := range req.inputs {
			if !p.inputs[k] {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
	}
	refusal := ""
	if p != nil {
		refusal = p.runRefusal(c.readOnly)
	}
	var conflict, full bool
	var fault Fault
	var created *run
	if p != nil && refusal == "" && p.Published && unknown == nil && !req.dryRun {
		conflict = s.cfg.Runs.Conflict409 && s.projectBusyLocked(pid, c.now)
		full = !conflict && s.cfg.Limits.Kernels >= 0 && s.activeRunsLocked(c.user, c.now) >= s.cfg.Limits.Kernels
		if !conflict && !full {
			fault = s.pickFaultLocked()
			if fault != FaultNone { // in the ledger before the answer: a dropped connection's client may read Requests first
				s.requests[c.idx].Fault = string(fault)
			}
			switch fault {
			case FaultNone, Fault5xxAfterCreate, FaultDelay, FaultDrop:
				created = s.createRunLocked(pid, c.user, TriggerAPI, c.now)
				created.inputs, created.notes = req.inputs, recipients(req.notifications)
				c.run = created.id
				s.requests[c.idx].RunCreated = created.id // visible while a delayed answer waits
			}
		}
	}
	var dryID string
	if req.dryRun {
		dryID = newUUID(s.rng)
	}
	s.mu.Unlock()
	c.fault = fault

	switch {
	case p == nil:
		c.error(http.StatusNotFound, "Project not found", "no project with id "+pid)
	case refusal != "":
		c.forbidden(refusal)
	case !p.Published:
		c.error(http.StatusUnprocessableEntity, "Project has not been published", "publish the project before running it through the API")
	case unknown != nil:
		c.json(http.StatusUnprocessableEntity, invalidParams{Invalid: []invalidParam{}, NotFound: unknown, TraceID: c.trace})
	case req.dryRun:
		c.json(http.StatusCreated, c.created(p, dryID, req.notifications))
	case conflict:
		c.error(http.StatusConflict, "Project is already running", "a run of this project is already in progress")
	case full:
		c.kernelCap()
	default:
		c.applyFault(p, created, req.notifications)
	}
}

func (c *call) kernelCap() {
	c.error(http.StatusServiceUnavailable, "Kernel limit reached",
		fmt.Sprintf("this user already has %d running kernels", c.s.cfg.Limits.Kernels))
}

// applyFault answers a RunProject that reached the fault point.
func (c *call) applyFault(p *project, created *run, notes []notification) {
	switch c.fault {
	case Fault5xxAfterCreate:
		c.error(http.StatusInternalServerError, "Internal server error", "")
	case Fault5xxBeforeCreate:
		c.text(http.StatusBadGateway, "Bad Gateway")
	case FaultConflict:
		c.error(http.StatusConflict, "Project is already running", "a run of this project is already in progress")
	case FaultUnprocessable:
		c.error(http.StatusUnprocessableEntity, "Project has not been published", "publish the project before running it through the API")
	case FaultUnauthorized:
		c.unauthorized()
	case FaultTooMany:
		c.rate = nil
		d := c.s.cfg.Faults.RetryAfter
		c.tooMany(rateInfo{limit: c.s.cfg.Limits.Trigger[0].Limit, reset: c.now.Add(d), retryAfter: d})
	case FaultKernelCap:
		c.kernelCap()
	case FaultDrop:
		if conn, _, err := http.NewResponseController(c.w).Hijack(); err == nil {
			conn.Close()
			return
		}
		panic(http.ErrAbortHandler)
	case FaultDelay:
		t := c.s.cfg.Clock.NewTimer(c.s.cfg.Faults.Delay)
		select {
		case <-t.C():
		case <-c.r.Context().Done():
			t.Stop()
		}
		c.json(http.StatusCreated, c.created(p, created.id, notes))
	default:
		c.json(http.StatusCreated, c.created(p, created.id, notes))
	}
}

func (c *call) created(p *project, rid string, notes []notification) runCreated {
	c.s.mu.Lock()
	version := c.s.projectVersionLocked(p.ID)
	c.s.mu.Unlock()
	return runCreated{ProjectID: p.ID, RunID: rid, RunURL: c.runURL(p.ID, rid), RunStatusURL: c.runStatusURL(p.ID, rid),
		TraceID: c.trace, ProjectVersion: version, Notifications: recipients(notes)}
}

// projectVersionLocked is projectVersion as the sim answers it: the project's Version,
// a number (as Hex's current reference shows it) or, with ProjectVersionString, text.
func (s *Server) projectVersionLocked(pid string) any {
	v := 1
	if p := s.projects[pid]; p != nil && p.Version > 0 {
		v = p.Version
	}
	if s.cfg.ProjectVersionString {
		return strconv.Itoa(v)
	}
	return v
}

// runRefusal is the reason of RunProject's 403 for this project and token, or "".
func (p *project) runRefusal(readOnly bool) string {
	switch {
	case p.Access == AccessNone:
		return "You do not have access to this project"
	case readOnly:
		return "This API token does not have the Run projects scope"
	case p.Access == AccessRead:
		return "You do not have permission to run this project"
	}
	return ""
}

func (c *call) runURL(pid, rid string) string {
	return strings.TrimRight(c.s.cfg.AppURL, "/") + "/app/" + pid + "/latest?runId=" + rid
}

func (c *call) runStatusURL(pid, rid string) string {
	if c.legacy {
		return c.baseURL() + "/project/" + pid + "/run/" + rid
	}
	return c.baseURL() + "/projects/" + pid + "/runs/" + rid
}

// pickFaultLocked decides the fault for the RunProject at the fault point.
func (s *Server) pickFaultLocked() Fault {
	fs := &s.faults
	fs.n++
	if f, ok := fs.at[fs.n]; ok {
		delete(fs.at, fs.n)
		return f
	}
	if len(fs.next) > 0 {
		f := fs.next[0]
		fs.next = fs.next[1:]
		return f
	}
	if len(fs.probs) > 0 {
		u := s.rng.Float64()
		for _, f := range faultOrder {
			p := fs.probs[f]
			if p <= 0 {
				continue
			}
			if u < p {
				return f
			}
			u -= p
		}
	}
	return FaultNone
}

// createRunLocked creates a run at now.
func (s *Server) createRunLocked(pid, user, trigger string, now time.Time) *run {
	pending, running, outcome := drawRun(s.rng, s.cfg.Runs)
	r := &run{id: newUUID(s.rng), project: pid, user: user, trigger: trigger, created: now,
		pending: pending, running: running, outcome: outcome, seq: len(s.runs)}
	s.runs = append(s.runs, r)
	s.byID[r.id] = r
	if user != "" {
		s.active[user] = append(s.active[user], r)
	}
	return r
}

// activeRunsLocked counts the user's runs that hold a kernel at now (not terminal).
func (s *Server) activeRunsLocked(user string, now time.Time) int {
	live := s.active[user][:0]
	for _, r := range s.active[user] {
		if st, _ := r.state(now, s.cfg.Runs.UnknownStatus); !terminal(st) {
			live = append(live, r)
		}
	}
	clear(s.active[user][len(live):])
	s.active[user] = live
	return len(live)
}

// projectBusyLocked reports whether the project has a run that is not terminal at now.
func (s *Server) projectBusyLocked(pid string, now time.Time) bool {
	for _, r := range s.runs {
		if r.project == pid {
			if st, _ := r.state(now, s.cfg.Runs.UnknownStatus); !terminal(st) {
				return true
			}
		}
	}
	return false
}
