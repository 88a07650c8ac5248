package hexsim

import (
	"fmt"
	"math"
	"time"

	"hexcron/clock"
)

// Config says how the fake Hex behaves. The zero value is a permissive Hex with its
// documented default limits: any well-formed hxtp_/hxtw_ token, any well-formed project
// id as a published project, runs that complete after a short while.
type Config struct {
	// Clock is the only source of time (default clock.System{}).
	Clock clock.Clock
	// Seed seeds every random choice (ids, jitter, outcomes, fault draws).
	Seed int64
	// Tokens are valid tokens, each its own Hex user unless listed in Users. When both
	// Tokens and Users are empty, any well-formed token (hxtp_ or hxtw_ followed by
	// letters, digits, '_' or '-') is accepted.
	Tokens []string
	// Users groups tokens into Hex users; limits are counted per user.
	Users []User
	// SharedUser makes every token accepted in open mode (no Tokens, no Users) one Hex
	// user named "default"; otherwise each such token is its own user.
	SharedUser bool
	// Projects is the project registry. When empty, any well-formed UUID names a
	// published project with no declared inputs (it is added to the registry the first
	// time a request names it, so ListProjects shows it).
	Projects []Project
	// Limits are Hex's per-user limits and how they are counted.
	Limits Limits
	// Runs shapes the run lifecycle.
	Runs Lifecycle
	// Faults injects failures into RunProject.
	Faults Faults
	// Latency delays every API answer (network and processing time).
	Latency Latency
	// BaseURL, when set, is the API base used in runStatusUrl, nextPage and previousPage
	// (e.g. "http://127.0.0.1:8080/api/v1"); otherwise it is derived from each request.
	BaseURL string
	// AppURL is the UI base used in runUrl (default "https://app.hex.tech").
	AppURL string
	// ProjectVersionString makes projectVersion a JSON string ("1") instead of a number;
	// Hex's reference shows both.
	ProjectVersionString bool
	// ListOrder is the order GetProjectRuns lists runs in, which Hex does not document
	// (default ListNewestFirst, what Kestra's code assumes).
	ListOrder ListOrder
	// RejectUnknownInputs makes RunProject answer 422 {invalid, notFound} for inputs a
	// project with declared Inputs does not have. Hex documents the opposite ("Any
	// additional inputs will be ignored"), which is the default.
	RejectUnknownInputs bool
	// ReadOnlyTokens are tokens without the "Run projects" scope: every read works,
	// RunProject and CancelRun answer 403. In open mode they are accepted like any
	// well-formed token; otherwise they must also be in Tokens or Users.
	ReadOnlyTokens []string
}

// ListOrder is the order of GetProjectRuns' runs.
type ListOrder string

// The listing orders.
const (
	// ListNewestFirst lists the most recently created run first.
	ListNewestFirst ListOrder = "newest"
	// ListOldestFirst lists the first run ever created first.
	ListOldestFirst ListOrder = "oldest"
	// ListUnordered lists runs in an order unrelated to time, the same on every
	// request (a seeded hash of the run id).
	ListUnordered ListOrder = "unordered"
)

// Access is what the token's user may do with a project.
type Access string

// The project access levels.
const (
	// AccessFull lets the user read and run the project (the default).
	AccessFull Access = "full"
	// AccessRead lets the user read the project and its runs; RunProject and CancelRun
	// answer 403 (the project is shared for viewing only).
	AccessRead Access = "read"
	// AccessNone is a project not shared with the user: every call on it answers 403,
	// and ListProjects does not show it.
	AccessNone Access = "none"
)

// HexSchedule is one of a project's own schedules in Hex, as GetProject reports it.
type HexSchedule struct {
	// Cadence is HOURLY, DAILY, WEEKLY, MONTHLY or CUSTOM.
	Cadence string
	// Enabled reports whether Hex runs it.
	Enabled bool
	// Cron is the expression of a CUSTOM cadence.
	Cron string
	// Timezone is the schedule's zone (default UTC).
	Timezone string
}

