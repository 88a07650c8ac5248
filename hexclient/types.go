package hexclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RunRequest is the body of RunProject. Every field is optional; unset fields are not
// sent, so Hex applies its own defaults.
type RunRequest struct {
	// InputParams maps input names of the published app to values.
	InputParams map[string]any `json:"inputParams,omitempty"`
	// DryRun asks Hex to validate without running.
	DryRun bool `json:"dryRun,omitempty"`
	// Notifications are sent by Hex when the run ends.
	Notifications []Notification `json:"notifications,omitempty"`
	// UpdatePublishedResults updates the published app's cached results (Hex default false).
	UpdatePublishedResults *bool `json:"updatePublishedResults,omitempty"`
	// UseCachedSQLResults lets the run reuse cached SQL results (Hex default true).
	UseCachedSQLResults *bool `json:"useCachedSqlResults,omitempty"`
	// ViewID runs a saved view; not together with InputParams.
	ViewID string `json:"viewId,omitempty"`
}

// Notification is one entry of RunRequest.Notifications.
type Notification struct {
	// Type is SUCCESS, FAILURE or ALL.
	Type string `json:"type"`
	// IncludeSuccessScreenshot attaches a screenshot to success notifications.
	IncludeSuccessScreenshot bool `json:"includeSuccessScreenshot,omitempty"`
	// SlackChannelIDs, UserIDs and GroupIDs are the recipients.
	SlackChannelIDs []string `json:"slackChannelIds,omitempty"`
	UserIDs         []string `json:"userIds,omitempty"`
	GroupIDs        []string `json:"groupIds,omitempty"`
}

// Status is a run status as Hex reports it. Unknown values are kept as they came.
type Status string

// The run statuses Hex documents.
const (
	StatusPending                Status = "PENDING"
	StatusRunning                Status = "RUNNING"
	StatusErrored                Status = "ERRORED"
	StatusCompleted              Status = "COMPLETED"
	StatusKilled                 Status = "KILLED"
	StatusUnableToAllocateKernel Status = "UNABLE_TO_ALLOCATE_KERNEL"
)

// Terminal reports whether the run has ended. Unknown statuses are never terminal.
func (s Status) Terminal() bool {
	switch s {
	case StatusErrored, StatusCompleted, StatusKilled, StatusUnableToAllocateKernel:
		return true
	}
	return false
}

// Known reports whether s is one of the statuses Hex documents.
func (s Status) Known() bool {
	return s.Terminal() || s == StatusPending || s == StatusRunning
}

// RunStatus is one run as GetRunStatus and GetProjectRuns report it. Null or
// unparseable times are zero.
type RunStatus struct {
	ProjectID      string
	ProjectVersion string // Hex sends a number or a string; kept as text
	RunID          string
	RunURL         string
	Status         Status
	RunTrigger     string // API, SCHEDULED or APP_REFRESH
	StartTime      time.Time
	EndTime        time.Time
	Elapsed        time.Duration // from elapsedTime (ms); zero when null
	TraceID        string
}

// RunCreated is RunProject's 201 answer.
type RunCreated struct {
	ProjectID      string
	ProjectVersion string
	RunID          string
	RunURL         string
	RunStatusURL   string
	TraceID        string
}

// RunsQuery selects GetProjectRuns' page. Zero fields are not sent.
type RunsQuery struct {
	Limit            int    // 1..100 (Hex default 25)
	Offset           int    // runs to skip
	StatusFilter     Status // one status
	RunTriggerFilter string // API, SCHEDULED, APP_REFRESH or ALL
}

// RunsPage is one page of GetProjectRuns.
type RunsPage struct {
	Runs         []RunStatus
	NextPage     string // empty on the last page
	PreviousPage string
	TraceID      string
}

// Project is one project as ListProjects and GetProject report it.
type Project struct {
	ID              string
	Title           string
	Type            string
	LastPublishedAt time.Time // zero: never published (RunProject answers 422)
	ArchivedAt      time.Time // zero: not archived
	TrashedAt       time.Time // zero: not in the trash
	// Schedules are the project's own Hex schedules (GetProject's schedules).
	Schedules []HexSchedule
}

