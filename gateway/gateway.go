package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Client is one caller the gateway lets in.
type Client struct {
	// Name identifies the client in history, metrics and logs.
	Name string
	// TokenSHA256 is the SHA-256 of the client's token.
	TokenSHA256 [32]byte
	// Projects (lower-case ids) may be run through the Hex-compatible endpoints;
	// Schedules may be run by name.
	Projects  []string
	Schedules []string
}

// Request is one request for a run, handed to the Backend.
type Request struct {
	Client string
	// Project and Body: a run of a Hex project with Hex's body.
	Project string
	Body    RunBody
	// Schedule and Params: a run of a configured schedule with param overrides.
	Schedule string
	Params   map[string]any
	// Key is the Idempotency-Key ("" without); Hash identifies the request for it.
	Key, Hash string
	// Wait is X-Hexcron-Wait (at most the client's wait), -1 when not given.
	Wait time.Duration
}

// Status is what became of a request.
type Status int

// The statuses a Backend answers with, and the HTTP code each is sent as.
const (
	Triggered   Status = iota // 201: the run exists
	NoRoom                    // 429: not admitted within the wait; Retry-After
	Quota                     // 429: the client's max_per_hour; Retry-After
	Refused                   // 422: Hex refused the run for good
	Skipped                   // 409: not run on purpose (overlap policy, ...)
	Unknown                   // 502: Hex may have run it; hexcron cannot tell
	Pending                   // 503: still queued or triggering; ask again with the key
	Unavailable               // 503: the daemon is starting, stopping or not leading
	KeyReused                 // 422: the Idempotency-Key names another request
)

// Result is the Backend's answer to a Request.
type Result struct {
	Status     Status
	Run        Run // Triggered: the run
	RetryAfter time.Duration
	Queued     bool // NoRoom, Pending: the request stays queued (it has a key)
	Reason     string
}

// Run is a run as hexcron tracks it.
type Run struct {
	ProjectID, RunID, RunURL, TraceID string
	// ProjectVersion is Hex's projectVersion, as text ("" unknown).
	ProjectVersion string
	// Status is Hex's run status (PENDING, RUNNING, COMPLETED, ERRORED, KILLED,
	// UNABLE_TO_ALLOCATE_KERNEL).
	Status         string
	Started, Ended time.Time
	Elapsed        time.Duration
	Slot, Schedule string
}

// Errors a Backend returns.
var (
	// ErrNotFound: no such run started by this client, or no such schedule.
	ErrNotFound = errors.New("not found")
	// ErrRunEnded: the run to cancel has already ended.
	ErrRunEnded = errors.New("run already ended")
)

// BadRequestError is a request the Backend cannot take as made (400).
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

// Backend is what the gateway needs of the daemon.
type Backend interface {
	// Submit records r as a manual slot of its client and waits for its outcome.
	Submit(ctx context.Context, r Request) (Result, error)
	// Run returns run runID if client's request started it (else ErrNotFound).
	Run(ctx context.Context, client, runID string) (Run, error)
	// Cancel cancels such a run (ErrRunEnded when it has ended).
	Cancel(ctx context.Context, client, runID string) (Run, error)
	// Clients returns the clients of the config in force; it is called for every
	// request, so a reload applies at once.
	Clients() []Client
}

// Observer counts answers: client is the client's name, AnonymousClient for a request
// without a known token.
type Observer interface {
	ObserveGatewayRequest(client string, code int)
}

// AnonymousClient labels requests without a known token.
const AnonymousClient = "anonymous"

// MaxInFlight bounds the requests the gateway serves at once; more are answered 503.
const MaxInFlight = 512

// Config holds the gateway's dependencies.
type Config struct {
	Backend  Backend
	Observer Observer // nil: not counted
	Logger   *slog.Logger
}

// Server is the gateway's HTTP handler.
type Server struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	slots chan struct{}
}

