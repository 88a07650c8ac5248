package hexclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true}, // default https://app.hex.tech/api/v1
		{"https://app.hex.tech/api/v1", true},
		{"https://eu.hex.tech/api/v1/", true},
		{"http://127.0.0.1:8080/api/v1", true},
		{"http://127.8.9.10:8080/api/v1", true},
		{"http://[::1]:8080/api/v1", true},
		{"http://localhost:8080/api/v1", true},
		{"http://app.hex.tech/api/v1", false},
		{"http://10.0.0.5/api/v1", false},
		{"http://localhost.evil.com/api/v1", false},
		{"ftp://app.hex.tech", false},
		{"app.hex.tech/api/v1", false},
		{"https://user:pw@app.hex.tech/api/v1", false},
		{"https://app.hex.tech/api/v1?x=1", false},
		{"https://app.hex.tech/api/v1#x", false},
		{"https://app.hex.tech", false}, // the config adds /api/v1 (planner.NormalizeBaseURL); the client wants the API root
		{"https://app.hex.tech/api/v2", false},
	} {
		_, err := New(Config{BaseURL: tc.url, Token: StaticToken("hxtp_x")})
		if (err == nil) != tc.ok {
			t.Errorf("New(%q) err = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error shows the URL's password: %v", err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a token source succeeded")
	}
	if _, err := New(Config{Token: StaticToken("x"), Budget: Budget{Rules: []Rule{{Limit: 2, Per: time.Minute, Reserve: 2}}}}); err == nil {
		t.Error("a rule with no room was accepted")
	}
	if _, err := New(Config{Token: StaticToken("x"), Timeout: time.Minute, Budget: Budget{MaxAttempt: time.Second}}); err == nil {
		t.Error("MaxAttempt below the attempt timeout was accepted")
	}
}

func TestDecodeTolerant(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		check      func(*RunStatus) bool
	}{
		{"projectVersion number", `{"runId":"r","projectVersion":12,"status":"RUNNING"}`, func(r *RunStatus) bool { return r.ProjectVersion == "12" }},
		{"projectVersion string", `{"runId":"r","projectVersion":"v12","status":"RUNNING"}`, func(r *RunStatus) bool { return r.ProjectVersion == "v12" }},
		{"projectVersion null", `{"runId":"r","projectVersion":null}`, func(r *RunStatus) bool { return r.ProjectVersion == "" }},
		{"unknown status kept, not terminal", `{"runId":"r","status":"QUEUED_FOR_KERNEL"}`, func(r *RunStatus) bool {
			return r.Status == "QUEUED_FOR_KERNEL" && !r.Status.Terminal() && !r.Status.Known()
		}},
		{"terminal status", `{"runId":"r","status":"UNABLE_TO_ALLOCATE_KERNEL"}`, func(r *RunStatus) bool { return r.Status.Terminal() }},
		{"times and elapsed", `{"runId":"r","startTime":"2026-03-01T12:00:00.5Z","endTime":"2026-03-01T12:01:00Z","elapsedTime":59500.0}`, func(r *RunStatus) bool {
			return r.StartTime.Equal(time.Date(2026, 3, 1, 12, 0, 0, 5e8, time.UTC)) && r.Elapsed == 59500*time.Millisecond
		}},
		{"null and bad times", `{"runId":"r","startTime":null,"endTime":"yesterday","elapsedTime":null}`, func(r *RunStatus) bool {
			return r.StartTime.IsZero() && r.EndTime.IsZero() && r.Elapsed == 0
		}},
		{"unknown fields ignored", `{"runId":"r","newField":{"a":[1,2]},"status":"COMPLETED"}`, func(r *RunStatus) bool { return r.Status == StatusCompleted }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeRunStatus([]byte(tc.body))
			if err != nil || !tc.check(r) {
				t.Fatalf("decode %s = %+v, %v", tc.body, r, err)
			}
		})
	}
	if _, err := decodeRunStatus([]byte(`{"status":"RUNNING"}`)); err == nil {
		t.Error("a status without runId decoded")
	}
	c, err := decodeRunCreated([]byte(`{"projectId":"p","runId":"r","runUrl":"u","runStatusUrl":"s","traceId":"t","projectVersion":"7"}`))
	if err != nil || c.ProjectVersion != "7" || c.TraceID != "t" {
		t.Fatalf("decodeRunCreated = %+v, %v", c, err)
	}
}