// User is one Hex user and the tokens that act as it.
type User struct {
	// Name identifies the user in the ledger.
	Name string
	// Tokens are the user's valid tokens.
	Tokens []string
}

// Project is one entry of the project registry.
type Project struct {
	// ID is the project's UUID.
	ID string
	// Title is shown by ListProjects and GetProject.
	Title string
	// Published projects can be run; RunProject on an unpublished one answers 422.
	Published bool
	// Inputs are the input names of the published app (nil: not declared). Other
	// inputs are ignored, as Hex documents, unless Config.RejectUnknownInputs makes a
	// project with declared Inputs refuse them.
	Inputs []string
	// Access is what the token's user may do with it (default AccessFull).
	Access Access
	// Version is the published version's number, projectVersion in run answers
	// (default 1).
	Version int
	// Schedules are the project's own Hex schedules (GetProject's schedules).
	Schedules []HexSchedule
}

// Rule is one rate limit: at most Limit requests per Per. A negative Limit disables it.
type Rule struct {
	// Limit is the number of requests allowed in one window.
	Limit int
	// Per is the window length.
	Per time.Duration
}

// WindowModel says how the server counts a rule's windows; Hex does not document it.
type WindowModel string

// The window models.
const (
	// WindowFixed counts in fixed windows aligned to the clock (each minute, each hour).
	WindowFixed WindowModel = "fixed"
	// WindowAnchored counts in fixed windows that start at the first request after the
	// previous window ended (Hex's overview: "a window that starts at the first request").
	WindowAnchored WindowModel = "anchored"
	// WindowRolling counts every request of the last Per (a sliding log).
	WindowRolling WindowModel = "rolling"
)

// RetryStyle says which headers tell a client when to come back.
type RetryStyle string

// The retry styles.
const (
	// StyleReset sends RateLimit-Limit/-Remaining/-Reset (reset in seconds from now)
	// and X-RateLimit-Limit/-Remaining/-Reset (reset as Unix seconds) on every response
	// that went through the limiter, including 429s. Hex says its responses carry "the
	// remaining number of requests allowed, and when the rate limit will be reset".
	StyleReset RetryStyle = "reset"
	// StyleRetryAfter sends only Retry-After (delay in whole seconds) on 429s.
	StyleRetryAfter RetryStyle = "retry-after"
	// StyleBoth sends both of the above.
	StyleBoth RetryStyle = "both"
	// StyleNone sends no rate-limit header at all.
	StyleNone RetryStyle = "none"
	// StyleXRateLimit sends only X-RateLimit-Limit/-Remaining/-Reset, the reset in
	// Limits.ResetUnit.
	StyleXRateLimit RetryStyle = "x-ratelimit"
)

// Limits are Hex's per-user limits. Zero fields take Hex's documented defaults.
type Limits struct {
	// Trigger rules count RunProject calls (default 20 per 1m and 60 per 1h).
	Trigger []Rule
	// AllCalls rules count every API call of the user (default 60 per 1m).
	AllCalls []Rule
	// Status rules count GetRunStatus and GetProjectRuns (default 30 per 1m).
	Status []Rule
	// Kernels is the number of runs a user may have not yet terminal (PENDING, RUNNING
	// or an unknown status); the next RunProject answers 503 and creates no run
	// (default 25, negative: no cap).
	Kernels int
	// Window is how the trigger and status rules are counted, which Hex does not
	// document (default WindowFixed).
	Window WindowModel
	// AllCallsWindow is how the all-calls rules are counted (default WindowAnchored:
	// Hex's overview says the window starts at the first request).
	AllCallsWindow WindowModel
	// Style is how 429s say when to retry (default StyleReset).
	Style RetryStyle
	// ResetUnit is the unit of X-RateLimit-Reset (default ResetUnix): Hex names
	// neither its headers nor their units.
	ResetUnit ResetUnit
}

// ResetUnit is how X-RateLimit-Reset tells the reset instant.
type ResetUnit string

