package hexsim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is the fake Hex API, an http.Handler. Mount it at the root: the API lives
// under /api/v1 (the base URL for clients is http://HOST:PORT/api/v1) and the debug
// endpoints under /_sim. It is safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu       sync.Mutex
	rng      *rand.Rand
	latRng   *rand.Rand        // latency draws only, so that they shift no other draw
	open     bool              // accept any well-formed token
	tokens   map[string]string // token -> user
	readOnly map[string]bool   // tokens without the "Run projects" scope
	revoked  map[string]bool
	registry bool // Config.Projects was given: unknown projects are 404
	projects map[string]*project
	order    []string // project ids in registry order
	runs     []*run
	byID     map[string]*run
	active   map[string][]*run // user -> runs that were not terminal when last looked at
	limits   map[string]*userLimits
	requests []Request
	faults   faultScript
	born     time.Time
}

type project struct {
	Project
	inputs map[string]bool // nil: any input accepted
}

type faultScript struct {
	next  []Fault
	at    map[int]Fault
	probs map[Fault]float64
	n     int // RunProject requests that reached the fault point
}

// Request is one API request as the sim received and answered it.
type Request struct {
	// Time is when the request arrived, on the sim's clock.
	Time time.Time `json:"time"`
	// Method and Path are the request's method and URL path.
	Method string `json:"method"`
	Path   string `json:"path"`
	// Op is the operation the path named (RunProject, GetRunStatus, ...), "" if none.
	Op string `json:"op,omitempty"`
	// Status is the status answered; 0 while in flight or when the connection was
	// dropped without an answer.
	Status int `json:"status"`
	// Token is a hash of the bearer token ("sha256:" and 12 hex digits), never the token.
	Token string `json:"token,omitempty"`
	// User is the Hex user the token acts as ("" when the token was refused).
	User string `json:"user,omitempty"`
	// RunCreated is the id of the run this request created, or "".
	RunCreated string `json:"runCreated,omitempty"`
	// Fault is the fault injected into this request, or "".
	Fault string `json:"fault,omitempty"`
	// TraceID is the trace id answered.
	TraceID string `json:"traceId"`
}

// New returns a fake Hex configured by cfg (zero fields take defaults). It panics if
// cfg does not pass Config.Validate: a bad test setup is a programming error.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic("hexsim: " + err.Error())
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15)),
		latRng:   rand.New(rand.NewPCG(uint64(cfg.Seed)^0x5bd1e995, uint64(cfg.Seed))),
		open:     len(cfg.Tokens) == 0 && len(cfg.Users) == 0,
		tokens:   map[string]string{},
		readOnly: map[string]bool{},
		revoked:  map[string]bool{},
		registry: len(cfg.Projects) > 0,
		projects: map[string]*project{},
		byID:     map[string]*run{},
		active:   map[string][]*run{},
		limits:   map[string]*userLimits{},
		born:     cfg.Clock.Now(),
	}
	for _, t := range cfg.Tokens {
		s.tokens[t] = "user-" + strings.TrimPrefix(hashToken(t), "sha256:")
	}
	for _, u := range cfg.Users {
		for _, t := range u.Tokens {
			s.tokens[t] = u.Name
		}
	}
	for _, t := range cfg.ReadOnlyTokens {
		s.readOnly[t] = true
	}
	for _, p := range cfg.Projects {
		s.setProjectLocked(p)
	}
	s.faults = faultScript{next: slices.Clone(cfg.Faults.Next), at: map[int]Fault{}, probs: map[Fault]float64{}}
	for n, f := range cfg.Faults.At {
		s.faults.at[n] = f
	}
	for f, p := range cfg.Faults.Probabilities {
		s.faults.probs[f] = p
	}
	s.mux = s.routes()
	return s
}