func TestErrorBodies(t *testing.T) {
	none := func(s string) string { return s }
	for _, tc := range []struct {
		name    string
		status  int
		header  http.Header
		body    string
		reason  string
		trace   string
		invalid int
	}{
		{"plain 401", 401, http.Header{}, "Unauthorized\n", "Unauthorized", "", 0},
		{"json error", 404, http.Header{}, `{"reason":"Project not found","details":"id p","traceId":"abc"}`, "Project not found", "abc", 0},
		{"x-trace-id header", 403, http.Header{"X-Trace-Id": {"hdr"}}, `{"reason":"Forbidden"}`, "Forbidden", "hdr", 0},
		{"422 invalid form", 422, http.Header{}, `{"invalid":[{"paramName":"a","paramValue":3,"dataType":"STRING","inputCellType":"TEXT"}],"notFound":[{"paramName":"b"}],"traceId":"t"}`, "invalid input parameters", "t", 1},
		{"empty", 500, http.Header{}, "", "", "", 0},
		{"html", 502, http.Header{}, "<html>Bad gateway</html>", "<html>Bad gateway</html>", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHTTPError("run project", tc.status, tc.header, []byte(tc.body), none)
			if e.Reason != tc.reason || e.TraceID != tc.trace || len(e.Invalid) != tc.invalid || e.Status != tc.status {
				t.Fatalf("got %+v", e)
			}
			var target *APIError
			if !errors.As(fmt.Errorf("wrapped: %w", e), &target) || target.Status != tc.status {
				t.Fatal("errors.As fails through wrapping")
			}
		})
	}
}

func TestReadCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seen []string
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, r.Method+" "+r.URL.RequestURI())
			switch {
			case r.Method == http.MethodDelete:
				w.WriteHeader(http.StatusNoContent)
			case r.URL.Path == "/api/v1/projects" && r.URL.Query().Get("after") == "":
				io.WriteString(w, `{"values":[{"id":"a","title":"A","lastPublishedAt":null}],"pagination":{"after":"CUR","before":null}}`)
			case r.URL.Path == "/api/v1/projects":
				io.WriteString(w, `{"values":[{"id":"b","title":"B","lastPublishedAt":"2026-01-01T00:00:00Z"}],"pagination":{"after":null,"before":"CUR"}}`)
			case strings.HasSuffix(r.URL.Path, "/runs"):
				w.Header().Set("x-trace-id", "hdr-trace")
				io.WriteString(w, `{"runs":[{"runId":"r1","status":"RUNNING","projectVersion":2},{"status":"RUNNING"}],"nextPage":"https://x/next","previousPage":null}`)
			case strings.Contains(r.URL.Path, "/runs/"):
				io.WriteString(w, `{"runId":"r1","status":"SOMETHING_NEW","traceId":"t"}`)
			default:
				io.WriteString(w, `{"id":"p1","title":"P","type":"PROJECT","lastPublishedAt":"2026-01-01T00:00:00Z"}`)
			}
		})
		c, _, _ := testClient(t, h, StaticToken("hxtp_ok"), nil)
		ctx := context.Background()
		if err := c.CancelRun(ctx, "p1", "r1"); err != nil {
			t.Fatal(err)
		}
		p1, err := c.ListProjects(ctx, ProjectsQuery{Limit: 1})
		if err != nil || len(p1.Values) != 1 || p1.Values[0].Published() || p1.After != "CUR" {
			t.Fatalf("page 1 %+v %v", p1, err)
		}
		p2, err := c.ListProjects(ctx, ProjectsQuery{After: p1.After})
		if err != nil || p2.After != "" || !p2.Values[0].Published() {
			t.Fatalf("page 2 %+v %v", p2, err)
		}
		runs, err := c.GetProjectRuns(ctx, "p1", RunsQuery{Limit: 500, Offset: 25, StatusFilter: StatusRunning, RunTriggerFilter: "API"})
		if err != nil || len(runs.Runs) != 1 || runs.TraceID != "hdr-trace" || runs.NextPage == "" || runs.Runs[0].ProjectVersion != "2" {
			t.Fatalf("runs %+v %v", runs, err)
		}
		st, err := c.GetRunStatus(ctx, "p1", "r1")
		if err != nil || st.Status.Terminal() || st.Status != "SOMETHING_NEW" {
			t.Fatalf("status %+v %v", st, err)
		}
		p, err := c.GetProject(ctx, "p1")
		if err != nil || p.ID != "p1" || !p.Published() {
			t.Fatalf("project %+v %v", p, err)
		}
		want := []string{
			"DELETE /api/v1/projects/p1/runs/r1",
			"GET /api/v1/projects?limit=1",
			"GET /api/v1/projects?after=CUR",
			"GET /api/v1/projects/p1/runs?limit=100&offset=25&runTriggerFilter=API&statusFilter=RUNNING",
			"GET /api/v1/projects/p1/runs/r1",
			"GET /api/v1/projects/p1",
		}
		if strings.Join(seen, "\n") != strings.Join(want, "\n") {
			t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestRedirectNotFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v1/projects/p" {
				t.Errorf("redirect followed to %s", r.URL.Path)
			}
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		})
		c, _, _ := testClient(t, h, StaticToken("hxtp_ok"), nil)
		_, err := c.GetProject(context.Background(), "p")
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusFound || ae.Class != ClassPermanent {
			t.Fatalf("err %v", err)
		}
	})
}

