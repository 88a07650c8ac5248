package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	proj     = "5a8591dd-4039-49df-9202-96385ba3eff8"
	other    = "9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c"
	runID    = "0e0837c3-f5f2-4026-80f9-4a52f653f0e9"
	ciToken  = "ci-token-0123456789"
	opsToken = "ops-token-abcdef"
)

// fakeBackend records requests and answers what next says.
type fakeBackend struct {
	mu       sync.Mutex
	reqs     []Request
	next     func(Request) (Result, error)
	runs     map[string]Run // by run id, of client ci
	canceled []string
}

func (f *fakeBackend) Submit(_ context.Context, r Request) (Result, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	next := f.next
	f.mu.Unlock()
	if next == nil {
		return Result{Status: Triggered, Run: Run{ProjectID: r.Project, RunID: runID, RunURL: "https://app.hex.tech/r/" + runID,
			TraceID: "trace-1", ProjectVersion: "7", Slot: "project:" + r.Project + "@2026-03-01T10:00:00.000Z+manual", Schedule: "project:" + r.Project}}, nil
	}
	return next(r)
}

func (f *fakeBackend) Run(_ context.Context, client, id string) (Run, error) {
	if r, ok := f.runs[id]; ok && client == "ci" {
		return r, nil
	}
	return Run{}, ErrNotFound
}

func (f *fakeBackend) Cancel(ctx context.Context, client, id string) (Run, error) {
	r, err := f.Run(ctx, client, id)
	if err != nil {
		return r, err
	}
	if r.Status != "RUNNING" && r.Status != "PENDING" {
		return r, ErrRunEnded
	}
	f.canceled = append(f.canceled, id)
	return r, nil
}

func (f *fakeBackend) Clients() []Client {
	return []Client{
		{Name: "ci", TokenSHA256: sha256.Sum256([]byte(ciToken)), Projects: []string{proj}, Schedules: []string{"nightly"}},
		{Name: "ops", TokenSHA256: sha256.Sum256([]byte(opsToken)), Schedules: []string{"nightly"}},
	}
}

// counts is an Observer.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) ObserveGatewayRequest(client string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[client+" "+http.StatusText(code)]++
}

type harness struct {
	t    *testing.T
	be   *fakeBackend
	obs  *counts
	url  string
	logs *bytes.Buffer
}

func newHarness(t *testing.T) *harness {
	be := &fakeBackend{runs: map[string]Run{}}
	obs := &counts{}
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	h := New(Config{Backend: be, Observer: obs, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, nil))})
	srv := httptest.NewServer(h) // real HTTP on loopback
	t.Cleanup(srv.Close)
	return &harness{t: t, be: be, obs: obs, url: srv.URL, logs: logs}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// do sends a request and returns the status, headers and decoded JSON body.
func (h *harness) do(method, path, token, body string, hdr ...string) (int, http.Header, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &v); err != nil {
			h.t.Fatalf("%s %s: body %q is not JSON", method, path, data)
		}
	}
	return resp.StatusCode, resp.Header, v
}

