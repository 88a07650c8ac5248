package hexclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

// What Hex documents today (shared/reference/hex-api.md) beyond its 2022 document,
// added to that document so that the client's requests can be checked against it.
// additionalProperties stays false: any other field fails.
const (
	notificationsSchema = `{"type": "array", "items": {"type": "object", "additionalProperties": false,
		"required": ["type"], "properties": {"type": {"type": "string", "enum": ["SUCCESS", "FAILURE", "ALL"]},
		"includeSuccessScreenshot": {"type": "boolean"}, "slackChannelIds": {"type": "array", "items": {"type": "string"}},
		"userIds": {"type": "array", "items": {"type": "string"}}, "groupIds": {"type": "array", "items": {"type": "string"}}}}}`
	runTriggerFilterParam = `{"in": "query", "name": "runTriggerFilter", "required": false,
		"schema": {"type": "string", "enum": ["API", "SCHEDULED", "APP_REFRESH", "ALL"]}}`
	// ListProjects and GetProject, as hex-api.md describes them.
	projectsPaths = `{
		"/projects": {"get": {"operationId": "ListProjects", "parameters": [
			{"in": "query", "name": "limit", "schema": {"$ref": "#/components/schemas/PageSize"}},
			{"in": "query", "name": "after", "schema": {"type": "string", "minLength": 1}},
			{"in": "query", "name": "before", "schema": {"type": "string", "minLength": 1}}],
			"responses": {"200": {"description": ""}}}},
		"/projects/{projectId}": {"get": {"operationId": "GetProject", "parameters": [
			{"in": "path", "name": "projectId", "required": true, "schema": {"$ref": "#/components/schemas/ProjectId"}}],
			"responses": {"200": {"description": ""}}}}}`
)

func loadRequestSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("hexsim/testdata/hex-openapi-2022.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := doc.Components.Schemas["RunProjectRequestBody"].Value
	for name, src := range map[string]string{
		"notifications":          notificationsSchema,
		"updatePublishedResults": `{"type": "boolean"}`,
		"useCachedSqlResults":    `{"type": "boolean"}`,
		"viewId":                 `{"type": "string", "minLength": 1}`,
	} {
		var s openapi3.Schema
		if err := json.Unmarshal([]byte(src), &s); err != nil {
			t.Fatal(err)
		}
		body.Properties[name] = &openapi3.SchemaRef{Value: &s}
	}
	var p openapi3.Parameter
	if err := json.Unmarshal([]byte(runTriggerFilterParam), &p); err != nil {
		t.Fatal(err)
	}
	runs := doc.Paths.Value("/project/{projectId}/runs").Get
	runs.Parameters = append(runs.Parameters, &openapi3.ParameterRef{Value: &p})
	var extra map[string]*openapi3.PathItem
	if err := json.Unmarshal([]byte(projectsPaths), &extra); err != nil {
		t.Fatal(err)
	}
	for path, item := range extra {
		doc.Paths.Set(path, item)
	}
	if err := loader.ResolveRefsIn(doc, nil); err != nil {
		t.Fatal(err)
	}
	// Hex's document gives integer and boolean defaults as strings ('0', 'false').
	if err := doc.Validate(context.Background(), openapi3.DisableSchemaDefaultsValidation()); err != nil {
		t.Fatalf("the document: %v", err)
	}
	return doc
}

// sentRequest is one request as the client put it on the wire.
type sentRequest struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// wireTap records every request the client sends.
type wireTap struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent []sentRequest
}

func (w *wireTap) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	w.mu.Lock()
	w.sent = append(w.sent, sentRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	w.mu.Unlock()
	return w.next.RoundTrip(r)
}

// The 2022 operation for each path the client uses (current plural paths map to the
// legacy singular operations).
var operations = []struct {
	method string
	re     *regexp.Regexp
	path   string
	params []string
}{
	{"POST", regexp.MustCompile(`^/api/v1/projects/([^/]+)/runs$`), "/project/{projectId}/run", []string{"projectId"}},
	{"GET", regexp.MustCompile(`^/api/v1/projects/([^/]+)/runs/([^/]+)$`), "/project/{projectId}/run/{runId}", []string{"projectId", "runId"}},
	{"DELETE", regexp.MustCompile(`^/api/v1/projects/([^/]+)/runs/([^/]+)$`), "/project/{projectId}/run/{runId}", []string{"projectId", "runId"}},
	{"GET", regexp.MustCompile(`^/api/v1/projects/([^/]+)/runs$`), "/project/{projectId}/runs", []string{"projectId"}},
	{"GET", regexp.MustCompile(`^/api/v1/projects$`), "/projects", nil},
	{"GET", regexp.MustCompile(`^/api/v1/projects/([^/]+)$`), "/projects/{projectId}", []string{"projectId"}},
}