// The reset units.
const (
	// ResetUnix is a unix timestamp in seconds, rounded up.
	ResetUnix ResetUnit = "unix"
	// ResetUnixMilli is a unix timestamp in milliseconds.
	ResetUnixMilli ResetUnit = "unix-ms"
	// ResetSeconds is the number of seconds from now, rounded up.
	ResetSeconds ResetUnit = "seconds"
)

// Outcome is how a run ends.
type Outcome string

// The outcomes a run can be given.
const (
	OutcomeCompleted   Outcome = "COMPLETED"
	OutcomeErrored     Outcome = "ERRORED"
	OutcomeKilled      Outcome = "KILLED"
	OutcomeNoKernel    Outcome = "UNABLE_TO_ALLOCATE_KERNEL" // straight from PENDING
	OutcomeStuck       Outcome = "STUCK"                     // RUNNING forever (until cancelled)
	OutcomeUnknown     Outcome = "UNKNOWN"                   // reports Lifecycle.UnknownStatus while pending, then completes
	defaultUnknownName         = "QUEUED_FOR_GPU"
)

// Lifecycle shapes runs: PENDING for Pending(+jitter), RUNNING for Running(+jitter),
// then the outcome drawn from Outcomes.
type Lifecycle struct {
	// Pending is how long a run stays PENDING (default 2s; negative: 0).
	Pending time.Duration
	// PendingJitter adds a seeded uniform [0, PendingJitter) to Pending.
	PendingJitter time.Duration
	// Running is how long a run stays RUNNING (default 30s; negative: 0).
	Running time.Duration
	// RunningJitter adds a seeded uniform [0, RunningJitter) to Running.
	RunningJitter time.Duration
	// Outcomes are relative weights (default: all COMPLETED).
	Outcomes map[Outcome]float64
	// UnknownStatus is the status string OutcomeUnknown runs report (default
	// "QUEUED_FOR_GPU").
	UnknownStatus string
	// Conflict409 makes RunProject answer 409 (no run created) while the project has a
	// run that is not terminal. Hex does not document a 409; users report one.
	Conflict409 bool
}

// Latency is how long each API request takes, drawn (seeded) uniformly from [Min, Max]
// per request and spent on the sim's clock: a random part of it before the sim handles
// the request (the ledger's time, the limits and a run's creation happen after it) and
// the rest before the answer is written. The zero value adds no delay.
type Latency struct {
	// Min and Max bound each request's delay (Max 0 means Min).
	Min, Max time.Duration
}

// Fault is an injected failure of RunProject.
type Fault string

// The faults. A fault is applied to a RunProject that passed auth, limits and
// validation, just where it would create a run.
const (
	FaultNone            Fault = "none"              // behave normally (a placeholder in scripts)
	Fault5xxAfterCreate  Fault = "5xx-after-create"  // create the run, answer 500
	Fault5xxBeforeCreate Fault = "5xx-before-create" // create nothing, answer 502 (plain text, as a proxy would)
	FaultDelay           Fault = "delay"             // create the run, answer 201 only after Faults.Delay
	FaultDrop            Fault = "drop-after-create" // create the run, close the connection without answering
	FaultConflict        Fault = "409"               // create nothing, answer 409
	FaultUnprocessable   Fault = "422"               // create nothing, answer 422
	FaultUnauthorized    Fault = "401"               // create nothing, answer a plain-text 401
	FaultTooMany         Fault = "429"               // create nothing, answer 429 (retry after Faults.RetryAfter)
	FaultKernelCap       Fault = "503"               // create nothing, answer 503 as the kernel cap does
)

// faultOrder fixes the order in which probabilities are drawn, for determinism.
var faultOrder = []Fault{Fault5xxAfterCreate, Fault5xxBeforeCreate, FaultDelay, FaultDrop,
	FaultConflict, FaultUnprocessable, FaultUnauthorized, FaultTooMany, FaultKernelCap}

// Valid reports whether f is a known fault.
func (f Fault) Valid() bool {
	if f == FaultNone {
		return true
	}
	for _, g := range faultOrder {
		if f == g {
			return true
		}
	}
	return false
}

