package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"hexcron/hexclient"
	"hexcron/planner"
)

// CheckClient is what the preflight needs of the Hex client (*hexclient.Client).
type CheckClient interface {
	ListProjects(ctx context.Context, q hexclient.ProjectsQuery) (*hexclient.ProjectsPage, error)
	GetProject(ctx context.Context, projectID string) (*hexclient.Project, error)
}

// DryRunner sends one dryRun RunProject (*hexclient.Client).
type DryRunner interface {
	DryRun(ctx context.Context, projectID string, body hexclient.RunRequest, deadline time.Time) (*hexclient.RunCreated, error)
}

// Verdict is how a schedule fared in the preflight.
type Verdict string

// The verdicts, from best to worst.
const (
	VerdictOK   Verdict = "ok"   // nothing found that would make a run fail
	VerdictWarn Verdict = "warn" // it will run, but something is probably not meant
	VerdictFail Verdict = "fail" // a trigger would fail (or hexcron could not check it)
)

// TokenCheck is what the first call told about the base URL and the token.
type TokenCheck struct {
	OK      bool   // Hex accepted the token at this base URL
	Status  int    // HTTP status of the probe (0: no answer)
	Message string // what it means, in words
	TraceID string
}

// ScheduleCheck is the preflight of one schedule.
type ScheduleCheck struct {
	Schedule    string
	Project     string
	Title       string    // the project's title in Hex ("" when it could not be read)
	PublishedAt time.Time // when the project was last published (zero: never, or unknown)
	Verdict     Verdict
	Problems    []string // why a trigger would fail (Verdict fail)
	Warnings    []string // things to look at (Verdict warn when no problem)
	Notes       []string // facts hexcron cannot check
}

// CheckReport is the whole preflight.
type CheckReport struct {
	BaseURL   string
	Token     TokenCheck
	DryRun    bool // one dryRun RunProject per project was sent
	Schedules []ScheduleCheck
}

// Failed returns the names of the schedules that would fail.
func (r *CheckReport) Failed() []string {
	var out []string
	for _, s := range r.Schedules {
		if s.Verdict == VerdictFail {
			out = append(out, s.Schedule)
		}
	}
	return out
}

// OK reports whether the token was accepted and no schedule would fail.
func (r *CheckReport) OK() bool { return r.Token.OK && len(r.Failed()) == 0 }

// CheckOptions are the preflight's optional parts.
type CheckOptions struct {
	// DryRun, when set, sends one dryRun RunProject per project (through the trigger
	// budget and ledger), with the body of the project's first schedule.
	DryRun DryRunner
	// DryRunDeadline is when a dry run stops waiting for trigger budget.
	DryRunDeadline time.Time
	// Pace, when set, is called before each read Check sends to Hex; an error from it
	// ends the check. The daemon uses it to keep its background preflight gentle.
	Pace func(ctx context.Context) error
}