// validateSent checks one request against the document.
func validateSent(doc *openapi3.T, s sentRequest) (string, error) {
	for _, op := range operations {
		m := op.re.FindStringSubmatch(s.path)
		if op.method != s.method || m == nil {
			continue
		}
		item := doc.Paths.Value(op.path)
		route := &routers.Route{Spec: doc, Path: op.path, PathItem: item, Method: s.method, Operation: item.GetOperation(s.method)}
		params := map[string]string{}
		for i, name := range op.params {
			params[name] = m[i+1]
		}
		target := "http://hex" + s.path
		if s.query != "" {
			target += "?" + s.query
		}
		var rd io.Reader
		if s.body != nil {
			rd = bytes.NewReader(s.body)
		}
		req, err := http.NewRequest(s.method, target, rd)
		if err != nil {
			return "", err
		}
		req.Header = s.header.Clone()
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{MultiError: true, SkipSettingDefaults: true,
				AuthenticationFunc: func(_ context.Context, a *openapi3filter.AuthenticationInput) error {
					if a.SecuritySchemeName != "bearerAuth" || !strings.HasPrefix(a.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer hxtp_") {
						return fmt.Errorf("no bearer token")
					}
					return nil
				}}}
		return route.Operation.OperationID, openapi3filter.ValidateRequest(context.Background(), in)
	}
	return "", fmt.Errorf("no operation for %s %s", s.method, s.path)
}

// runRequests is every RunProject body shape the scheduler can produce (params or a
// view, each boolean unset/true/false, notifications of each type and recipient kind)
// plus dryRun.
func runRequests() []hexclient.RunRequest {
	t, f := true, false
	bools := []*bool{nil, &t, &f}
	notes := [][]hexclient.Notification{
		nil,
		{{Type: "ALL", SlackChannelIDs: []string{"C024BE91L"}}},
		{{Type: "SUCCESS", IncludeSuccessScreenshot: true, UserIDs: []string{"0f7a1f4e-0000-4000-8000-000000000001"}},
			{Type: "FAILURE", GroupIDs: []string{"g-1"}, SlackChannelIDs: []string{"C1", "C2"}}},
	}
	type source struct {
		params map[string]any
		view   string
	}
	sources := []source{
		{},
		{params: map[string]any{"region": "emea", "n": 3, "ratio": 0.5, "flag": true, "when": "2026-03-02", "tags": []string{"a", "b"}}},
		{view: "9a8b7c6d-0000-4000-8000-00000000000a"},
	}
	var out []hexclient.RunRequest
	for _, src := range sources {
		for _, cached := range bools {
			for _, publish := range bools {
				for _, n := range notes {
					for _, dry := range []bool{false, true} {
						out = append(out, hexclient.RunRequest{InputParams: src.params, ViewID: src.view, UseCachedSQLResults: cached,
							UpdatePublishedResults: publish, Notifications: n, DryRun: dry})
					}
				}
			}
		}
	}
	return out
}

