package hexclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const injected = "hxtp_X\nX-Injected: 1"

// TestTokenCharacters: a token with a character that cannot go into a header is refused
// when it is read, naming its source (credential, environment, file) and never the
// token; surrounding whitespace is still trimmed.
func TestTokenCharacters(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	os.MkdirAll(creds, 0o700)
	os.WriteFile(filepath.Join(creds, "hex-token"), []byte(injected+"\n"), 0o600)
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("hxtp_with space"), 0o600)
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("  hxtp_fine123\n"), 0o600)
	cases := []struct {
		name string
		env  map[string]string
		file string
		want string
	}{
		{"credential", map[string]string{"CREDENTIALS_DIRECTORY": creds}, "", "read token credential " + filepath.Join(creds, "hex-token") + ": the token has a control character (0x0a) at byte 6"},
		{"env", map[string]string{"HEX_API_TOKEN": injected}, "", "read token from $HEX_API_TOKEN: the token has a control character (0x0a) at byte 6"},
		{"file", nil, file, "read token file " + file + ": the token has a space at byte 9"},
		{"non-ascii", map[string]string{"HEX_API_TOKEN": "hxtp_é"}, "", "read token from $HEX_API_TOKEN: the token has a non-ASCII byte at byte 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewFileTokenSource(func(k string) string { return c.env[k] }, c.file).Token()
			if !errors.Is(err, ErrBadToken) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrBadToken starting %q", err, c.want)
			}
			if strings.Contains(err.Error(), "Injected") || strings.Contains(err.Error(), "with space") {
				t.Errorf("the error repeats the token: %v", err)
			}
		})
	}
	if tok, err := NewFileTokenSource(func(string) string { return "" }, good).Token(); err != nil || tok != "hxtp_fine123" {
		t.Errorf("good token: %q %v", tok, err)
	}
	if _, err := StaticToken(injected).Token(); !errors.Is(err, ErrBadToken) {
		t.Errorf("StaticToken with a newline: %v", err)
	}
}

type tokenFunc func() (string, error)

func (f tokenFunc) Token() (string, error) { return f() }

// TestBadTokenNeverSent: whatever the token source, a token with a control character
// never reaches a request: no byte is sent and no attempt is recorded.
func TestBadTokenNeverSent(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	ledger := NewMemLedger()
	c, err := New(Config{BaseURL: srv.URL + "/api/v1", Ledger: ledger, AuthBackoff: Backoff{Base: 100 * time.Millisecond, Cap: 200 * time.Millisecond},
		Token: tokenFunc(func() (string, error) { return injected, nil })})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Trigger(context.Background(), TriggerRequest{Slot: "s", ProjectID: "p", Deadline: time.Now().Add(time.Second)})
	if !errors.Is(err, ErrDeadline) {
		t.Fatalf("Trigger: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
	if n := len(ledger.Attempts()); n != 0 {
		t.Errorf("%d attempts recorded", n)
	}
}

// TestNotSentIsNotAnAttempt: a RunProject that fails before any byte is written (the
// connection is refused) is voided in the ledger: it does not count against the
// budget, and the trigger ends without an unresolved attempt.
func TestNotSentIsNotAnAttempt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	ledger := NewMemLedger()
	c, err := New(Config{BaseURL: "http://" + addr + "/api/v1", Token: StaticToken("hxtp_ok"), Ledger: ledger,
		ServerBackoff: Backoff{Base: 50 * time.Millisecond, Cap: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Trigger(context.Background(), TriggerRequest{Slot: "s", ProjectID: "p", Deadline: time.Now().Add(time.Second)})
	var dl *DeadlineError
	if !errors.As(err, &dl) {
		t.Fatalf("Trigger: %v", err)
	}
	if !dl.Unresolved.IsZero() || dl.Attempts != 0 {
		t.Errorf("deadline error %+v: nothing was sent, so no attempt and nothing unresolved", dl)
	}
	var api *APIError
	if !errors.As(dl.Last, &api) || !api.NotSent || api.Class != ClassUnreachable {
		t.Errorf("last error %#v, want NotSent and unreachable", dl.Last)
	}
	if n := len(ledger.Attempts()); n != 0 {
		t.Errorf("%d attempts still counted in the ledger", n)
	}
}

// FuzzValidToken: a token ValidToken accepts always makes a well-formed request with
// a single Authorization header; a refused token is never repeated in the error; and
// redaction removes it from any text around it.
func FuzzValidToken(f *testing.F) {
	for _, s := range []string{"hxtp_abc123", injected, "hxtp_tab\there", "hxtw_ünïcode", "hxtp_\x00nul", "a", "hxtp_x\r\nHost: evil", "hxtp_" + strings.Repeat("A", 200)} {
		f.Add(s, "prefix ", " suffix")
	}
	f.Fuzz(func(t *testing.T, tok, before, after string) {
		err := ValidToken(tok)
		if err != nil {
			if len(tok) >= 4 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error repeats the token: %v", err)
			}
			return
		}
		req, rerr := http.NewRequest(http.MethodPost, "http://127.0.0.1/api/v1/projects/p/runs", nil)
		if rerr != nil {
			t.Fatal(rerr)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		var b bytes.Buffer
		if werr := req.Write(&b); werr != nil {
			t.Fatalf("accepted token %q cannot be written: %v", tok, werr)
		}
		parsed, perr := http.ReadRequest(bufio.NewReader(&b))
		if perr != nil {
			t.Fatalf("accepted token %q makes an unreadable request: %v", tok, perr)
		}
		if got := parsed.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+tok || len(parsed.Header) != 3 {
			t.Fatalf("accepted token %q changed the headers: %v", tok, parsed.Header)
		}
		if len(tok) >= 6 {
			out := NewRedactor(tok).String(before + tok + after + strings.ToUpper(tok))
			if strings.Contains(strings.ToLower(out), strings.ToLower(tok)) {
				t.Fatalf("redaction left the token in %q", out)
			}
		}
	})
}
