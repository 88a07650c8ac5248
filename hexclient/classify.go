package hexclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
)

// Class is what an HTTP outcome means for the caller. One function, Classify, maps
// every outcome to a Class.
type Class int

// The outcome classes of docs/trigger-protocol.md's table ("What each answer leads to").
const (
	// ClassNone is the zero Class; Classify never returns it.
	ClassNone Class = iota
	// ClassOK is a 2xx: for RunProject a 201, the run was created.
	ClassOK
	// ClassRateLimited is a 429: over one of Hex's caps; nothing was done.
	ClassRateLimited
	// ClassKernelCap is a 503: Hex's running-kernel cap; no run was created.
	ClassKernelCap
	// ClassAmbiguous is another 5xx, a timeout, a connection reset or a 409: a run
	// may or may not have been created; only GetProjectRuns can tell.
	ClassAmbiguous
	// ClassAuth is a 401: the token is missing, expired, revoked, or the base URL is
	// of the wrong region or tenant. It is about the token: everything pauses.
	ClassAuth
	// ClassPermanent is a 400, 404, 422 or any other 4xx (and a 3xx, which means a
	// wrong base URL): retrying cannot help.
	ClassPermanent
	// ClassUnreachable is a failure before the request could leave (dial, DNS, TLS
	// handshake): nothing reached Hex, so a retry is safe.
	ClassUnreachable
	// ClassCanceled is the caller's own context ending: not an answer from Hex.
	ClassCanceled
	// ClassForbidden is a 403: the token's user may not do this to this project (not
	// shared, view only) or the token lacks a scope ("Run projects"). It is about one
	// project or one scope, not the token as a whole: only that project is held.
	ClassForbidden
)

var classNames = [...]string{"none", "ok", "rate_limited", "kernel_cap", "ambiguous", "auth", "permanent", "unreachable", "canceled", "forbidden"}

// String returns the class's stable lower-case name (used in logs and metrics).
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "unknown"
	}
	return classNames[c]
}

// Classify maps one HTTP outcome to its Class: status is the response's status code
// (0 when no response arrived) and err the transport error (nil when a response
// arrived). A canceled or expired caller context must be detected by the caller first
// (Classify sees an attempt timeout and a caller deadline alike: both are ambiguous).
func Classify(status int, err error) Class {
	if status == 0 {
		if err == nil {
			return ClassAmbiguous
		}
		if errors.Is(err, context.Canceled) {
			return ClassCanceled
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return ClassAmbiguous
		}
		var dns *net.DNSError
		if errors.As(err, &dns) {
			return ClassUnreachable
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return ClassUnreachable
		}
		var rh tls.RecordHeaderError
		var ua x509.UnknownAuthorityError
		var hn x509.HostnameError
		var ci x509.CertificateInvalidError
		var ve *tls.CertificateVerificationError
		if errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &ve) {
			return ClassUnreachable
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ClassAmbiguous
		}
		// Connection reset, EOF, broken pipe, anything else after the request may
		// have been written: ambiguous.
		return ClassAmbiguous
	}
	switch {
	case status >= 200 && status < 300:
		return ClassOK
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusServiceUnavailable:
		return ClassKernelCap
	case status == http.StatusUnauthorized:
		return ClassAuth
	case status == http.StatusForbidden:
		return ClassForbidden
	case status == http.StatusConflict || status == http.StatusRequestTimeout:
		return ClassAmbiguous
	case status >= 500:
		return ClassAmbiguous
	default:
		return ClassPermanent
	}
}