// Check is the preflight `hexcron check` prints and the daemon logs at start and on
// reload: through the read budget and the daemon's credentials it asks Hex whether the
// base URL answers and accepts the token (ListProjects, one project), then, for every
// configured project (GetProject, once each), whether it exists, is visible to the
// token's user and has been published, and whether Hex runs it on schedules of its own.
// It sends no RunProject unless opts.DryRun is set.
func Check(ctx context.Context, conf *planner.Config, hex CheckClient, opts CheckOptions) *CheckReport {
	r := &CheckReport{BaseURL: conf.Hex.BaseURL, DryRun: opts.DryRun != nil}
	if opts.Pace != nil {
		if err := opts.Pace(ctx); err != nil {
			r.Token = TokenCheck{Message: "not checked: " + err.Error()}
			return r
		}
	}
	r.Token = checkToken(ctx, conf, hex)
	type projectResult struct {
		project *hexclient.Project
		fail    string
		warns   []string
		notes   []string
	}
	results := map[string]*projectResult{}
	for i := range conf.Schedules {
		s := &conf.Schedules[i]
		if _, done := results[s.Project]; done {
			continue
		}
		pr := &projectResult{}
		results[s.Project] = pr
		if !r.Token.OK {
			pr.fail = "not checked: the base URL or the token failed (see the token line)"
			continue
		}
		if opts.Pace != nil {
			if err := opts.Pace(ctx); err != nil {
				pr.fail = "not checked: " + err.Error()
				continue
			}
		}
		p, err := hex.GetProject(ctx, s.Project)
		if err != nil {
			pr.fail = projectProblem(err)
			continue
		}
		pr.project = p
		switch {
		case !p.Published():
			pr.fail = "never published: Hex runs the published version of a project, so a run would fail (422) or produce nothing; publish it in Hex"
		case !p.TrashedAt.IsZero():
			pr.fail = fmt.Sprintf("in the trash since %s: restore it in Hex", p.TrashedAt.UTC().Format(time.RFC3339))
		case !p.ArchivedAt.IsZero():
			pr.warns = append(pr.warns, fmt.Sprintf("archived since %s", p.ArchivedAt.UTC().Format(time.RFC3339)))
		}
		var own []string
		for _, h := range p.Schedules {
			if h.Enabled {
				own = append(own, h.String())
			}
		}
		if len(own) > 0 {
			pr.warns = append(pr.warns, fmt.Sprintf("Hex also runs this project on its own schedule (%s): with hexcron's, the notebook runs twice; turn one off",
				strings.Join(own, "; ")))
		}
		if opts.DryRun != nil && pr.fail == "" {
			res, err := opts.DryRun.DryRun(ctx, s.Project, runRequest(s, s.Firings(time.Unix(0, 0))[0]), opts.DryRunDeadline)
			switch {
			case err == nil:
				pr.notes = append(pr.notes, fmt.Sprintf("dry run accepted (trace %s); it counted against the trigger caps", res.TraceID))
			case errors.Is(err, hexclient.ErrProjectRefused), isPermanent(err):
				pr.fail = "dry run refused: " + hexReason(err)
			default:
				pr.warns = append(pr.warns, "dry run not conclusive: "+hexReason(err))
			}
		}
	}
	for i := range conf.Schedules {
		s := &conf.Schedules[i]
		pr := results[s.Project]
		sc := ScheduleCheck{Schedule: s.Name, Project: s.Project, Verdict: VerdictOK, Warnings: pr.warns, Notes: pr.notes}
		if pr.project != nil {
			sc.Title, sc.PublishedAt = pr.project.Title, pr.project.LastPublishedAt
		}
		if pr.fail != "" {
			sc.Problems = append(sc.Problems, pr.fail)
		}
		if s.UpdatePublishedResults != nil && *s.UpdatePublishedResults {
			sc.Notes = append(sc.Notes, `update_published_results: Hex needs "Can Edit" on the project for updatePublishedResults (and the app setting enabled); hexcron cannot check that`)
		}
		switch {
		case len(sc.Problems) > 0:
			sc.Verdict = VerdictFail
		case len(sc.Warnings) > 0:
			sc.Verdict = VerdictWarn
		}
		r.Schedules = append(r.Schedules, sc)
	}
	return r
}

