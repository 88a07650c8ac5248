package hexclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const echoToken = "hxtp_Ech0SecretTokenValue42"

// leaks reports the first piece of secret (six characters or more, any case; twelve
// hex digits or more of its hex encoding) found in text, or "".
func leaks(text, secret string) string {
	low := strings.ToLower(text)
	for _, form := range []struct {
		s string
		k int
	}{{strings.ToLower(secret), 6}, {hex.EncodeToString([]byte(secret)), 12}} {
		for i := 0; i+form.k <= len(form.s); i++ {
			if p := form.s[i : i+form.k]; strings.Contains(low, p) {
				return p
			}
		}
	}
	if strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(secret))) {
		return "base64"
	}
	return ""
}

func TestRedactorForms(t *testing.T) {
	r := NewRedactor(echoToken, "db-Passw0rd!")
	hexTok := hex.EncodeToString([]byte(echoToken))
	for _, in := range []string{
		echoToken,
		"url=https://x/?leak=" + echoToken + "&y=1",
		"tr-" + strings.ToLower(echoToken),
		strings.ToUpper(echoToken),
		"truncated " + echoToken[:9] + "…",
		"the middle: " + echoToken[7:16],
		"hex " + hexTok,
		"HEX " + strings.ToUpper(hexTok[:30]),
		"b64 " + base64.StdEncoding.EncodeToString([]byte(echoToken)),
		"twice " + echoToken + echoToken + " and " + echoToken,
		"password db-Passw0rd! " + url.QueryEscape("db-Passw0rd!"),
	} {
		out := r.String(in)
		if p := leaks(out, echoToken); p != "" {
			t.Errorf("%q -> %q still holds %q", in, out, p)
		}
		if strings.Contains(out, "Passw0rd") || strings.Contains(out, "Passw0rd%21") {
			t.Errorf("%q -> %q still holds the password", in, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%q -> %q: nothing redacted", in, out)
		}
	}
	for _, in := range []string{"", "run 4f6a-11ee", "https://app.hex.tech/app/p/latest?runId=r1", "hxtp_ alone"} {
		if out := r.String(in); out != in {
			t.Errorf("innocent %q -> %q", in, out)
		}
	}
	// JSON: an escaped echo is found after decoding; an untouched body keeps its bytes.
	body := []byte(`{"runUrl":"https://x/\u0068xtp_Ech0SecretTokenValue42","n":12345678901234567890,"a":[1.5,"` + echoToken[:10] + `"]}`)
	out := r.Body(body)
	if p := leaks(string(out), echoToken); p != "" || !bytes.Contains(out, []byte("12345678901234567890")) {
		t.Errorf("JSON body -> %s (leak %q)", out, p)
	}
	clean := []byte(`{"runId":"r1",  "n":1e3}`)
	if out := r.Body(clean); !bytes.Equal(out, clean) {
		t.Errorf("a body with nothing to redact changed: %s", out)
	}
	// Errors keep their identity.
	base := errors.New("malformed HTTP response \"" + echoToken + "\"")
	err := r.Error(base)
	if leaks(err.Error(), echoToken) != "" || !errors.Is(err, base) {
		t.Errorf("Error: %v (is base: %v)", err, errors.Is(err, base))
	}
	// Bounded: the oldest secrets are forgotten.
	for i := range maxSecrets + 5 {
		r.Add(fmt.Sprintf("rotated-token-%03d", i))
	}
	if len(r.secrets) != maxSecrets {
		t.Errorf("%d secrets kept, want %d", len(r.secrets), maxSecrets)
	}
}

// echoServer is a hostile Hex: every answer echoes the caller's token, whole, lower-
// cased, truncated, hex-encoded and JSON-escaped, in the body and in x-trace-id.
type echoServer struct {
	mu    sync.Mutex
	posts int
}

func (s *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	w.Header().Set("x-trace-id", "tr-"+strings.ToLower(tok))
	w.Header().Set("Content-Type", "application/json")
	esc := `\u` + fmt.Sprintf("%04x", tok[0]) + tok[1:]
	switch {
	case r.Method == http.MethodPost:
		s.mu.Lock()
		s.posts++
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"projectId":"p","runId":"run-1","runUrl":"https://app.hex.tech/app/p?leak=%s","runStatusUrl":"https://x/%s","traceId":"tr-%s"}`,
			tok, esc, tok[:12])
	case strings.HasSuffix(r.URL.Path, "/runs/run-1"):
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"reason":"upstream said %s","details":"%s","traceId":"%s"}`, hex.EncodeToString([]byte(tok)), strings.ToUpper(tok), esc)
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "bad request for %s (truncated %s...)", tok, tok[:10])
	}
}

// TestEchoedTokenRedactedOnArrival: over real HTTP, a server echoing the token in a
// 201 (run URL, status URL, trace id, x-trace-id) and in error bodies: what Trigger
// and the reads return, and every log line, hold no piece of it.
func TestEchoedTokenRedactedOnArrival(t *testing.T) {
	srv := httptest.NewServer(&echoServer{})
	defer srv.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Config{BaseURL: srv.URL + "/api/v1", Token: StaticToken(echoToken), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Trigger(ctx, TriggerRequest{Slot: "s@2026-11-30T11:30:00Z", ProjectID: "p", Deadline: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{res.RunID, res.RunURL, res.RunStatusURL, res.TraceID, fmt.Sprintf("%+v", res)}
	if res.RunID != "run-1" || !strings.Contains(res.RunURL, "leak="+Redacted) {
		t.Errorf("triggered: %+v", res)
	}
	_, err1 := c.GetRunStatus(ctx, "p", "run-1")
	_, err2 := c.ListProjects(ctx, ProjectsQuery{Limit: 1})
	for _, e := range []error{err1, err2} {
		if e == nil {
			t.Fatal("the hostile reads succeeded")
		}
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e))
	}
	mu.Lock()
	texts = append(texts, logs.String())
	mu.Unlock()
	for _, s := range texts {
		if p := leaks(s, echoToken); p != "" {
			t.Errorf("%q holds %q", s, p)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