// HexSchedule is one of a project's own schedules in Hex.
type HexSchedule struct {
	Cadence  string // HOURLY, DAILY, WEEKLY, MONTHLY or CUSTOM
	Enabled  bool
	Cron     string // a CUSTOM cadence's expression
	Timezone string
}

// String describes the schedule for people: "CUSTOM 0 6 * * * (Europe/Berlin)".
func (h HexSchedule) String() string {
	s := h.Cadence
	if h.Cron != "" {
		s += " " + h.Cron
	}
	if h.Timezone != "" {
		s += " (" + h.Timezone + ")"
	}
	return s
}

// Published reports whether the project has a published version that can run.
func (p Project) Published() bool { return !p.LastPublishedAt.IsZero() }

// ProjectsQuery selects ListProjects' page.
type ProjectsQuery struct {
	Limit int    // page size; zero is not sent
	After string // cursor from the previous page's After
}

// ProjectsPage is one page of ListProjects.
type ProjectsPage struct {
	Values  []Project
	After   string // empty on the last page
	Before  string
	TraceID string
}

// flexString decodes a JSON string, number, boolean or null into text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*f = flexString(n.String())
		return nil
	}
	if string(b) == "true" || string(b) == "false" {
		*f = flexString(b)
		return nil
	}
	return fmt.Errorf("want a string or a number, got %.20q", b)
}

// flexTime decodes an RFC 3339 time; null, empty or unparseable text is the zero time.
type flexTime time.Time

func (f *flexTime) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil || s == nil {
		*f = flexTime{}
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(*s))
	if err != nil {
		*f = flexTime{}
		return nil
	}
	*f = flexTime(t.UTC())
	return nil
}

// flexFloat decodes a JSON number or numeric string; anything else is 0.
type flexFloat float64

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		*f = 0
		return nil
	}
	switch x := v.(type) {
	case float64:
		*f = flexFloat(x)
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			p = 0
		}
		*f = flexFloat(p)
	default:
		*f = 0
	}
	return nil
}

type wireRunStatus struct {
	ProjectID      flexString `json:"projectId"`
	ProjectVersion flexString `json:"projectVersion"`
	RunID          flexString `json:"runId"`
	RunURL         flexString `json:"runUrl"`
	Status         flexString `json:"status"`
	RunTrigger     flexString `json:"runTrigger"`
	StartTime      flexTime   `json:"startTime"`
	EndTime        flexTime   `json:"endTime"`
	ElapsedTime    flexFloat  `json:"elapsedTime"`
	TraceID        flexString `json:"traceId"`
}

func (w wireRunStatus) run() RunStatus {
	ms := float64(w.ElapsedTime)
	var elapsed time.Duration
	if ms > 0 && ms < float64(1<<62)/float64(time.Millisecond) {
		elapsed = time.Duration(ms * float64(time.Millisecond))
	}
	return RunStatus{
		ProjectID:      string(w.ProjectID),
		ProjectVersion: string(w.ProjectVersion),
		RunID:          string(w.RunID),
		RunURL:         string(w.RunURL),
		Status:         Status(strings.ToUpper(strings.TrimSpace(string(w.Status)))),
		RunTrigger:     string(w.RunTrigger),
		StartTime:      time.Time(w.StartTime),
		EndTime:        time.Time(w.EndTime),
		Elapsed:        elapsed,
		TraceID:        string(w.TraceID),
	}
}

// decodeRunStatus decodes GetRunStatus' body. A body without a runId is an error.
func decodeRunStatus(body []byte) (*RunStatus, error) {
	var w wireRunStatus
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode run status: %w", err)
	}
	if w.RunID == "" {
		return nil, fmt.Errorf("decode run status: no runId")
	}
	r := w.run()
	return &r, nil
}