// New returns the gateway's handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), slots: make(chan struct{}, MaxInFlight)}
	for _, p := range []string{"/api/v1/projects/{projectId}/runs", "/api/v1/project/{projectId}/run"} {
		s.mux.HandleFunc("POST "+p, s.authed(s.runProject))
		s.mux.HandleFunc("GET "+p+"/{runId}", s.authed(s.runStatus))
		s.mux.HandleFunc("DELETE "+p+"/{runId}", s.authed(s.cancelRun))
	}
	s.mux.HandleFunc("POST /v1/schedules/{name}/trigger", s.authed(s.triggerSchedule))
	s.mux.HandleFunc("/", s.authed(func(w http.ResponseWriter, r *http.Request, c *Client) {
		if allow := allowed(r.URL.Path); allow != "" {
			w.Header().Set("Allow", allow)
			s.fail(w, r, c.Name, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: the endpoint answers %s", r.Method, r.URL.Path, allow))
			return
		}
		s.fail(w, r, c.Name, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s: the gateway serves POST /api/v1/projects/{projectId}/runs "+
			"(and the legacy /api/v1/project/{projectId}/run), GET and DELETE of .../runs/{runId}, and POST /v1/schedules/{name}/trigger", r.Method, r.URL.Path))
	}))
	return s
}

var (
	runsPath = regexp.MustCompile(`^/api/v1/(projects/[^/]+/runs|project/[^/]+/run)$`)
	runPath  = regexp.MustCompile(`^/api/v1/(projects/[^/]+/runs|project/[^/]+/run)/[^/]+$`)
	trigPath = regexp.MustCompile(`^/v1/schedules/[^/]+/trigger$`)
)

// allowed is the methods an endpoint's path answers ("" for no endpoint).
func allowed(path string) string {
	switch {
	case runsPath.MatchString(path), trigPath.MatchString(path):
		return "POST"
	case runPath.MatchString(path):
		return "GET, DELETE"
	}
	return ""
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, AnonymousClient, http.StatusServiceUnavailable, fmt.Sprintf("the gateway is serving %d requests already", MaxInFlight))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authed authenticates the request's bearer token before h.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *Client)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.authenticate(r)
		if c == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hexcron gateway"`)
			s.fail(w, r, AnonymousClient, http.StatusUnauthorized, "missing or unknown token: send Authorization: Bearer <your gateway client token>")
			return
		}
		h(w, r, c)
	}
}

// authenticate finds the client whose token the request bears, comparing its SHA-256
// with every client's in constant time.
func (s *Server) authenticate(r *http.Request) *Client {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	var found *Client
	clients := s.cfg.Backend.Clients()
	for i := range clients {
		if subtle.ConstantTimeCompare(sum[:], clients[i].TokenSHA256[:]) == 1 {
			found = &clients[i]
		}
	}
	return found
}

// body reads the request body, at most MaxBody bytes.
func body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	return data, err
}

// headers reads Idempotency-Key and X-Hexcron-Wait.
func headers(r *http.Request) (key string, wait time.Duration, err error) {
	key = r.Header.Get("Idempotency-Key")
	if err := CheckKey(key); err != nil {
		return "", 0, err
	}
	wait, err = ParseWait(r.Header.Get("X-Hexcron-Wait"))
	return key, wait, err
}

// readErr answers a body or header error (400 or 413) and reports whether there was one.
func (s *Server) readErr(w http.ResponseWriter, r *http.Request, client string, err error) bool {
	var de *decodeError
	switch {
	case err == nil:
		return false
	case errors.Is(err, errTooLarge):
		s.fail(w, r, client, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBody))
	case errors.As(err, &de):
		s.fail(w, r, client, http.StatusBadRequest, de.msg)
	default:
		s.fail(w, r, client, http.StatusBadRequest, "cannot read the body: "+err.Error())
	}
	return true
}