// Faults injects failures into RunProject, by probability or by script. A scripted
// fault wins over the probabilities; At wins over Next.
type Faults struct {
	// Probabilities of each fault per RunProject (their sum must be at most 1).
	Probabilities map[Fault]float64
	// Next is applied, one per RunProject reaching the fault point, in order.
	Next []Fault
	// At applies a fault to the n-th RunProject (1-based) that reaches the fault point.
	At map[int]Fault
	// Delay is how long FaultDelay holds the response, on the clock (default 2m).
	Delay time.Duration
	// RetryAfter is the wait FaultTooMany announces (default 30s).
	RetryAfter time.Duration
}

// Default limits, from Hex's documentation.
var (
	defaultTrigger  = []Rule{{20, time.Minute}, {60, time.Hour}}
	defaultAllCalls = []Rule{{60, time.Minute}}
	defaultStatus   = []Rule{{30, time.Minute}}
)

const (
	defaultKernels    = 25
	defaultPending    = 2 * time.Second
	defaultRunning    = 30 * time.Second
	defaultDelay      = 2 * time.Minute
	defaultRetryAfter = 30 * time.Second
	defaultAppURL     = "https://app.hex.tech"
)

// withDefaults returns cfg with every zero field filled.
func (cfg Config) withDefaults() Config {
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.AppURL == "" {
		cfg.AppURL = defaultAppURL
	}
	l := &cfg.Limits
	if l.Trigger == nil {
		l.Trigger = defaultTrigger
	}
	if l.AllCalls == nil {
		l.AllCalls = defaultAllCalls
	}
	if l.Status == nil {
		l.Status = defaultStatus
	}
	if l.Kernels == 0 {
		l.Kernels = defaultKernels
	}
	if l.Window == "" {
		l.Window = WindowFixed
	}
	if l.AllCallsWindow == "" {
		l.AllCallsWindow = WindowAnchored
	}
	if l.ResetUnit == "" {
		l.ResetUnit = ResetUnix
	}
	if cfg.ListOrder == "" {
		cfg.ListOrder = ListNewestFirst
	}
	if l.Style == "" {
		l.Style = StyleReset
	}
	r := &cfg.Runs
	r.Pending = orDefault(r.Pending, defaultPending)
	r.Running = orDefault(r.Running, defaultRunning)
	if len(r.Outcomes) == 0 {
		r.Outcomes = map[Outcome]float64{OutcomeCompleted: 1}
	}
	if r.UnknownStatus == "" {
		r.UnknownStatus = defaultUnknownName
	}
	f := &cfg.Faults
	if f.Delay == 0 {
		f.Delay = defaultDelay
	}
	if f.RetryAfter == 0 {
		f.RetryAfter = defaultRetryAfter
	}
	return cfg
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Validate reports the first problem with cfg, if any.
func (cfg Config) Validate() error {
	seen := map[string]bool{}
	addTok := func(t string) error {
		if !wellFormedToken(t) {
			return fmt.Errorf("validate config: a token is not of the form hxtp_... or hxtw_...")
		}
		if seen[t] {
			return fmt.Errorf("validate config: a token is listed twice")
		}
		seen[t] = true
		return nil
	}
	for _, t := range cfg.Tokens {
		if err := addTok(t); err != nil {
			return err
		}
	}
	names := map[string]bool{}
	for _, u := range cfg.Users {
		if u.Name == "" {
			return fmt.Errorf("validate config: a user has no name")
		}
		if names[u.Name] {
			return fmt.Errorf("validate config: user %q is listed twice", u.Name)
		}
		names[u.Name] = true
		for _, t := range u.Tokens {
			if err := addTok(t); err != nil {
				return fmt.Errorf("%w (user %q)", err, u.Name)
			}
		}
	}
	ids := map[string]bool{}
	for _, p := range cfg.Projects {
		if !wellFormedUUID(p.ID) {
			return fmt.Errorf("validate config: project id %q is not a UUID", p.ID)
		}
		if ids[p.ID] {
			return fmt.Errorf("validate config: project %q is listed twice", p.ID)
		}
		ids[p.ID] = true
		switch p.Access {
		case "", AccessFull, AccessRead, AccessNone:
		default:
			return fmt.Errorf("validate config: project %q: unknown access %q (full, read, none)", p.ID, p.Access)
		}
		if p.Version < 0 {
			return fmt.Errorf("validate config: project %q: negative version", p.ID)
		}
		for _, hs := range p.Schedules {
			switch hs.Cadence {
			case "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "CUSTOM":
			default:
				return fmt.Errorf("validate config: project %q: schedule cadence %q is not HOURLY, DAILY, WEEKLY, MONTHLY or CUSTOM", p.ID, hs.Cadence)
			}
		}
	}
	for group, rules := range map[string][]Rule{"trigger": cfg.Limits.Trigger, "all_calls": cfg.Limits.AllCalls, "status": cfg.Limits.Status} {
		for _, r := range rules {
			if r.Limit >= 0 && r.Per <= 0 {
				return fmt.Errorf("validate config: a %s rule has no positive window length", group)
			}
		}
	}
	for _, w := range []WindowModel{cfg.Limits.Window, cfg.Limits.AllCallsWindow} {
		switch w {
		case "", WindowFixed, WindowAnchored, WindowRolling:
		default:
			return fmt.Errorf("validate config: unknown window model %q (fixed, anchored, rolling)", w)
		}
	}
	switch cfg.Limits.Style {
	case "", StyleReset, StyleRetryAfter, StyleBoth, StyleNone, StyleXRateLimit:
	default:
		return fmt.Errorf("validate config: unknown 429 style %q (reset, retry-after, both, none, x-ratelimit)", cfg.Limits.Style)
	}
	switch cfg.Limits.ResetUnit {
	case "", ResetUnix, ResetUnixMilli, ResetSeconds:
	default:
		return fmt.Errorf("validate config: unknown reset unit %q (unix, unix-ms, seconds)", cfg.Limits.ResetUnit)
	}
	switch cfg.ListOrder {
	case "", ListNewestFirst, ListOldestFirst, ListUnordered:
	default:
		return fmt.Errorf("validate config: unknown list order %q (newest, oldest, unordered)", cfg.ListOrder)
	}
	for _, t := range cfg.ReadOnlyTokens {
		if !wellFormedToken(t) {
			return fmt.Errorf("validate config: a read-only token is not of the form hxtp_... or hxtw_...")
		}
	}
	for o, w := range cfg.Runs.Outcomes {
		switch o {
		case OutcomeCompleted, OutcomeErrored, OutcomeKilled, OutcomeNoKernel, OutcomeStuck, OutcomeUnknown:
		default:
			return fmt.Errorf("validate config: unknown outcome %q", o)
		}
		if !(w >= 0 && w <= math.MaxFloat64) { // also NaN and +Inf
			return fmt.Errorf("validate config: outcome %q has weight %v, want a finite number >= 0", o, w)
		}
	}
	if cfg.Latency.Min < 0 || cfg.Latency.Max < 0 || (cfg.Latency.Max > 0 && cfg.Latency.Max < cfg.Latency.Min) {
		return fmt.Errorf("validate config: latency must have 0 <= min <= max")
	}
	if cfg.Runs.PendingJitter < 0 || cfg.Runs.RunningJitter < 0 {
		return fmt.Errorf("validate config: a jitter is negative")
	}
	sum := 0.0
	for f, p := range cfg.Faults.Probabilities {
		if !f.Valid() || f == FaultNone {
			return fmt.Errorf("validate config: unknown fault %q", f)
		}
		if !(p >= 0 && p <= 1) { // also NaN
			return fmt.Errorf("validate config: fault %q has probability %v outside [0, 1]", f, p)
		}
		sum += p
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("validate config: fault probabilities add up to %v, more than 1", sum)
	}
	for _, f := range cfg.Faults.Next {
		if !f.Valid() {
			return fmt.Errorf("validate config: unknown fault %q", f)
		}
	}
	for n, f := range cfg.Faults.At {
		if !f.Valid() || n < 1 {
			return fmt.Errorf("validate config: bad scripted fault %d: %q", n, f)
		}
	}
	return nil
}