// decodeRunsPage decodes GetProjectRuns' body; runs without a runId are dropped.
func decodeRunsPage(body []byte) (*RunsPage, error) {
	var w struct {
		Runs         []wireRunStatus `json:"runs"`
		NextPage     flexString      `json:"nextPage"`
		PreviousPage flexString      `json:"previousPage"`
		TraceID      flexString      `json:"traceId"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode project runs: %w", err)
	}
	p := &RunsPage{NextPage: string(w.NextPage), PreviousPage: string(w.PreviousPage), TraceID: string(w.TraceID)}
	for _, r := range w.Runs {
		if r.RunID != "" {
			p.Runs = append(p.Runs, r.run())
		}
	}
	return p, nil
}

// decodeRunCreated decodes RunProject's 201 body. A body without a runId is an error.
func decodeRunCreated(body []byte) (*RunCreated, error) {
	var w struct {
		ProjectID      flexString `json:"projectId"`
		ProjectVersion flexString `json:"projectVersion"`
		RunID          flexString `json:"runId"`
		RunURL         flexString `json:"runUrl"`
		RunStatusURL   flexString `json:"runStatusUrl"`
		TraceID        flexString `json:"traceId"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode run created: %w", err)
	}
	if w.RunID == "" {
		return nil, fmt.Errorf("decode run created: no runId")
	}
	return &RunCreated{
		ProjectID: string(w.ProjectID), ProjectVersion: string(w.ProjectVersion),
		RunID: string(w.RunID), RunURL: string(w.RunURL), RunStatusURL: string(w.RunStatusURL),
		TraceID: string(w.TraceID),
	}, nil
}

type wireProject struct {
	ID              flexString    `json:"id"`
	ProjectID       flexString    `json:"projectId"`
	Title           flexString    `json:"title"`
	Type            flexString    `json:"type"`
	LastPublishedAt flexTime      `json:"lastPublishedAt"`
	ArchivedAt      flexTime      `json:"archivedAt"`
	TrashedAt       flexTime      `json:"trashedAt"`
	Schedules       flexSchedules `json:"schedules"`
}

// flexSchedules decodes GetProject's schedules tolerantly: anything but an array of
// objects is no schedules, and an entry's unknown fields are ignored.
type flexSchedules []HexSchedule

func (f *flexSchedules) UnmarshalJSON(b []byte) error {
	var raw []struct {
		Cadence flexString `json:"cadence"`
		Enabled *bool      `json:"enabled"`
		Custom  *struct {
			Cron     flexString `json:"cron"`
			Timezone flexString `json:"timezone"`
		} `json:"custom"`
		Hourly, Daily, Weekly, Monthly *struct {
			Timezone flexString `json:"timezone"`
		}
	}
	if json.Unmarshal(b, &raw) != nil {
		*f = nil
		return nil
	}
	out := make(flexSchedules, 0, len(raw))
	for _, r := range raw {
		h := HexSchedule{Cadence: strings.ToUpper(string(r.Cadence)), Enabled: r.Enabled == nil || *r.Enabled}
		if r.Custom != nil {
			h.Cron, h.Timezone = string(r.Custom.Cron), string(r.Custom.Timezone)
		}
		for _, c := range []*struct {
			Timezone flexString `json:"timezone"`
		}{r.Hourly, r.Daily, r.Weekly, r.Monthly} {
			if c != nil && h.Timezone == "" {
				h.Timezone = string(c.Timezone)
			}
		}
		out = append(out, h)
	}
	*f = out
	return nil
}

func (w wireProject) project() Project {
	id := string(w.ID)
	if id == "" {
		id = string(w.ProjectID)
	}
	return Project{ID: id, Title: string(w.Title), Type: string(w.Type), LastPublishedAt: time.Time(w.LastPublishedAt),
		ArchivedAt: time.Time(w.ArchivedAt), TrashedAt: time.Time(w.TrashedAt), Schedules: []HexSchedule(w.Schedules)}
}

func decodeProject(body []byte) (*Project, error) {
	var w wireProject
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode project: %w", err)
	}
	p := w.project()
	return &p, nil
}

func decodeProjectsPage(body []byte) (*ProjectsPage, error) {
	var w struct {
		Values     []wireProject `json:"values"`
		Pagination struct {
			After  flexString `json:"after"`
			Before flexString `json:"before"`
		} `json:"pagination"`
		TraceID flexString `json:"traceId"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode projects: %w", err)
	}
	p := &ProjectsPage{After: string(w.Pagination.After), Before: string(w.Pagination.Before), TraceID: string(w.TraceID)}
	for _, v := range w.Values {
		p.Values = append(p.Values, v.project())
	}
	return p, nil
}