// TestRequestConformance sends every request body and query the client can produce
// to hexsim and validates each request on the wire against Hex's OpenAPI document
// (plus the fields documented since), through kin-openapi's ValidateRequest.
func TestRequestConformance(t *testing.T) {
	doc := loadRequestSpec(t)
	bodies := runRequests()
	var sent []sentRequest
	synctest.Test(t, func(t *testing.T) {
		sim := hexsim.New(hexsim.Config{Seed: 1, Faults: hexsim.Faults{Next: []hexsim.Fault{hexsim.Fault5xxAfterCreate}}})
		pn := hexsim.NewPipeNet()
		stop := pn.Serve(sim)
		tr := pn.Transport()
		defer func() { tr.CloseIdleConnections(); stop() }()
		tap := &wireTap{next: tr}
		c, err := hexclient.New(hexclient.Config{BaseURL: simBase, Token: hexclient.StaticToken("hxtp_conformance"),
			HTTPClient: &http.Client{Transport: tap}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var runID string
		for i, b := range bodies { // the first answers 500: the reconcile's listing is sent too
			got, err := c.Trigger(ctx, hexclient.TriggerRequest{Slot: fmt.Sprintf("s@%d", i), ProjectID: projA, Body: b})
			if err != nil {
				t.Fatalf("body %d: %v", i, err)
			}
			if !b.DryRun {
				runID = got.RunID
			}
		}
		if _, err := c.GetRunStatus(ctx, projA, runID); err != nil {
			t.Fatal(err)
		}
		statuses := []hexclient.Status{"", hexclient.StatusPending, hexclient.StatusRunning, hexclient.StatusErrored,
			hexclient.StatusCompleted, hexclient.StatusKilled, hexclient.StatusUnableToAllocateKernel}
		for _, limit := range []int{0, 1, 25, 100, 500} {
			for _, offset := range []int{0, 100} {
				for _, st := range statuses {
					for _, trig := range []string{"", "API", "SCHEDULED", "APP_REFRESH", "ALL"} {
						if _, err := c.GetProjectRuns(ctx, projA, hexclient.RunsQuery{Limit: limit, Offset: offset, StatusFilter: st, RunTriggerFilter: trig}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		if _, err := c.Reconcile(ctx, projA, time.Now().Add(-time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		page, err := c.ListProjects(ctx, hexclient.ProjectsQuery{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListProjects(ctx, hexclient.ProjectsQuery{After: page.After}); err != nil && page.After != "" {
			t.Fatal(err)
		}
		if _, err := c.ListProjects(ctx, hexclient.ProjectsQuery{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetProject(ctx, projA); err != nil {
			t.Fatal(err)
		}
		if err := c.CancelRun(ctx, projA, runID); err != nil {
			t.Fatal(err)
		}
		tap.mu.Lock()
		sent = tap.sent
		tap.mu.Unlock()
	})

	seen := map[string]int{}
	posts := 0
	for _, s := range sent {
		op, err := validateSent(doc, s)
		if err != nil {
			t.Errorf("%s %s?%s %s:\n%v", s.method, s.path, s.query, s.body, err)
			continue
		}
		seen[op]++
		if ua := s.header.Get("User-Agent"); !strings.HasPrefix(ua, "hexcron/") {
			t.Errorf("%s: User-Agent %q", op, ua)
		}
		if op != "RunProject" {
			if s.body != nil {
				t.Errorf("%s sent a body %q", op, s.body)
			}
			continue
		}
		posts++
		if ct := s.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("RunProject Content-Type %q", ct)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(s.body, &m); err != nil {
			t.Errorf("RunProject body %q: %v", s.body, err)
		}
		if _, v := m["viewId"]; v {
			if _, p := m["inputParams"]; p {
				t.Errorf("viewId together with inputParams: %s", s.body)
			}
		}
	}
	// Every body was sent (the 500 adds no POST: its run was adopted) and every
	// operation the client has was exercised.
	if posts != len(bodies) {
		t.Errorf("%d RunProject requests for %d bodies", posts, len(bodies))
	}
	for _, op := range []string{"RunProject", "GetRunStatus", "GetProjectRuns", "CancelRun", "ListProjects", "GetProject"} {
		if seen[op] == 0 {
			t.Errorf("no %s request was validated; seen %v", op, seen)
		}
	}
	t.Logf("validated %d requests: %v", len(sent), seen)
}

// TestRequestConformanceCatchesAStrayField: the extended document still rejects a
// field Hex does not document, and a query value outside its enum, so the test above
// can fail.
func TestRequestConformanceCatchesAStrayField(t *testing.T) {
	doc := loadRequestSpec(t)
	h := http.Header{"Authorization": {"Bearer hxtp_x"}, "Content-Type": {"application/json"}}
	for _, s := range []sentRequest{
		{"POST", "/api/v1/projects/" + projA + "/runs", "", h, []byte(`{"inputParams":{},"idempotencyKey":"k"}`)},
		{"POST", "/api/v1/projects/" + projA + "/runs", "", h, []byte(`{"notifications":[{"type":"SOMETIMES"}]}`)},
		{"GET", "/api/v1/projects/" + projA + "/runs", "runTriggerFilter=MANUAL", h, nil},
		{"GET", "/api/v1/projects/" + projA + "/runs", "limit=500", h, nil},
		{"GET", "/api/v1/projects", "limit=1", http.Header{}, nil},
	} {
		if _, err := validateSent(doc, s); err == nil {
			t.Errorf("%s %s?%s %s validated", s.method, s.path, s.query, s.body)
		}
	}
}
