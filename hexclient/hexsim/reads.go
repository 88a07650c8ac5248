package hexsim

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// hexTime formats an instant as Hex does: UTC RFC 3339 with milliseconds.
func hexTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// runStatus is GetRunStatus' body and each element of GetProjectRuns' runs.
type runStatus struct {
	ProjectID      string                  `json:"projectId"`
	ProjectVersion any                     `json:"projectVersion"`
	RunID          string                  `json:"runId"`
	RunURL         string                  `json:"runUrl"`
	Status         string                  `json:"status"`
	RunTrigger     string                  `json:"runTrigger"`
	StartTime      *string                 `json:"startTime"`
	EndTime        *string                 `json:"endTime"`
	ElapsedTime    *float64                `json:"elapsedTime"`
	TraceID        string                  `json:"traceId"`
	Notifications  []notificationRecipient `json:"notifications"`
}

// status is run r as GetRunStatus shows it. Call with s.mu held.
func (c *call) status(r *run) runStatus {
	st, end := r.state(c.now, c.s.cfg.Runs.UnknownStatus)
	start := hexTime(r.created)
	notes := r.notes
	if notes == nil {
		notes = []notificationRecipient{}
	}
	rs := runStatus{ProjectID: r.project, ProjectVersion: c.s.projectVersionLocked(r.project), RunID: r.id,
		RunURL: c.runURL(r.project, r.id), Status: st, RunTrigger: r.trigger, StartTime: &start, TraceID: c.trace,
		Notifications: notes}
	if !end.IsZero() {
		e := hexTime(end)
		ms := float64(end.Sub(r.created)) / float64(time.Millisecond)
		rs.EndTime, rs.ElapsedTime = &e, &ms
	}
	return rs
}

// projectID reads and checks the path's project id, answering 400 when malformed.
func (c *call) projectID() (string, bool) {
	pid := strings.ToLower(c.r.PathValue("projectId"))
	if !wellFormedUUID(pid) {
		c.error(http.StatusBadRequest, "Invalid projectId", "projectId must be a UUID")
		return "", false
	}
	return pid, true
}

// publishedProject answers 404, 403 or 422 unless the path names a published project
// the token's user may see.
func (c *call) publishedProject() (string, bool) {
	pid, ok := c.projectID()
	if !ok {
		return "", false
	}
	c.s.mu.Lock()
	p := c.s.lookupProjectLocked(pid)
	c.s.mu.Unlock()
	switch {
	case p == nil:
		c.error(http.StatusNotFound, "Project not found", "no project with id "+pid)
		return "", false
	case p.Access == AccessNone:
		c.forbidden(p.runRefusal(false))
		return "", false
	case !p.Published:
		c.error(http.StatusUnprocessableEntity, "Project has not been published", "")
		return "", false
	}
	return pid, true
}

// runOf answers 400 or 404 unless the path names a run of project pid.
func (c *call) runOf(pid string) (*run, bool) {
	rid := strings.ToLower(c.r.PathValue("runId"))
	if !wellFormedUUID(rid) {
		c.error(http.StatusBadRequest, "Invalid runId", "runId must be a UUID")
		return nil, false
	}
	c.s.mu.Lock()
	r := c.s.byID[rid]
	c.s.mu.Unlock()
	if r == nil || r.project != pid {
		c.error(http.StatusNotFound, "Run not found", "no run "+rid+" in project "+pid)
		return nil, false
	}
	return r, true
}

func (s *Server) getRunStatus(c *call) {
	pid, ok := c.publishedProject()
	if !ok {
		return
	}
	r, ok := c.runOf(pid)
	if !ok {
		return
	}
	s.mu.Lock()
	body := c.status(r)
	s.mu.Unlock()
	c.json(http.StatusOK, body)
}

func (s *Server) cancelRun(c *call) {
	pid, ok := c.publishedProject()
	if !ok {
		return
	}
	s.mu.Lock()
	refusal := s.projects[pid].runRefusal(c.readOnly)
	s.mu.Unlock()
	if refusal != "" {
		c.forbidden(refusal)
		return
	}
	r, ok := c.runOf(pid)
	if !ok {
		return
	}
	s.mu.Lock()
	if st, _ := r.state(c.now, s.cfg.Runs.UnknownStatus); !terminal(st) {
		r.cancelled = c.now
	}
	s.mu.Unlock()
	c.header()
	c.w.WriteHeader(http.StatusNoContent)
}