// checkToken probes the base URL and the token with the cheapest call.
func checkToken(ctx context.Context, conf *planner.Config, hex CheckClient) TokenCheck {
	_, err := hex.ListProjects(ctx, hexclient.ProjectsQuery{Limit: 1})
	if err == nil {
		return TokenCheck{OK: true, Status: 200, Message: "Hex accepted the token at " + conf.Hex.BaseURL}
	}
	var ae *hexclient.APIError
	if !errors.As(err, &ae) {
		return TokenCheck{Message: "could not ask Hex: " + err.Error()}
	}
	tc := TokenCheck{Status: ae.Status, TraceID: ae.TraceID}
	switch {
	case ae.Status == 401:
		tc.Message = fmt.Sprintf("Hex refused the token (401): it is revoked, expired or mistyped, or %s is not your workspace's host "+
			"(an EU or single-tenant workspace is not reached through app.hex.tech: use https://eu.hex.tech or https://NAME.hex.tech)", conf.Hex.BaseURL)
	case ae.Class == hexclient.ClassForbidden:
		tc.OK = true // the token is accepted; listing projects is a scope it lacks
		tc.Message = "Hex accepted the token, but it may not list projects (403: " + ae.Reason + "): projects are checked one by one"
	case ae.Status == 0:
		tc.Message = fmt.Sprintf("%s does not answer: %v", conf.Hex.BaseURL, ae.Err)
	case ae.Status == 404 || (ae.Status >= 300 && ae.Status < 400):
		tc.Message = fmt.Sprintf("%s answered %d to ListProjects: it is not Hex's API root (check hex.base_url)", conf.Hex.BaseURL, ae.Status)
	default:
		tc.Message = "Hex answered " + ae.Error()
	}
	return tc
}

// projectProblem says in words why GetProject failed.
func projectProblem(err error) string {
	var refused *hexclient.ProjectRefusedError
	if errors.As(err, &refused) {
		return fmt.Sprintf("not visible to the token's user (403 from Hex: %s): share the project with that user, or give the token the \"Read projects\" scope",
			dash(refused.Reason()))
	}
	var ae *hexclient.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == 404:
			return "does not exist (404 from Hex): check the id (the UUID in the project's URL) and that hex.base_url is its workspace"
		case ae.Class == hexclient.ClassAuth:
			return "not checked: Hex refused the token (401)"
		}
	}
	return "could not be checked: " + hexReason(err)
}

func isPermanent(err error) bool {
	var ae *hexclient.APIError
	return errors.As(err, &ae) && ae.Class == hexclient.ClassPermanent
}

// hexReason is an error from the Hex client in words, with Hex's trace id.
func hexReason(err error) string {
	var ae *hexclient.APIError
	if errors.As(err, &ae) && ae.Status > 0 {
		s := fmt.Sprintf("%d %s", ae.Status, dash(ae.Reason))
		if ae.TraceID != "" {
			s += " [trace " + ae.TraceID + "]"
		}
		return s
	}
	return err.Error()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// logCheck logs one WARN per problem the preflight found (per project, naming its
// schedules), and one INFO when all is well. The daemon starts (and reloads) whatever
// the verdict: a project may be published or shared later.
func logCheck(log *slog.Logger, r *CheckReport) {
	if !r.Token.OK {
		log.Warn("preflight: "+r.Token.Message, keyStatus, r.Token.Status, keyTraceID, r.Token.TraceID)
		return
	}
	type key struct{ project, msg, level string }
	named := map[key][]string{}
	var order []key
	for _, s := range r.Schedules {
		for _, m := range s.Problems {
			k := key{s.Project, m, "problem"}
			if _, ok := named[k]; !ok {
				order = append(order, k)
			}
			named[k] = append(named[k], s.Schedule)
		}
		for _, m := range s.Warnings {
			k := key{s.Project, m, "warning"}
			if _, ok := named[k]; !ok {
				order = append(order, k)
			}
			named[k] = append(named[k], s.Schedule)
		}
	}
	for _, k := range order {
		schedules := named[k]
		sort.Strings(schedules)
		msg := "preflight: " + k.msg
		if k.level == "problem" {
			msg = "preflight: the project's triggers would fail: " + k.msg
		}
		log.Warn(msg, keyProject, k.project, "schedules", strings.Join(schedules, ","))
	}
	if len(order) == 0 {
		log.Info("preflight: the token is accepted and every project exists, is visible and published", "projects", countProjects(r))
	}
}

func countProjects(r *CheckReport) int {
	seen := map[string]bool{}
	for _, s := range r.Schedules {
		seen[s.Project] = true
	}
	return len(seen)
}
