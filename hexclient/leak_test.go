package hexclient

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

const canary = "hxtp_CANARY_9f8e7d6c5b4a"

// TestTokenNeverLeaks drives every error path with a recognisable token, against a
// hostile server that echoes the Authorization header into every error body and
// header, and scans every returned error and every log line for it.
func TestTokenNeverLeaks(t *testing.T) {
	echo := `{"reason":"bad {{AUTH}}","details":"{{AUTH}}","traceId":"{{AUTH}}"}`
	hdr := map[string]string{"x-trace-id": "{{AUTH}}", "Retry-After": "{{AUTH}}"}
	cases := []struct {
		name     string
		script   []step
		token    string // the server's valid token ("" any)
		deadline time.Duration
		cancel   bool
	}{
		{"422", []step{{status: 422, body: echo, header: hdr}}, "", time.Hour, false},
		{"422 invalid", []step{{status: 422, body: `{"invalid":[{"paramName":"{{AUTH}}"}],"traceId":"x"}`}}, "", time.Hour, false},
		{"400 plain", []step{{status: 400, body: "{{AUTH}}"}}, "", time.Hour, false},
		{"404", []step{{status: 404, body: echo}}, "", time.Hour, false},
		{"429 then ok", []step{{status: 429, body: echo, header: hdr}}, "", time.Hour, false},
		{"429 deadline", []step{{status: 429, body: echo, header: map[string]string{"Retry-After": "3000"}}}, "", time.Minute, false},
		{"503 then ok", []step{{status: 503, body: echo, header: hdr}}, "", time.Hour, false},
		{"500 before create", []step{{status: 500, body: echo, header: hdr}}, "", time.Hour, false},
		{"500 after create", []step{{status: 500, create: true, body: echo}}, "", time.Hour, false},
		{"timeout", []step{{hang: true}}, "", time.Hour, false},
		{"dropped", []step{{drop: true}}, "", time.Hour, false},
		{"409", []step{{status: 409, body: echo}, {status: 409, body: echo}}, "", 2 * time.Minute, false},
		{"401 until deadline", nil, "hxtp_other", 5 * time.Minute, false},
		{"canceled", []step{{hang: true}}, "", time.Hour, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeHex{t: t, script: tc.script, token: tc.token, echo: true, listFails: 1}
				c, logs, _ := testClient(t, f, StaticToken(canary), nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tc.cancel {
					go func() { time.Sleep(time.Second); cancel() }()
				}
				req := trig("s")
				req.Deadline = time.Now().Add(tc.deadline)
				_, err := c.Trigger(ctx, req)
				var texts []string
				if err != nil {
					texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
				}
				// Reads on the same hostile server.
				_, e1 := c.GetRunStatus(context.Background(), testProject, "r")
				_, e2 := c.ListProjects(context.Background(), ProjectsQuery{Limit: 1})
				for _, e := range []error{e1, e2} {
					if e != nil {
						texts = append(texts, e.Error(), fmt.Sprintf("%+v", e))
					}
				}
				texts = append(texts, logs.String())
				for _, s := range texts {
					if strings.Contains(s, canary) {
						t.Fatalf("token leaked:\n%s", s)
					}
				}
				if logs.String() == "" {
					t.Fatal("no log lines: the test does not exercise logging")
				}
			})
		})
	}
}

func TestTokenSourceErrorsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	os.WriteFile(file, []byte(canary), 0o000)
	asDir := filepath.Join(dir, "creds")
	os.MkdirAll(filepath.Join(asDir, "hex-token"), 0o700) // a directory where a file should be
	env := map[string]string{"CREDENTIALS_DIRECTORY": asDir}
	for _, src := range []TokenSource{
		NewFileTokenSource(func(k string) string { return env[k] }, file),
		NewFileTokenSource(func(string) string { return "" }, filepath.Join(dir, "nope")),
		NewFileTokenSource(func(string) string { return "" }, dir),
	} {
		_, err := src.Token()
		if err == nil {
			continue // e.g. running as root: the 0000 file is readable
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatalf("token in error: %v", err)
		}
	}
	// A Trigger whose token source fails pauses without spending budget.
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t}
		c, logs, _ := testClient(t, f, NewFileTokenSource(func(string) string { return "" }, filepath.Join(dir, "nope")), nil)
		req := trig("s")
		req.Deadline = time.Now().Add(time.Minute)
		_, err := c.Trigger(context.Background(), req)
		if err == nil || strings.Contains(err.Error()+logs.String(), canary) {
			t.Fatalf("err %v", err)
		}
		if posts, _, _ := f.snapshot(); len(posts) != 0 {
			t.Fatalf("%d POSTs without a token", len(posts))
		}
		if !strings.Contains(logs.String(), "level=ERROR") {
			t.Fatal("no ERROR for a missing token")
		}
	})
	_ = http.StatusOK
}
