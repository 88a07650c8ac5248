package hexclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hexcron/clock"
)

// DefaultBaseURL is Hex's multi-tenant API base.
const DefaultBaseURL = "https://app.hex.tech/api/v1"

// maxBody is the most of a response body this client reads.
const maxBody = 1 << 20

// Config holds a Client's dependencies and settings; New fills the zero fields.
type Config struct {
	// BaseURL is Hex's API root, SCHEME://HOST/api/v1 (default DefaultBaseURL): the
	// config normalises what users write (planner.NormalizeBaseURL). It must be https,
	// except for a loopback host (127.0.0.0/8, ::1, localhost), e.g. `hexcron sim`.
	BaseURL string
	// Token yields the API token before every request. Required.
	Token TokenSource
	// Version goes into `User-Agent: hexcron/<Version>` (default "dev").
	Version string
	// HTTPClient sends the requests (default a plain http.Client). Redirects are
	// never followed, whatever its CheckRedirect says.
	HTTPClient *http.Client
	// Clock is the time source for every wait and timestamp (default clock.System).
	Clock clock.Clock
	// Rand draws the jitter (default seeded from Clock). Used under a lock.
	Rand *rand.Rand
	// Logger receives the log lines (default: discarded).
	Logger *slog.Logger
	// Observer receives counts for metrics (may be nil).
	Observer Observer
	// Ledger is the trigger budget's record (default an in-memory MemLedger).
	Ledger Ledger
	// Budget is the trigger admission math. Zero Rules means DefaultRules; zero Skew
	// means DefaultSkew; zero MaxAttempt means Timeout+30s (it must exceed Timeout).
	// The planner's model uses the same values (planner.Budget.Trigger), with the
	// default Timeout budget.DefaultMaxAttempt.
	Budget Budget
	// ReadLimits caps status and list calls (zero fields take DefaultReadLimits).
	ReadLimits ReadLimits
	// Timeout bounds each HTTP attempt (default DefaultTimeout), measured on Clock.
	Timeout time.Duration
	// VisibilityDelay is how long after an ambiguous outcome the project's runs are
	// listed, so that a run the attempt created has time to show (default 10s).
	VisibilityDelay time.Duration
	// AdoptSkew is subtracted from an attempt's send time when deciding whether a
	// listed run could be its run (clock skew between Hex and here; default 30s).
	AdoptSkew time.Duration
	// ServerBackoff paces retries after 5xx, timeouts and resets (default 2s..5m).
	ServerBackoff Backoff
	// RateLimitBackoff paces a 429 that named no wait (default 5s..5m).
	RateLimitBackoff Backoff
	// KernelBackoff is how long a 503 (kernel cap) holds triggers unless KernelFreed
	// is called first (default 30s..10m).
	KernelBackoff Backoff
	// AuthBackoff paces the probes while triggering is paused on a 401 (default 5s..2m).
	AuthBackoff Backoff
	// ReconcilePages is how many pages of a project's runs a reconcile reads at most
	// when it has to read the whole listing (default 50: 5,000 runs of 100 a page). A
	// listing it cannot complete never leads to a second RunProject.
	ReconcilePages int
	// ForbiddenProbe is how long a project stays held after a 403 before one request
	// probes it again (default DefaultForbiddenProbe, 1h).
	ForbiddenProbe time.Duration
	// Secrets are redacted from every answer besides the token (which is always):
	// gateway client tokens, a database password. More can be added later through
	// Client.Redactor.
	Secrets []string
}

// Client talks to one Hex workspace as one Hex user. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   string
	hc     *http.Client
	clock  clock.Clock
	log    *slog.Logger
	obs    Observer
	ledger Ledger
	budget Budget
	reads  *ReadBudget
	adapt  *adaptive
	redact *Redactor // every answer from Hex passes through it in send

	rngMu sync.Mutex
	rng   *rand.Rand

	probe chan struct{} // one auth probe at a time

	mu          sync.Mutex
	holdUntil   time.Time
	holdReason  string
	holdChanged chan struct{} // closed and replaced whenever the hold or pause changes
	authPaused  bool
	authN       int // consecutive auth failures (reset by a 201)
	kernelN     int // consecutive kernel-cap answers
	rateN       int // consecutive 429s
	read429     time.Time
	own         map[string]time.Time    // runs created or adopted here, never adopted again
	pending     []*pending              // unresolved ambiguous attempts (see reconcile.go)
	inflight    map[string]int          // attempts in flight (at most one), per project (see reconcile.go)
	holds       map[string]*projectHold // projects refused with 403 (see projecthold.go)
	// While a kernel-cap hold lasts, each KernelFreed lets one waiter through: the
	// one with the earliest deadline. kernelWaiters holds the deadline of each trigger
	// waiting out the hold; kernelPasses counts freed kernels not yet taken.
	kernelWaiters map[*triggerRun]time.Time
	kernelPasses  int
}