// TestRunProjectBothPathFamilies: Hex's body on the plural and the legacy path gives
// Hex's 201 body with a runStatusUrl at the gateway; the request carries the client,
// the decoded body, the key, the wait and one hash for both families.
func TestRunProjectBothPathFamilies(t *testing.T) {
	h := newHarness(t)
	body := `{"inputParams": {"region": "emea", "limit": 10}, "dryRun": "false", "useCachedSqlResults": false,
		"notifications": [{"type": "FAILURE", "slackChannelIds": ["C1"]}]}`
	var hashes []string
	for _, path := range []string{"/api/v1/projects/" + proj + "/runs", "/api/v1/project/" + strings.ToUpper(proj) + "/run"} {
		code, hdr, v := h.do("POST", path, ciToken, body, "Idempotency-Key", "build-7", "X-Hexcron-Wait", "30s")
		if code != 201 {
			t.Fatalf("%s: %d %v", path, code, v)
		}
		want := map[string]any{"projectId": proj, "runId": runID, "runUrl": "https://app.hex.tech/r/" + runID,
			"runStatusUrl": h.url + "/api/v1/projects/" + proj + "/runs/" + runID, "traceId": "trace-1", "projectVersion": 7.0}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("%s: %s = %v, want %v", path, k, v[k], w)
			}
		}
		if len(v) != len(want) {
			t.Errorf("%s: body %v has fields beyond Hex's", path, v)
		}
		if hdr.Get("x-trace-id") != "trace-1" {
			t.Errorf("x-trace-id %q", hdr.Get("x-trace-id"))
		}
		r := h.be.reqs[len(h.be.reqs)-1]
		if r.Client != "ci" || r.Project != proj || r.Key != "build-7" || r.Wait != 30*time.Second ||
			r.Body.InputParams["region"] != "emea" || r.Body.UseCachedSQLResults == nil || *r.Body.UseCachedSQLResults ||
			len(r.Body.Notifications) != 1 || r.Body.Notifications[0].Type != "FAILURE" {
			t.Errorf("%s: request %+v", path, r)
		}
		hashes = append(hashes, r.Hash)
	}
	if hashes[0] != hashes[1] {
		t.Error("one request on both path families has two hashes")
	}
	// What Airflow's and dagster's providers send: updateCache in the body (Airflow),
	// everything as query parameters (dagster): the body is read, the query is not.
	for _, tc := range []struct {
		path, body string
		published  bool
	}{
		{"/api/v1/project/" + proj + "/run", `{"updateCache": false, "inputParams": {"a": 1}}`, false},
		{"/api/v1/project/" + proj + "/run", `{"updateCache": true}`, true},
		{"/api/v1/project/" + proj + "/run?updateCache=False", ``, false},
	} {
		if code, _, v := h.do("POST", tc.path, ciToken, tc.body); code != 201 {
			t.Fatalf("%s %s: %d %v", tc.path, tc.body, code, v)
		}
		r := h.be.reqs[len(h.be.reqs)-1]
		if got := r.Body.UpdatePublishedResults != nil && *r.Body.UpdatePublishedResults; got != tc.published {
			t.Errorf("%s: updatePublishedResults %v, want %v", tc.body, got, tc.published)
		}
	}
	// Spacing and key order do not change the hash; another value does.
	h.do("POST", "/api/v1/projects/"+proj+"/runs", ciToken, `{"notifications":[{"slackChannelIds":["C1"],"type":"FAILURE"}],"useCachedSqlResults":"false","inputParams":{"limit":10,"region":"emea"}}`)
	h.do("POST", "/api/v1/projects/"+proj+"/runs", ciToken, `{"inputParams": {"region": "amer", "limit": 10}}`)
	if n := len(h.be.reqs); h.be.reqs[n-2].Hash != hashes[0] || h.be.reqs[n-1].Hash == hashes[0] {
		t.Error("the hash follows the bytes, not the request")
	}
	if r := h.be.reqs[len(h.be.reqs)-1]; r.Wait != -1 || r.Key != "" {
		t.Errorf("no headers: wait %s key %q", r.Wait, r.Key)
	}
}