// ServeHTTP serves the API and the debug endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, fam := range []struct{ projects, run, runs string }{
		{"/api/v1/projects/{projectId}", "/runs", "/runs"}, // current
		{"/api/v1/project/{projectId}", "/run", "/runs"},   // legacy (2022 document)
	} {
		mux.HandleFunc("POST "+fam.projects+fam.run, s.api(opRunProject, s.runProject))
		mux.HandleFunc("GET "+fam.projects+fam.run+"/{runId}", s.api(opGetRunStatus, s.getRunStatus))
		mux.HandleFunc("DELETE "+fam.projects+fam.run+"/{runId}", s.api(opCancelRun, s.cancelRun))
		mux.HandleFunc("GET "+fam.projects+fam.runs, s.api(opGetProjectRuns, s.getProjectRuns))
	}
	mux.HandleFunc("GET /api/v1/projects", s.api(opListProjects, s.listProjects))
	mux.HandleFunc("GET /api/v1/projects/{projectId}", s.api(opGetProject, s.getProject))
	mux.HandleFunc("/api/v1/", s.notFound)
	s.debugRoutes(mux)
	return mux
}

// op names an API operation.
type op string

const (
	opRunProject     op = "RunProject"
	opGetRunStatus   op = "GetRunStatus"
	opGetProjectRuns op = "GetProjectRuns"
	opCancelRun      op = "CancelRun"
	opListProjects   op = "ListProjects"
	opGetProject     op = "GetProject"
)

// statusGroup reports whether o counts against the status rules (Hex's "hex-api" read
// group: about 30 per minute).
func (o op) statusGroup() bool { return o == opGetRunStatus || o == opGetProjectRuns }

// call is one API request being answered.
type call struct {
	s      *Server
	w      *recorder
	r      *http.Request
	op     op
	now    time.Time
	trace  string
	idx    int // index in s.requests
	user   string
	rate   *rateInfo
	run    string // run created
	fault  Fault
	legacy bool
	// readOnly is true for a token without the "Run projects" scope.
	readOnly bool
}

// recorder remembers the status written, for the ledger, and holds the answer back
// for the rest of the request's latency.
type recorder struct {
	http.ResponseWriter
	status int
	delay  func() // waits the answer's share of the latency; nil: none
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.wait()
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.wait()
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *recorder) wait() {
	if w.delay != nil {
		w.delay()
		w.delay = nil
	}
}

// latency draws one request's delay and splits it into the part before the request is
// handled and the part before its answer is written.
func (s *Server) latency() (before, after time.Duration) {
	lo, hi := s.cfg.Latency.Min, max(s.cfg.Latency.Max, s.cfg.Latency.Min)
	if hi <= 0 {
		return 0, 0
	}
	s.mu.Lock()
	d := lo + time.Duration(s.latRng.Int64N(int64(hi-lo)+1))
	before = time.Duration(s.latRng.Int64N(int64(d) + 1))
	s.mu.Unlock()
	return before, d - before
}

// sleep waits d on the sim's clock, or until the client gives up on r.
func (s *Server) sleep(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := s.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-r.Context().Done():
	}
}

// Unwrap lets http.ResponseController reach the connection (for Hijack).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// begin records the request in the ledger and gives it a trace id.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, o op) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &call{s: s, w: &recorder{ResponseWriter: w}, r: r, op: o, now: s.cfg.Clock.Now(), trace: newTraceID(s.rng),
		legacy: strings.HasPrefix(r.URL.Path, "/api/v1/project/")}
	c.idx = len(s.requests)
	s.requests = append(s.requests, Request{Time: c.now, Method: r.Method, Path: r.URL.Path, Op: string(o), TraceID: c.trace})
	return c
}

// finish writes the outcome into the ledger.
func (c *call) finish(dropped bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	rq := &c.s.requests[c.idx]
	rq.Status = c.w.status
	if dropped {
		rq.Status = 0
	}
	rq.User, rq.RunCreated = c.user, c.run
	if c.fault != "" && c.fault != FaultNone {
		rq.Fault = string(c.fault)
	}
}