// New validates cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Token == nil {
		return nil, errors.New("hexclient: new: no token source")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Rand == nil {
		seed := uint64(cfg.Clock.Now().UnixNano())
		cfg.Rand = rand.New(rand.NewPCG(seed, seed>>17|1))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Ledger == nil {
		cfg.Ledger = NewMemLedger()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if len(cfg.Budget.Rules) == 0 {
		cfg.Budget.Rules = DefaultRules()
	}
	if cfg.Budget.Skew == 0 {
		cfg.Budget.Skew = DefaultSkew
	}
	if cfg.Budget.MaxAttempt == 0 {
		cfg.Budget.MaxAttempt = cfg.Timeout + maxAttemptMargin
	}
	if cfg.Budget.MaxAttempt <= cfg.Timeout {
		return nil, fmt.Errorf("hexclient: new: budget max attempt %s must exceed the attempt timeout %s", cfg.Budget.MaxAttempt, cfg.Timeout)
	}
	for _, r := range cfg.Budget.Rules {
		if r.Per <= 0 || r.Limit-r.Reserve < 1 {
			return nil, fmt.Errorf("hexclient: new: trigger rule %d per %s with reserve %d leaves no room", r.Limit, r.Per, r.Reserve)
		}
	}
	def := DefaultReadLimits()
	if cfg.ReadLimits.All.Limit == 0 {
		cfg.ReadLimits.All = def.All
	}
	if len(cfg.ReadLimits.Status) == 0 {
		cfg.ReadLimits.Status = def.Status
	}
	for _, r := range append([]Rule{cfg.ReadLimits.All}, cfg.ReadLimits.Status...) {
		if r.Per <= 0 || r.Limit-r.Reserve < 1 {
			return nil, fmt.Errorf("hexclient: new: read limit %d per %s with reserve %d leaves no room", r.Limit, r.Per, r.Reserve)
		}
	}
	if cfg.VisibilityDelay <= 0 {
		cfg.VisibilityDelay = 10 * time.Second
	}
	if cfg.AdoptSkew <= 0 {
		cfg.AdoptSkew = 30 * time.Second
	}
	fill := func(b *Backoff, base, cap time.Duration) {
		if b.Base <= 0 {
			b.Base = base
		}
		if b.Cap <= 0 {
			b.Cap = cap
		}
	}
	fill(&cfg.ServerBackoff, 2*time.Second, 5*time.Minute)
	fill(&cfg.RateLimitBackoff, 5*time.Second, 5*time.Minute)
	fill(&cfg.KernelBackoff, 30*time.Second, 10*time.Minute)
	fill(&cfg.AuthBackoff, 5*time.Second, 2*time.Minute)
	if cfg.ReconcilePages <= 0 {
		cfg.ReconcilePages = 50
	}
	if cfg.ForbiddenProbe <= 0 {
		cfg.ForbiddenProbe = DefaultForbiddenProbe
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		cfg: cfg, base: base, hc: hc, clock: cfg.Clock, log: cfg.Logger, obs: cfg.Observer,
		ledger: cfg.Ledger, budget: cfg.Budget,
		reads: NewReadBudget(cfg.Clock, cfg.ReadLimits, cfg.Budget.Skew, cfg.Budget.MaxAttempt),
		adapt: newAdaptive(cfg.Budget.Rules),
		rng:   cfg.Rand, probe: make(chan struct{}, 1), redact: NewRedactor(cfg.Secrets...),
		holdChanged: make(chan struct{}), own: map[string]time.Time{}, inflight: map[string]int{},
		holds: map[string]*projectHold{},
	}, nil
}

// checkBaseURL accepts Hex's API root, SCHEME://HOST/api/v1 (a trailing slash is
// dropped): https anywhere and http only on a loopback host. Every request path is
// appended to it, so a host without /api/v1 would fail every call.
func checkBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("hexclient: new: base url: %w", err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("hexclient: new: base url %q: want scheme://host/api/v1 with no user, query or fragment", u.Redacted())
	}
	if p := strings.TrimRight(u.EscapedPath(), "/"); p != "/api/v1" {
		return "", fmt.Errorf("hexclient: new: base url %q: the path must be /api/v1 (Hex's API root), not %q", u.Redacted(), u.EscapedPath())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("hexclient: new: base url %q: plain http is only allowed to a loopback host (the token must not travel unencrypted)", u.Redacted())
		}
	default:
		return "", fmt.Errorf("hexclient: new: base url %q: scheme must be https", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// response is what one HTTP attempt brought back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send performs one HTTP attempt with the per-attempt timeout. A transport failure
// is an *APIError with Status 0 (Class ClassCanceled when ctx itself ended).
func (c *Client) send(ctx context.Context, op, token, method, path string, q url.Values, body []byte) (*response, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	actx, cancel := clock.WithTimeout(ctx, c.clock, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// A request that never got a connection wrote nothing: it did not reach Hex.
	var gotConn atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) }})
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return nil, &APIError{Op: op, Class: ClassPermanent, NotSent: true, Err: fmt.Errorf("%s: build request: %w", op, err)}
	}
	c.redact.Add(token)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "hexcron/"+c.cfg.Version)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		// Once, here: nothing decoded from the answer can carry a secret further.
		c.redact.Header(resp.Header)
		if err == nil || resp.StatusCode >= 300 {
			// For an error status, the status is what matters; a truncated body is fine.
			return &response{status: resp.StatusCode, header: resp.Header, body: c.redact.Body(b)}, nil
		}
	}
	err = c.redact.Error(err)
	notSent := !gotConn.Load()
	if ctx.Err() != nil {
		return nil, &APIError{Op: op, Class: ClassCanceled, NotSent: notSent, Err: ctx.Err()}
	}
	class := Classify(0, err)
	if notSent && class == ClassAmbiguous {
		class = ClassUnreachable // e.g. a header the transport refused before dialing
	}
	return nil, &APIError{Op: op, Class: class, NotSent: notSent, Err: err}
}