// TestRefusals: every refusal has its code, Hex's error body with a reason, and is
// counted by client; the token is never logged.
func TestRefusals(t *testing.T) {
	h := newHarness(t)
	runs := "/api/v1/projects/" + proj + "/runs"
	for _, tc := range []struct {
		name, method, path, token, body string
		hdr                             []string
		code                            int
		client, reason                  string
	}{
		{"no token", "POST", runs, "", "", nil, 401, "anonymous", "missing or unknown token"},
		{"unknown token", "POST", runs, "hxtp_not-a-client-token", "", nil, 401, "anonymous", "missing or unknown token"},
		{"basic auth", "POST", runs, "", "", []string{"Authorization", "Basic Y2k6eA=="}, 401, "anonymous", "missing or unknown token"},
		{"unknown path", "GET", "/api/v1/projects", ciToken, "", nil, 404, "ci", "no endpoint GET /api/v1/projects"},
		{"wrong method", "PUT", runs, ciToken, "", nil, 405, "ci", "the endpoint answers POST"},
		{"project not allowed", "POST", "/api/v1/projects/" + other + "/runs", ciToken, "", nil, 403, "ci", "client ci may not run project " + other},
		{"project of no client", "POST", runs, opsToken, "", nil, 403, "ops", "client ops may not run project"},
		{"schedule not allowed", "POST", "/v1/schedules/weekly/trigger", ciToken, "", nil, 403, "ci", `may not run schedule "weekly"`},
		{"not a uuid", "POST", "/api/v1/projects/revenue/runs", ciToken, "", nil, 400, "ci", "is not a Hex project id"},
		{"not json", "POST", runs, ciToken, "{inputParams: 1}", nil, 400, "ci", "is not valid JSON"},
		{"not an object", "POST", runs, ciToken, "[1]", nil, 400, "ci", "must be a JSON object"},
		{"unknown field", "POST", runs, ciToken, `{"inputParms": {}}`, nil, 400, "ci", `unknown field "inputParms"`},
		{"twice", "POST", runs, ciToken, `{"dryRun": true, "dryRun": false}`, nil, 400, "ci", `has "dryRun" twice`},
		{"bad bool", "POST", runs, ciToken, `{"dryRun": "yes"}`, nil, 400, "ci", "dryRun must be true or false"},
		{"view and inputs", "POST", runs, ciToken, `{"viewId": "v1", "inputParams": {"a": 1}}`, nil, 400, "ci", "viewId cannot be combined with inputParams"},
		{"bad notification", "POST", runs, ciToken, `{"notifications": [{"type": "SOMETIMES"}]}`, nil, 400, "ci", "notifications[0].type must be SUCCESS, FAILURE or ALL"},
		{"update cache both ways", "POST", runs, ciToken, `{"updateCache": true, "updatePublishedResults": false}`, nil, 400, "ci", "updateCache (deprecated: updatePublishedResults) is true while"},
		{"trailing data", "POST", runs, ciToken, `{} {}`, nil, 400, "ci", "data after the JSON object"},
		{"bad wait", "POST", runs, ciToken, "", []string{"X-Hexcron-Wait", "soon"}, 400, "ci", "X-Hexcron-Wait \"soon\" is not a duration"},
		{"negative wait", "POST", runs, ciToken, "", []string{"X-Hexcron-Wait", "-5"}, 400, "ci", "must be 0 or more seconds"},
		{"long key", "POST", runs, ciToken, "", []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "ci", "at most 255"},
		{"too large", "POST", runs, ciToken, `{"inputParams": {"a": "` + strings.Repeat("x", MaxBody) + `"}}`, nil, 413, "ci", "larger than 65536 bytes"},
		{"bad trigger body", "POST", "/v1/schedules/nightly/trigger", ciToken, `{"parameters": {}}`, nil, 400, "ci", `unknown field "parameters"`},
		{"status of unknown run", "GET", runs + "/" + runID, ciToken, "", nil, 404, "ci", "no run " + runID},
		{"run id not a uuid", "GET", runs + "/latest", ciToken, "", nil, 400, "ci", "must be UUIDs"},
		{"cancel unknown run", "DELETE", "/api/v1/project/" + proj + "/run/" + runID, ciToken, "", nil, 404, "ci", "no run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.be.reqs)
			code, hdr, v := h.do(tc.method, tc.path, tc.token, tc.body, tc.hdr...)
			if code != tc.code {
				t.Fatalf("%d %v, want %d", code, v, tc.code)
			}
			reason, _ := v["reason"].(string)
			if !strings.Contains(reason, tc.reason) || v["traceId"] == "" || v["traceId"] != hdr.Get("x-trace-id") {
				t.Errorf("body %v, want reason with %q and a traceId", v, tc.reason)
			}
			if len(h.be.reqs) != before {
				t.Error("a refused request reached the backend")
			}
			if code == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	h.obs.mu.Lock()
	defer h.obs.mu.Unlock()
	for key, want := range map[string]int{"anonymous Unauthorized": 3, "ci Bad Request": 15, "ci Forbidden": 2, "ops Forbidden": 1,
		"ci Request Entity Too Large": 1, "ci Not Found": 3, "ci Method Not Allowed": 1} {
		if h.obs.n[key] != want {
			t.Errorf("%s counted %d times, want %d (all: %v)", key, h.obs.n[key], want, h.obs.n)
		}
	}
	for _, secret := range []string{ciToken, opsToken, "hxtp_not-a-client-token"} {
		if strings.Contains(h.logs.String(), secret) {
			t.Errorf("the log holds a token:\n%s", h.logs.String())
		}
	}
}

// TestOutcomes: each Backend outcome is its HTTP answer; 429 and 503 carry Retry-After
// in whole seconds, rounded up.
func TestOutcomes(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		res   Result
		err   error
		code  int
		retry string
	}{
		{res: Result{Status: NoRoom, RetryAfter: 61500 * time.Millisecond, Reason: "no room"}, code: 429, retry: "62"},
		{res: Result{Status: Quota, RetryAfter: 10 * time.Minute, Reason: "max_per_hour"}, code: 429, retry: "600"},
		{res: Result{Status: NoRoom, RetryAfter: 0, Reason: "no room"}, code: 429, retry: "1"},
		{res: Result{Status: Refused, Reason: "hex 422"}, code: 422},
		{res: Result{Status: KeyReused, Reason: "key reused"}, code: 422},
		{res: Result{Status: Skipped, Reason: "overlap"}, code: 409},
		{res: Result{Status: Unknown, Reason: "unknown"}, code: 502},
		{res: Result{Status: Pending, RetryAfter: 10 * time.Second, Reason: "pending"}, code: 503, retry: "10"},
		{res: Result{Status: Unavailable, Reason: "stopping"}, code: 503, retry: "1"},
		{err: &BadRequestError{Reason: "pick the matrix"}, code: 400},
		{err: ErrNotFound, code: 404},
		{err: io.ErrUnexpectedEOF, code: 500},
	} {
		h.be.next = func(Request) (Result, error) { return tc.res, tc.err }
		code, hdr, v := h.do("POST", "/v1/schedules/nightly/trigger", ciToken, `{"params": {"region": "emea"}}`)
		if code != tc.code || hdr.Get("Retry-After") != tc.retry {
			t.Errorf("%+v %v: %d Retry-After %q, want %d %q", tc.res, tc.err, code, hdr.Get("Retry-After"), tc.code, tc.retry)
		}
		if v["reason"] == nil || v["reason"] == "" {
			t.Errorf("%+v: body %v has no reason", tc.res, v)
		}
	}
	if r := h.be.reqs[0]; r.Schedule != "nightly" || r.Params["region"] != "emea" || r.Project != "" {
		t.Errorf("schedule request %+v", r)
	}
	h.be.next = func(r Request) (Result, error) {
		return Result{Status: Triggered, Run: Run{ProjectID: proj, RunID: runID, RunURL: "u", TraceID: "t", Slot: "nightly@2026-03-01T10:00:00.000Z+manual", Schedule: "nightly"}}, nil
	}
	code, hdr, v := h.do("POST", "/v1/schedules/nightly/trigger", ciToken, "")
	if code != 201 || v["slot"] != "nightly@2026-03-01T10:00:00.000Z+manual" || v["schedule"] != "nightly" || v["runId"] != runID ||
		hdr.Get("X-Hexcron-Slot") == "" || v["projectVersion"] != nil {
		t.Errorf("native trigger: %d %v", code, v)
	}
}

// TestRunStatusAndCancel: the run's status comes from the backend's tracking in Hex's
// shape; a run of another project or client is not found; cancelling answers 204.
func TestRunStatusAndCancel(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)
	h.be.runs[runID] = Run{ProjectID: proj, RunID: runID, RunURL: "https://hex/r", TraceID: "tr", ProjectVersion: "v2", Status: "RUNNING", Started: start}
	for _, path := range []string{"/api/v1/projects/" + proj + "/runs/" + runID, "/api/v1/project/" + proj + "/run/" + runID} {
		code, _, v := h.do("GET", path, ciToken, "")
		if code != 200 || v["status"] != "RUNNING" || v["startTime"] != "2026-03-01T10:00:01Z" || v["endTime"] != nil ||
			v["elapsedTime"] != nil || v["projectVersion"] != "v2" || v["runTrigger"] != "API" || v["traceId"] != "tr" {
			t.Errorf("%s: %d %v", path, code, v)
		}
	}
	if code, _, _ := h.do("GET", "/api/v1/projects/"+proj+"/runs/"+runID, opsToken, ""); code != 404 {
		t.Errorf("another client's run: %d, want 404", code)
	}
	if code, _, _ := h.do("GET", "/api/v1/projects/"+other+"/runs/"+runID, ciToken, ""); code != 404 {
		t.Errorf("the run under another project: %d, want 404", code)
	}
	code, hdr, _ := h.do("DELETE", "/api/v1/projects/"+proj+"/runs/"+runID, ciToken, "")
	if code != 204 || len(h.be.canceled) != 1 || hdr.Get("Content-Type") != "" {
		t.Errorf("cancel: %d %v", code, h.be.canceled)
	}
	h.be.runs[runID] = Run{ProjectID: proj, RunID: runID, Status: "COMPLETED", Started: start, Ended: start.Add(90 * time.Second), Elapsed: 90 * time.Second}
	if code, _, v := h.do("GET", "/api/v1/projects/"+proj+"/runs/"+runID, ciToken, ""); code != 200 || v["elapsedTime"] != 90000.0 || v["endTime"] != "2026-03-01T10:01:31Z" {
		t.Errorf("ended run: %d %v", code, v)
	}
	if code, _, v := h.do("DELETE", "/api/v1/projects/"+proj+"/runs/"+runID, ciToken, ""); code != 422 || !strings.Contains(v["reason"].(string), "already ended (COMPLETED)") {
		t.Errorf("cancel an ended run: %d %v", code, v)
	}
}

// TestInFlightBound: past MaxInFlight requests at once, the gateway answers 503 at
// once instead of queueing without bound.
func TestInFlightBound(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	entered := make(chan struct{}, MaxInFlight)
	h.be.next = func(Request) (Result, error) {
		entered <- struct{}{}
		<-release
		return Result{Status: Unavailable, Reason: "x"}, nil
	}
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: MaxInFlight}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", h.url+"/api/v1/projects/"+proj+"/runs", nil)
			req.Header.Set("Authorization", "Bearer "+ciToken)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	for range MaxInFlight {
		<-entered
	}
	code, hdr, _ := h.do("POST", "/api/v1/projects/"+proj+"/runs", ciToken, "")
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("request %d: %d", MaxInFlight+1, code)
	}
	close(release)
	wg.Wait()
}
