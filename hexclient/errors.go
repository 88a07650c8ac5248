package hexclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is any failed call: an HTTP error status (Status > 0) or a transport error
// (Status 0, Err set). Use errors.As to get it.
type APIError struct {
	Op      string // the call: "run project", "get run status", ...
	Status  int    // HTTP status; 0 when no response arrived
	Class   Class  // what it means (see Classify)
	Reason  string // Hex's reason, or the plain-text body
	Details string // Hex's details, when given
	TraceID string // from the body's traceId or the x-trace-id header
	// Invalid and NotFound are RunProject's 422 form: input parameters Hex rejected.
	Invalid  []InvalidParam
	NotFound []InvalidParam
	// RetryAfter is the wait a 429 or 503 named (Retry-After or a reset header), capped.
	RetryAfter time.Duration
	// Err is the transport error when Status is 0.
	Err error
	// NotSent is true when the request failed before any byte of it was written (no
	// connection was obtained, or it could not be built): it did not reach Hex.
	NotSent bool
}

// InvalidParam is one entry of a 422's invalid or notFound list.
type InvalidParam struct {
	ParamName     string `json:"paramName"`
	DataType      string `json:"dataType,omitempty"`
	InputCellType string `json:"inputCellType,omitempty"`
}

// UnmarshalJSON accepts an entry as an object ({"paramName": ...}) or as the bare
// input name: Hex does not document the element type of notFound.
func (p *InvalidParam) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*p = InvalidParam{ParamName: name}
		return nil
	}
	type plain InvalidParam
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = InvalidParam(v)
	return nil
}

// Error describes the failure without ever containing the token.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("hexclient: ")
	b.WriteString(e.Op)
	if e.Status == 0 {
		b.WriteString(": ")
		b.WriteString(e.Class.String())
		if e.Err != nil {
			b.WriteString(": ")
			b.WriteString(e.Err.Error())
		}
	} else {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
		if e.Reason != "" {
			b.WriteString(": ")
			b.WriteString(e.Reason)
		}
		if e.Details != "" {
			b.WriteString(" (")
			b.WriteString(e.Details)
			b.WriteString(")")
		}
		for _, p := range e.Invalid {
			fmt.Fprintf(&b, "; invalid input %q", p.ParamName)
		}
		for _, p := range e.NotFound {
			fmt.Fprintf(&b, "; unknown input %q", p.ParamName)
		}
	}
	if e.TraceID != "" {
		b.WriteString(" [trace ")
		b.WriteString(e.TraceID)
		b.WriteString("]")
	}
	return b.String()
}

// Unwrap returns the transport error, if any.
func (e *APIError) Unwrap() error { return e.Err }

// ErrDeadline is matched (errors.Is) by every *DeadlineError.
var ErrDeadline = errors.New("hexclient: trigger deadline passed")

// DeadlineError is Trigger giving up because the slot's deadline passed.
type DeadlineError struct {
	Slot     string
	Deadline time.Time
	Attempts int   // RunProject attempts sent
	Last     error // the last attempt's error, if any
	// Unresolved is non-zero when an attempt sent at or after this instant had an
	// ambiguous outcome that no listing resolved: a run may still appear; call
	// Reconcile later before treating the slot as not triggered.
	Unresolved time.Time
	// Waited is the trigger's latest wait before an attempt (zero Cause: it never
	// waited): with no attempt sent, it is why the deadline passed.
	Waited Wait
}