// token asks the token source and refuses a token that cannot be sent (whatever the
// source: FileTokenSource already checks, another implementation may not).
func (c *Client) token() (string, error) {
	tok, err := c.cfg.Token.Token()
	if err != nil {
		return "", err
	}
	if err := ValidToken(tok); err != nil {
		return "", err
	}
	return tok, nil
}

// Redactor is the client's redactor: add the secrets that must never leave through
// an answer (see Config.Secrets).
func (c *Client) Redactor() *Redactor { return c.redact }

// redactor returns a function removing token from text.
func redactor(token string) func(string) string {
	return func(s string) string {
		if token == "" {
			return s
		}
		return strings.ReplaceAll(s, token, "[redacted]")
	}
}

// read performs one budgeted read call and decodes nothing: it returns the body of a
// 2xx or the *APIError of anything else. project is the project the path names ("" for
// none): a 403 holds that project's reads (a *ProjectRefusedError), and a read of a
// project whose reads are held is not sent until its probe is due. A DELETE (CancelRun)
// is a write: its 403 holds the project like a RunProject's, and no write is sent to
// a held project before its probe.
func (c *Client) read(ctx context.Context, op, project string, g Group, method, path string, q url.Values) (*response, error) {
	token, err := c.token()
	if err != nil {
		e := &APIError{Op: op, Class: ClassAuth, Err: err}
		c.pauseAuth(c.log, e)
		return nil, e
	}
	write := method != http.MethodGet // CancelRun
	if held := c.readAllowed(project, c.clock.Now(), write); held != nil {
		return nil, held
	}
	done, err := c.reads.Acquire(ctx, g)
	if err != nil {
		return nil, &APIError{Op: op, Class: ClassCanceled, Err: err}
	}
	resp, err := c.send(ctx, op, token, method, path, q, nil)
	now := c.clock.Now()
	done(now)
	if err != nil {
		return nil, err
	}
	if resp.status >= 200 && resp.status < 300 {
		c.resumeAuth(c.log)
		c.readSucceeded(c.log.With(KeyProject, project), project, now)
		return resp, nil
	}
	e := newHTTPError(op, resp.status, resp.header, resp.body, redactor(token))
	switch e.Class {
	case ClassAuth:
		// The same pause as a trigger's 401: one ERROR saying what to do, no trigger
		// spent on a refused token, and any read that succeeds with the token
		// source's current value (re-read on every call) ends it.
		c.pauseAuth(c.log, e)
	case ClassForbidden:
		// The token is accepted; this project (or a scope) is refused.
		c.resumeAuth(c.log)
		if project != "" {
			return nil, c.refuse(c.log.With(KeyProject, project), project, e, now, write)
		}
	}
	if resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable {
		if d, ok := HeaderWait(resp.header, now); ok {
			e.RetryAfter = d
		}
	}
	if resp.status == http.StatusTooManyRequests {
		c.obs.On429(false)
		wait := e.RetryAfter
		if wait == 0 {
			wait = c.cfg.RateLimitBackoff.Ceiling(0)
		}
		c.reads.Hold(now.Add(wait))
		c.mu.Lock()
		warn := c.read429.IsZero() || now.Sub(c.read429) > 10*time.Minute
		c.read429 = now
		c.mu.Unlock()
		if warn {
			c.log.Warn(MsgRead429,
				KeyStatus, resp.status, KeyWait, wait, KeyTraceID, e.TraceID)
		}
	}
	return nil, e
}