// projectRuns is GetProjectRuns' body.
type projectRuns struct {
	Runs         []runStatus `json:"runs"`
	NextPage     *string     `json:"nextPage"`
	PreviousPage *string     `json:"previousPage"`
	TraceID      string      `json:"traceId"`
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(q url.Values, name string, def, lo, hi int) (int, bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

func (s *Server) getProjectRuns(c *call) {
	pid, ok := c.publishedProject()
	if !ok {
		return
	}
	q := c.r.URL.Query()
	limit, ok := intParam(q, "limit", 25, 1, 100)
	if !ok {
		c.error(http.StatusBadRequest, "Invalid limit", "limit must be an integer from 1 to 100")
		return
	}
	offset, ok := intParam(q, "offset", 0, 0, int(^uint(0)>>1))
	if !ok {
		c.error(http.StatusBadRequest, "Invalid offset", "offset must be a non-negative integer")
		return
	}
	statusFilter := q.Get("statusFilter")
	switch statusFilter {
	case "", StatusPending, StatusRunning, StatusErrored, StatusCompleted, StatusKilled, StatusNoKernel:
	default:
		c.error(http.StatusBadRequest, "Invalid statusFilter", "statusFilter must be one of Hex's run statuses")
		return
	}
	trig := q.Get("runTriggerFilter")
	switch trig {
	case "", "ALL", TriggerAPI, TriggerScheduled, TriggerAppRefresh:
	default:
		c.error(http.StatusBadRequest, "Invalid runTriggerFilter", "runTriggerFilter must be API, SCHEDULED, APP_REFRESH or ALL")
		return
	}
	s.mu.Lock()
	var match []runStatus
	for _, r := range s.listOrderLocked() {
		if r.project != pid || (trig != "" && trig != "ALL" && r.trigger != trig) {
			continue
		}
		rs := c.status(r)
		if statusFilter != "" && rs.Status != statusFilter {
			continue
		}
		match = append(match, rs)
	}
	s.mu.Unlock()
	body := projectRuns{Runs: []runStatus{}, TraceID: c.trace}
	if offset < len(match) {
		body.Runs = match[offset:min(len(match), offset+limit)]
	}
	page := func(off int) *string {
		v := url.Values{}
		for _, k := range []string{"statusFilter", "runTriggerFilter"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("limit", strconv.Itoa(limit))
		v.Set("offset", strconv.Itoa(off))
		u := c.baseURL() + strings.TrimPrefix(c.r.URL.Path, "/api/v1") + "?" + v.Encode()
		return &u
	}
	if offset+limit < len(match) {
		body.NextPage = page(offset + limit)
	}
	if offset > 0 {
		body.PreviousPage = page(max(0, offset-limit))
	}
	c.json(http.StatusOK, body)
}

// listOrderLocked returns every run in the order GetProjectRuns lists them
// (Config.ListOrder): newest or oldest created first, or by a seeded hash of the run
// id, an order unrelated to time that is the same on every request.
func (s *Server) listOrderLocked() []*run {
	out := slices.Clone(s.runs) // creation order
	switch s.cfg.ListOrder {
	case ListOldestFirst:
	case ListUnordered:
		key := func(r *run) uint64 {
			h := fnv.New64a()
			fmt.Fprintf(h, "%d/%s", s.cfg.Seed, r.id)
			return h.Sum64()
		}
		slices.SortFunc(out, func(a, b *run) int { return cmp.Compare(key(a), key(b)) })
	default:
		slices.Reverse(out)
	}
	return out
}

// projectJSON is one project as ListProjects and GetProject show it.
type projectJSON struct {
	ID              string     `json:"id"`
	Title           string     `json:"title"`
	Description     *string    `json:"description"`
	Type            string     `json:"type"`
	Creator         emailOnly  `json:"creator"`
	Owner           emailOnly  `json:"owner"`
	Status          *nameOnly  `json:"status"`
	Categories      []nameOnly `json:"categories"`
	CreatedAt       string     `json:"createdAt"`
	LastEditedAt    string     `json:"lastEditedAt"`
	LastPublishedAt *string    `json:"lastPublishedAt"`
	ArchivedAt      *string    `json:"archivedAt"`
	TrashedAt       *string    `json:"trashedAt"`
	Schedules       []hexSched `json:"schedules"`
}

// hexSched is one of a project's own Hex schedules: its cadence, whether it is on,
// and the cadence's settings under the cadence's name (GetProject's shape).
type hexSched struct {
	Cadence string         `json:"cadence"`
	Enabled bool           `json:"enabled"`
	Hourly  *cadenceSpec   `json:"hourly,omitempty"`
	Daily   *cadenceSpec   `json:"daily,omitempty"`
	Weekly  *cadenceSpec   `json:"weekly,omitempty"`
	Monthly *cadenceSpec   `json:"monthly,omitempty"`
	Custom  *customCadence `json:"custom,omitempty"`
}

type cadenceSpec struct {
	Timezone string `json:"timezone"`
	Minute   int    `json:"minute"`
}

type customCadence struct {
	Timezone string `json:"timezone"`
	Cron     string `json:"cron"`
}

type emailOnly struct {
	Email string `json:"email"`
}

type nameOnly struct {
	Name string `json:"name"`
}

func (s *Server) projectJSONLocked(p *project) projectJSON {
	pj := projectJSON{ID: p.ID, Title: p.Title, Type: "PROJECT", Creator: emailOnly{"sim@example.com"},
		Owner: emailOnly{"sim@example.com"}, Categories: []nameOnly{},
		CreatedAt: hexTime(s.born.Add(-48 * time.Hour)), LastEditedAt: hexTime(s.born.Add(-2 * time.Hour))}
	if p.Published {
		t := hexTime(s.born.Add(-time.Hour))
		pj.LastPublishedAt = &t
	}
	pj.Schedules = []hexSched{}
	for _, hs := range p.Schedules {
		tz := hs.Timezone
		if tz == "" {
			tz = "UTC"
		}
		j := hexSched{Cadence: hs.Cadence, Enabled: hs.Enabled}
		spec := &cadenceSpec{Timezone: tz}
		switch hs.Cadence {
		case "HOURLY":
			j.Hourly = spec
		case "DAILY":
			j.Daily = spec
		case "WEEKLY":
			j.Weekly = spec
		case "MONTHLY":
			j.Monthly = spec
		default:
			j.Custom = &customCadence{Timezone: tz, Cron: hs.Cron}
		}
		pj.Schedules = append(pj.Schedules, j)
	}
	return pj
}

// projectsPage is ListProjects' body.
type projectsPage struct {
	Values     []projectJSON `json:"values"`
	Pagination struct {
		After  *string `json:"after"`
		Before *string `json:"before"`
	} `json:"pagination"`
}

func cursor(id string) *string {
	c := base64.RawURLEncoding.EncodeToString([]byte(id))
	return &c
}

func (s *Server) listProjects(c *call) {
	q := c.r.URL.Query()
	limit, ok := intParam(q, "limit", 25, 1, 100)
	if !ok {
		c.error(http.StatusBadRequest, "Invalid limit", "limit must be an integer from 1 to 100")
		return
	}
	body, ok := s.projectsPage(limit, q.Get("after"), q.Get("before"))
	if !ok {
		c.error(http.StatusBadRequest, "Invalid cursor", "after or before is not a cursor this server gave")
		return
	}
	c.json(http.StatusOK, body)
}

// projectsPage is one page of the registry; ok is false for an unknown cursor.
func (s *Server) projectsPage(limit int, after, before string) (body projectsPage, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	find := func(cur string) (int, bool) {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil {
			return 0, false
		}
		i := slices.Index(s.order, string(b))
		return i, i >= 0
	}
	from, to := 0, min(len(s.order), limit)
	switch {
	case after != "":
		i, ok := find(after)
		if !ok {
			return body, false
		}
		from = i + 1
		to = min(len(s.order), from+limit)
	case before != "":
		i, ok := find(before)
		if !ok {
			return body, false
		}
		to = i
		from = max(0, to-limit)
	}
	body.Values = []projectJSON{}
	for _, id := range s.order[from:to] {
		if p := s.projects[id]; p.Access != AccessNone {
			body.Values = append(body.Values, s.projectJSONLocked(p))
		}
	}
	if to < len(s.order) && to > from {
		body.Pagination.After = cursor(s.order[to-1])
	}
	if from > 0 && to > from {
		body.Pagination.Before = cursor(s.order[from])
	}
	return body, true
}

func (s *Server) getProject(c *call) {
	pid, ok := c.projectID()
	if !ok {
		return
	}
	s.mu.Lock()
	p := s.lookupProjectLocked(pid)
	var body projectJSON
	if p != nil {
		body = s.projectJSONLocked(p)
	}
	s.mu.Unlock()
	switch {
	case p == nil:
		c.error(http.StatusNotFound, "Project not found", "no project with id "+pid)
	case p.Access == AccessNone:
		c.forbidden(p.runRefusal(false))
	default:
		c.json(http.StatusOK, body)
	}
}

// lookupProjectLocked finds a project; without a configured registry any UUID names a
// published project, added to the registry on first sight.
func (s *Server) lookupProjectLocked(pid string) *project {
	if p := s.projects[pid]; p != nil {
		return p
	}
	if s.registry {
		return nil
	}
	return s.setProjectLocked(Project{ID: pid, Title: "Project " + pid[:8], Published: true})
}

func (s *Server) setProjectLocked(p Project) *project {
	p.ID = strings.ToLower(p.ID)
	if p.Title == "" {
		p.Title = "Project " + p.ID[:8]
	}
	pp := &project{Project: p}
	if p.Inputs != nil {
		pp.inputs = map[string]bool{}
		for _, in := range p.Inputs {
			pp.inputs[in] = true
		}
	}
	if _, ok := s.projects[p.ID]; !ok {
		s.order = append(s.order, p.ID)
	}
	s.projects[p.ID] = pp
	return pp
}