func TestFileTokenSourceOrder(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o700)
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("  hxtp_from_file\n"), 0o600)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	src := NewFileTokenSource(getenv, file)
	check := func(want string) {
		t.Helper()
		got, err := src.Token()
		if err != nil || got != want {
			t.Fatalf("Token() = %q, %v; want %q", got, err, want)
		}
	}
	check("hxtp_from_file")
	env["HEX_API_TOKEN"] = " hxtp_from_env "
	check("hxtp_from_env")
	env["CREDENTIALS_DIRECTORY"] = creds // credential file absent: fall through
	check("hxtp_from_env")
	os.WriteFile(filepath.Join(creds, "hex-token"), []byte("hxtp_from_cred\n"), 0o600)
	check("hxtp_from_cred")
	os.WriteFile(filepath.Join(creds, "hex-token"), []byte("hxtp_rotated\n"), 0o600)
	check("hxtp_rotated") // re-read every time
	delete(env, "CREDENTIALS_DIRECTORY")
	delete(env, "HEX_API_TOKEN")
	os.WriteFile(file, []byte("\n"), 0o600)
	if _, err := src.Token(); !errors.Is(err, ErrNoToken) {
		t.Fatalf("empty token file: %v", err)
	}
	if _, err := NewFileTokenSource(getenv, filepath.Join(dir, "missing")).Token(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing token file: %v", err)
	}
	if _, err := NewFileTokenSource(nil, "").Token(); !errors.Is(err, ErrNoToken) {
		t.Fatalf("no source: %v", err)
	}
}

// TestDecodeProject: GetProject in the documented shape, schedules included, and
// tolerant of a schedules field that is not a list.
func TestDecodeProject(t *testing.T) {
	p, err := decodeProject([]byte(`{"id":"p1","title":"Daily","type":"PROJECT","lastPublishedAt":"2026-03-01T10:00:00Z",
		"archivedAt":null,"trashedAt":null,"schedules":[
		{"cadence":"HOURLY","enabled":true,"hourly":{"timezone":"UTC","minute":5}},
		{"cadence":"CUSTOM","enabled":false,"custom":{"timezone":"Europe/Berlin","cron":"0 6 * * *"}}]}`))
	if err != nil || p.ID != "p1" || !p.Published() || len(p.Schedules) != 2 ||
		p.Schedules[0] != (HexSchedule{Cadence: "HOURLY", Enabled: true, Timezone: "UTC"}) ||
		p.Schedules[1] != (HexSchedule{Cadence: "CUSTOM", Cron: "0 6 * * *", Timezone: "Europe/Berlin"}) ||
		p.Schedules[1].String() != "CUSTOM 0 6 * * * (Europe/Berlin)" {
		t.Fatalf("%+v, %v", p, err)
	}
	p, err = decodeProject([]byte(`{"id":"p2","lastPublishedAt":null,"schedules":"none","trashedAt":"2026-03-02T00:00:00Z"}`))
	if err != nil || p.Published() || p.Schedules != nil || p.TrashedAt.IsZero() {
		t.Fatalf("%+v, %v", p, err)
	}
}