// api wraps an operation with the trace id, the ledger, authentication and the limits.
func (s *Server) api(o op, h func(*call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		before, after := s.latency()
		s.sleep(r, before)
		c := s.begin(w, r, o)
		if after > 0 {
			c.w.delay = func() { s.sleep(r, after) }
		}
		dropped := false
		defer func() { c.finish(dropped) }()
		token, hasBearer := bearer(r)
		s.mu.Lock()
		s.requests[c.idx].Token = hashToken(token)
		user, ok := s.authenticateLocked(token)
		var admitted bool
		var info rateInfo
		if ok && hasBearer {
			lim := s.limits[user]
			if lim == nil {
				lim = newUserLimits(s.cfg.Limits)
				s.limits[user] = lim
			}
			admitted, info = lim.admit(o, c.now)
			c.user = user
			c.readOnly = s.readOnly[token]
		}
		s.mu.Unlock()
		switch {
		case !ok || !hasBearer:
			c.unauthorized()
		case !admitted:
			c.tooMany(info)
		default:
			c.rate = &info
			h(c)
			dropped = c.fault == FaultDrop
		}
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (s *Server) authenticateLocked(token string) (string, bool) {
	if token == "" || s.revoked[token] {
		return "", false
	}
	if u, ok := s.tokens[token]; ok {
		return u, true
	}
	if s.open && wellFormedToken(token) {
		if s.cfg.SharedUser {
			return "default", true
		}
		return "user-" + strings.TrimPrefix(hashToken(token), "sha256:"), true
	}
	return "", false
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	c := s.begin(w, r, "")
	defer c.finish(false)
	c.error(http.StatusNotFound, "Not found", fmt.Sprintf("no API operation at %s %s", r.Method, r.URL.Path))
}

// Response helpers.

func (c *call) header() http.Header {
	h := c.w.Header()
	h.Set("x-trace-id", c.trace)
	if c.rate != nil {
		c.rateHeaders(*c.rate, false)
	}
	return h
}

func (c *call) rateHeaders(info rateInfo, limited bool) {
	h := c.w.Header()
	lim := c.s.cfg.Limits
	style := lim.Style
	if info.remaining >= 0 {
		resetIn := time.Duration(0)
		if !info.reset.IsZero() {
			resetIn = info.reset.Sub(c.now)
		}
		if style == StyleReset || style == StyleBoth {
			h.Set("RateLimit-Limit", strconv.Itoa(info.limit))
			h.Set("RateLimit-Remaining", strconv.Itoa(info.remaining))
			h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(resetIn), 10))
		}
		if style == StyleReset || style == StyleBoth || style == StyleXRateLimit {
			h.Set("X-RateLimit-Limit", strconv.Itoa(info.limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(info.remaining))
			at := c.now.Add(resetIn)
			var v int64
			switch lim.ResetUnit {
			case ResetUnixMilli:
				v = at.UnixMilli()
				if at.Nanosecond()%int(time.Millisecond) > 0 {
					v++ // rounded up so that it is never early
				}
			case ResetSeconds:
				v = ceilSeconds(resetIn)
			default:
				v = at.Unix()
				if at.Nanosecond() > 0 {
					v++
				}
			}
			h.Set("X-RateLimit-Reset", strconv.FormatInt(v, 10))
		}
	}
	if limited && (style == StyleRetryAfter || style == StyleBoth) {
		h.Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(info.retryAfter)), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

func (c *call) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"reason":"hexsim: cannot encode response","traceId":"`+c.trace+`"}`)
	}
	h := c.header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(status)
	c.w.Write(b)
}

// errorBody is Hex's error body {reason, details?, traceId}.
type errorBody struct {
	Reason  string `json:"reason"`
	Details string `json:"details,omitempty"`
	TraceID string `json:"traceId"`
}

func (c *call) error(status int, reason, details string) {
	c.json(status, errorBody{Reason: reason, Details: details, TraceID: c.trace})
}

func (c *call) text(status int, body string) {
	h := c.header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	c.w.WriteHeader(status)
	c.w.Write([]byte(body))
}

// unauthorized answers as Hex may: a plain-text body.
func (c *call) unauthorized() { c.text(http.StatusUnauthorized, "Unauthorized") }

// forbidden answers 403 with Hex's error body.
func (c *call) forbidden(reason string) { c.error(http.StatusForbidden, reason, "") }

func (c *call) tooMany(info rateInfo) {
	c.rateHeaders(info, true)
	c.error(http.StatusTooManyRequests, "Too many requests",
		fmt.Sprintf("rate limit of %d exceeded; try again later", info.limit))
}

// baseURL is the API base for links in responses.
func (c *call) baseURL() string {
	if c.s.cfg.BaseURL != "" {
		return strings.TrimRight(c.s.cfg.BaseURL, "/")
	}
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.r.Host + "/api/v1"
}