func (s *Server) runProject(w http.ResponseWriter, r *http.Request, c *Client) {
	project := strings.ToLower(r.PathValue("projectId"))
	if !uuidRE.MatchString(project) {
		s.fail(w, r, c.Name, http.StatusBadRequest, fmt.Sprintf("projectId %q is not a Hex project id (a UUID)", r.PathValue("projectId")))
		return
	}
	if !contains(c.Projects, project) {
		s.fail(w, r, c.Name, http.StatusForbidden, fmt.Sprintf("client %s may not run project %s (gateway.clients[].projects)", c.Name, project))
		return
	}
	data, err := body(w, r)
	if s.readErr(w, r, c.Name, err) {
		return
	}
	rb, err := DecodeRunBody(data)
	if s.readErr(w, r, c.Name, err) {
		return
	}
	key, wait, err := headers(r)
	if s.readErr(w, r, c.Name, err) {
		return
	}
	req := Request{Client: c.Name, Project: project, Body: rb, Key: key, Wait: wait, Hash: requestHash("project "+project, rb)}
	s.submit(w, r, c, req)
}

func (s *Server) triggerSchedule(w http.ResponseWriter, r *http.Request, c *Client) {
	name := r.PathValue("name")
	if !contains(c.Schedules, name) {
		s.fail(w, r, c.Name, http.StatusForbidden, fmt.Sprintf("client %s may not run schedule %q (gateway.clients[].schedules)", c.Name, name))
		return
	}
	data, err := body(w, r)
	if s.readErr(w, r, c.Name, err) {
		return
	}
	tb, err := DecodeTriggerBody(data)
	if s.readErr(w, r, c.Name, err) {
		return
	}
	key, wait, err := headers(r)
	if s.readErr(w, r, c.Name, err) {
		return
	}
	req := Request{Client: c.Name, Schedule: name, Params: tb.Params, Key: key, Wait: wait, Hash: requestHash("schedule "+name, tb)}
	s.submit(w, r, c, req)
}

// submit hands req to the Backend and answers with its outcome.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, c *Client, req Request) {
	res, err := s.cfg.Backend.Submit(r.Context(), req)
	var bre *BadRequestError
	switch {
	case errors.As(err, &bre):
		s.fail(w, r, c.Name, http.StatusBadRequest, bre.Reason)
		return
	case errors.Is(err, ErrNotFound):
		s.fail(w, r, c.Name, http.StatusNotFound, err.Error())
		return
	case r.Context().Err() != nil:
		s.observe(c.Name, 499) // the caller went away; nothing to answer
		return
	case err != nil:
		s.log.Error("gateway: submit", "client", c.Name, "err", err)
		s.fail(w, r, c.Name, http.StatusInternalServerError, "internal error: "+err.Error())
		return
	}
	retry := func() {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((res.RetryAfter+time.Second-1)/time.Second))))
	}
	switch res.Status {
	case Triggered:
		run := res.Run
		out := map[string]any{
			"projectId": run.ProjectID, "runId": run.RunID, "runUrl": run.RunURL,
			"runStatusUrl": statusURL(r, run.ProjectID, run.RunID), "traceId": run.TraceID,
		}
		if v := projectVersion(run.ProjectVersion); v != nil {
			out["projectVersion"] = v
		}
		if req.Schedule != "" {
			out["slot"], out["schedule"] = run.Slot, run.Schedule
		}
		w.Header().Set("X-Hexcron-Slot", run.Slot)
		s.log.Info("gateway: run", "client", c.Name, "slot", run.Slot, "run", run.RunID)
		s.reply(w, c.Name, http.StatusCreated, run.TraceID, out)
	case NoRoom, Quota:
		retry()
		s.fail(w, r, c.Name, http.StatusTooManyRequests, res.Reason)
	case Refused, KeyReused:
		s.fail(w, r, c.Name, http.StatusUnprocessableEntity, res.Reason)
	case Skipped:
		s.fail(w, r, c.Name, http.StatusConflict, res.Reason)
	case Unknown:
		s.fail(w, r, c.Name, http.StatusBadGateway, res.Reason)
	default: // Pending, Unavailable
		retry()
		s.fail(w, r, c.Name, http.StatusServiceUnavailable, res.Reason)
	}
}