// Error says which slot missed its deadline and why.
func (e *DeadlineError) Error() string {
	s := fmt.Sprintf("hexclient: trigger %s: deadline %s passed after %d attempts", e.Slot, e.Deadline.UTC().Format(time.RFC3339), e.Attempts)
	if e.Waited.Cause != "" && e.Last == nil {
		s += " (waiting for " + string(e.Waited.Cause) + ")"
	}
	if !e.Unresolved.IsZero() {
		s += " (an ambiguous attempt is unresolved)"
	}
	if e.Last != nil {
		s += ": " + e.Last.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrDeadline) true.
func (e *DeadlineError) Is(target error) bool { return target == ErrDeadline }

// Unwrap returns the last attempt's error.
func (e *DeadlineError) Unwrap() error { return e.Last }

// ErrUnresolved is matched (errors.Is) by every *UnresolvedError.
var ErrUnresolved = errors.New("hexclient: trigger outcome unknown")

// UnresolvedError is Trigger giving up on a slot whose ambiguous attempt cannot be
// resolved: the project's run listing could not be read completely, so Hex may or may
// not have created a run, and Trigger never sends the request again. Record the slot
// as unknown, with this error as the reason, rather than as not triggered.
type UnresolvedError struct {
	Slot     string
	Sent     time.Time // the earliest unresolved attempt
	Attempts int
	Err      error // why the listing could not tell (an *IncompleteListingError)
}

// Error says which slot's outcome is unknown and why.
func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("hexclient: trigger %s: the attempt sent at %s had an ambiguous outcome that cannot be resolved, so it is not sent again: %v",
		e.Slot, e.Sent.UTC().Format(time.RFC3339), e.Err)
}

// Is makes errors.Is(err, ErrUnresolved) true.
func (e *UnresolvedError) Is(target error) bool { return target == ErrUnresolved }

// Unwrap returns why the listing could not tell.
func (e *UnresolvedError) Unwrap() error { return e.Err }

// CanceledError is Trigger stopped by its context (shutdown).
type CanceledError struct {
	Slot       string
	Attempts   int
	Unresolved time.Time // as in DeadlineError: reconcile before assuming no run
	Err        error     // the context's error
}

// Error says which slot was interrupted.
func (e *CanceledError) Error() string {
	s := fmt.Sprintf("hexclient: trigger %s: stopped after %d attempts", e.Slot, e.Attempts)
	if !e.Unresolved.IsZero() {
		s += " (an attempt may have created a run)"
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the context's error.
func (e *CanceledError) Unwrap() error { return e.Err }

// newHTTPError builds the *APIError of an error response, tolerating JSON error
// bodies in both forms and plain text. redact removes the token from any text.
func newHTTPError(op string, status int, h http.Header, body []byte, redact func(string) string) *APIError {
	e := &APIError{Op: op, Status: status, Class: Classify(status, nil)}
	var w struct {
		Reason   flexString     `json:"reason"`
		Details  flexString     `json:"details"`
		TraceID  flexString     `json:"traceId"`
		Invalid  []InvalidParam `json:"invalid"`
		NotFound []InvalidParam `json:"notFound"`
	}
	trimmed := strings.TrimSpace(string(body))
	if err := json.Unmarshal(body, &w); err == nil {
		e.Reason, e.Details, e.TraceID = string(w.Reason), string(w.Details), string(w.TraceID)
		e.Invalid, e.NotFound = w.Invalid, w.NotFound
		if e.Reason == "" && (len(e.Invalid) > 0 || len(e.NotFound) > 0) {
			e.Reason = "invalid input parameters"
		}
	} else if trimmed != "" {
		e.Reason = trimmed
	}
	if e.TraceID == "" {
		e.TraceID = h.Get("x-trace-id")
	}
	// Redact before clipping: a token cut in two by the clip would escape redaction.
	e.Reason = clip(redact(e.Reason), 300)
	e.Details = clip(redact(e.Details), 300)
	e.TraceID = clip(redact(e.TraceID), 100)
	for i := range e.Invalid {
		e.Invalid[i].ParamName = clip(redact(e.Invalid[i].ParamName), 100)
	}
	for i := range e.NotFound {
		e.NotFound[i].ParamName = clip(redact(e.NotFound[i].ParamName), 100)
	}
	return e
}

// clip shortens s to at most n bytes on a rune boundary and removes control characters.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
