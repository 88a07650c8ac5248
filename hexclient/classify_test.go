package hexclient

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
)

// TestClassify walks the outcome table (docs/trigger-protocol.md, "What each answer leads to") row by row.
func TestClassify(t *testing.T) {
	reset := &url.Error{Op: "Post", URL: "https://app.hex.tech/api/v1/projects/p/runs",
		Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}
	timeout := &url.Error{Op: "Post", URL: "u", Err: context.DeadlineExceeded}
	netTimeout := &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}
	refused := &url.Error{Op: "Post", URL: "u", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	dns := &url.Error{Op: "Post", URL: "u", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "app.hex.tech"}}}
	tlsErr := &url.Error{Op: "Post", URL: "u", Err: x509.UnknownAuthorityError{}}
	for _, tc := range []struct {
		row    string
		status int
		err    error
		want   Class
	}{
		{"201 run created", 201, nil, ClassOK},
		{"200 read ok", 200, nil, ClassOK},
		{"204 cancel ok", 204, nil, ClassOK},
		{"429 over a cap", 429, nil, ClassRateLimited},
		{"503 kernel cap", 503, nil, ClassKernelCap},
		{"500 ambiguous", 500, nil, ClassAmbiguous},
		{"502 ambiguous", 502, nil, ClassAmbiguous},
		{"504 ambiguous", 504, nil, ClassAmbiguous},
		{"599 ambiguous", 599, nil, ClassAmbiguous},
		{"attempt timeout", 0, timeout, ClassAmbiguous},
		{"net timeout", 0, netTimeout, ClassAmbiguous},
		{"connection reset", 0, reset, ClassAmbiguous},
		{"unexpected EOF", 0, fmt.Errorf("post: %w", io.ErrUnexpectedEOF), ClassAmbiguous},
		{"EOF", 0, io.EOF, ClassAmbiguous},
		{"401 token", 401, nil, ClassAuth},
		{"403 project or scope", 403, nil, ClassForbidden},
		{"409 already running", 409, nil, ClassAmbiguous},
		{"422 unpublished", 422, nil, ClassPermanent},
		{"400 bad params", 400, nil, ClassPermanent},
		{"404 no project", 404, nil, ClassPermanent},
		{"410 other 4xx", 410, nil, ClassPermanent},
		{"301 wrong base url", 301, nil, ClassPermanent},
		{"dial refused: never sent", 0, refused, ClassUnreachable},
		{"dns: never sent", 0, dns, ClassUnreachable},
		{"tls: never sent", 0, tlsErr, ClassUnreachable},
		{"caller canceled", 0, fmt.Errorf("post: %w", context.Canceled), ClassCanceled},
	} {
		t.Run(tc.row, func(t *testing.T) {
			if got := Classify(tc.status, tc.err); got != tc.want {
				t.Fatalf("Classify(%d, %v) = %v, want %v", tc.status, tc.err, got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassNames(t *testing.T) {
	seen := map[string]bool{}
	for c := ClassNone; c <= ClassForbidden; c++ {
		if s := c.String(); s == "unknown" || seen[s] {
			t.Fatalf("class %d has name %q", c, s)
		}
		seen[c.String()] = true
	}
	if Class(99).String() != "unknown" {
		t.Fatal("out-of-range class")
	}
	var e error = &APIError{Op: "x", Class: ClassAmbiguous, Err: io.EOF}
	if !errors.Is(e, io.EOF) {
		t.Fatal("APIError does not unwrap its transport error")
	}
}