func (s *Server) runStatus(w http.ResponseWriter, r *http.Request, c *Client) {
	run, ok := s.findRun(w, r, c, s.cfg.Backend.Run)
	if !ok {
		return
	}
	out := map[string]any{
		"projectId": run.ProjectID, "runId": run.RunID, "runUrl": run.RunURL, "status": run.Status,
		"startTime": jsonTime(run.Started), "endTime": jsonTime(run.Ended), "elapsedTime": nil,
		"traceId": run.TraceID, "runTrigger": "API",
	}
	if run.Elapsed > 0 {
		out["elapsedTime"] = float64(run.Elapsed) / float64(time.Millisecond)
	}
	if v := projectVersion(run.ProjectVersion); v != nil {
		out["projectVersion"] = v
	}
	s.reply(w, c.Name, http.StatusOK, run.TraceID, out)
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, c *Client) {
	run, ok := s.findRun(w, r, c, s.cfg.Backend.Cancel)
	if !ok {
		return
	}
	s.log.Info("gateway: run cancelled", "client", c.Name, "slot", run.Slot, "run", run.RunID)
	s.observe(c.Name, http.StatusNoContent)
	w.Header().Set("x-trace-id", newTraceID())
	w.WriteHeader(http.StatusNoContent)
}

// findRun looks run {runId} of project {projectId} up with get and answers the
// request's errors itself.
func (s *Server) findRun(w http.ResponseWriter, r *http.Request, c *Client, get func(context.Context, string, string) (Run, error)) (Run, bool) {
	project, runID := strings.ToLower(r.PathValue("projectId")), strings.ToLower(r.PathValue("runId"))
	if !uuidRE.MatchString(project) || !uuidRE.MatchString(runID) {
		s.fail(w, r, c.Name, http.StatusBadRequest, "projectId and runId must be UUIDs")
		return Run{}, false
	}
	// A client sees the runs its own requests started (of a project or of a schedule),
	// and only those: the Backend looks the run up by client.
	run, err := get(r.Context(), c.Name, runID)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && !strings.EqualFold(run.ProjectID, project):
		s.fail(w, r, c.Name, http.StatusNotFound, fmt.Sprintf("no run %s of project %s started through this gateway by client %s", runID, project, c.Name))
	case errors.Is(err, ErrRunEnded):
		s.fail(w, r, c.Name, http.StatusUnprocessableEntity, fmt.Sprintf("run %s has already ended (%s)", runID, run.Status))
	case err != nil:
		s.log.Error("gateway: run", "client", c.Name, "run", runID, "err", err)
		s.fail(w, r, c.Name, http.StatusBadGateway, err.Error())
	default:
		return run, true
	}
	return Run{}, false
}

// fail answers Hex's error body {reason, traceId}.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, client string, code int, reason string) {
	trace := newTraceID()
	if code >= 500 || code == http.StatusTooManyRequests || code == http.StatusUnauthorized {
		s.log.Info("gateway: refused", "client", client, "status", code, "method", r.Method, "path", r.URL.Path, "reason", reason)
	} else {
		s.log.Info("gateway: bad request", "client", client, "status", code, "method", r.Method, "path", r.URL.Path, "reason", reason)
	}
	s.reply(w, client, code, trace, map[string]any{"reason": reason, "traceId": trace})
}

// reply writes v as JSON with code and counts the answer.
func (s *Server) reply(w http.ResponseWriter, client string, code int, trace string, v any) {
	s.observe(client, code)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if trace != "" {
		w.Header().Set("x-trace-id", trace)
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) observe(client string, code int) {
	if s.cfg.Observer != nil && code != 499 {
		s.cfg.Observer.ObserveGatewayRequest(client, code)
	}
}

// statusURL is the gateway's own URL of a run's status.
func statusURL(r *http.Request, project, runID string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/api/v1/projects/" + project + "/runs/" + runID
}

// projectVersion is Hex's projectVersion as it came: a number when it reads as one.
func projectVersion(v string) any {
	if v == "" {
		return nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	return v
}

func jsonTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