// resumeAuth ends an auth pause after a read with the current token succeeded; the
// first caller to end it logs that triggering resumes.
func (c *Client) resumeAuth(log *slog.Logger) {
	c.mu.Lock()
	was := c.authPaused
	if was {
		c.authPaused = false
		c.broadcastLocked()
	}
	c.mu.Unlock()
	if was {
		log.Info("a read with the current token succeeded; triggering resumes")
	}
}

func (c *Client) decodeErr(op string, err error) error {
	return &APIError{Op: op, Class: ClassAmbiguous, Err: err}
}

// GetRunStatus returns one run's status (through the read budget's status group).
func (c *Client) GetRunStatus(ctx context.Context, projectID, runID string) (*RunStatus, error) {
	const op = "get run status"
	resp, err := c.read(ctx, op, projectID, GroupStatus, http.MethodGet, runPath(projectID, runID), nil)
	if err != nil {
		return nil, err
	}
	r, err := decodeRunStatus(resp.body)
	if err != nil {
		return nil, c.decodeErr(op, err)
	}
	if r.TraceID == "" {
		r.TraceID = resp.header.Get("x-trace-id")
	}
	return r, nil
}

// GetProjectRuns returns one page of a project's runs (read budget, status group).
func (c *Client) GetProjectRuns(ctx context.Context, projectID string, q RunsQuery) (*RunsPage, error) {
	const op = "get project runs"
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(min(q.Limit, 100)))
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	if q.StatusFilter != "" {
		v.Set("statusFilter", string(q.StatusFilter))
	}
	if q.RunTriggerFilter != "" {
		v.Set("runTriggerFilter", q.RunTriggerFilter)
	}
	resp, err := c.read(ctx, op, projectID, GroupStatus, http.MethodGet, "/projects/"+url.PathEscape(projectID)+"/runs", v)
	if err != nil {
		return nil, err
	}
	p, err := decodeRunsPage(resp.body)
	if err != nil {
		return nil, c.decodeErr(op, err)
	}
	if p.TraceID == "" {
		p.TraceID = resp.header.Get("x-trace-id")
	}
	return p, nil
}

// CancelRun cancels a run; Hex answers 204 with an empty body.
func (c *Client) CancelRun(ctx context.Context, projectID, runID string) error {
	_, err := c.read(ctx, "cancel run", projectID, GroupOther, http.MethodDelete, runPath(projectID, runID), nil)
	return err
}

// ListProjects returns one page of the workspace's projects (cursor paging with After).
func (c *Client) ListProjects(ctx context.Context, q ProjectsQuery) (*ProjectsPage, error) {
	const op = "list projects"
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	resp, err := c.read(ctx, op, "", GroupOther, http.MethodGet, "/projects", v)
	if err != nil {
		return nil, err
	}
	p, err := decodeProjectsPage(resp.body)
	if err != nil {
		return nil, c.decodeErr(op, err)
	}
	return p, nil
}

// GetProject returns one project.
func (c *Client) GetProject(ctx context.Context, projectID string) (*Project, error) {
	const op = "get project"
	resp, err := c.read(ctx, op, projectID, GroupOther, http.MethodGet, "/projects/"+url.PathEscape(projectID), nil)
	if err != nil {
		return nil, err
	}
	p, err := decodeProject(resp.body)
	if err != nil {
		return nil, c.decodeErr(op, err)
	}
	return p, nil
}

func runPath(projectID, runID string) string {
	return "/projects/" + url.PathEscape(projectID) + "/runs/" + url.PathEscape(runID)
}

// runStatusURL is the API URL of a run (what RunProject's runStatusUrl points to).
func (c *Client) runStatusURL(projectID, runID string) string {
	return c.base + runPath(projectID, runID)
}

// jitter draws from the client's rand under its lock.
func (c *Client) jitter(b Backoff, n int) time.Duration {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return b.Delay(n, c.rng)
}

// halfJitter is a wait in [ceiling/2, ceiling] (holds should not end at once).
func (c *Client) halfJitter(b Backoff, n int) time.Duration {
	ceil := b.Ceiling(n)
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return ceil/2 + time.Duration(c.rng.Int64N(int64(ceil/2)+1))
}

func marshalBody(r RunRequest) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode run request: %w", err)
	}
	return b, nil
}
