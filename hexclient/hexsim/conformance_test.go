package hexsim

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// Fields Hex documents today that its 2022 document (additionalProperties: false)
// predates, per shared/reference/hex-api.md. Everything else stays forbidden.
const (
	projectVersionSchema = `{"oneOf": [{"type": "number"}, {"type": "string"}]}`
	// Hex's current reference answers one entry per recipient (ProjectRunNotificationRecipient).
	notificationsSchema = `{"type": "array", "items": {"type": "object", "additionalProperties": false,
		"required": ["type", "recipientType", "includeSuccessScreenshot", "recipient"],
		"properties": {"type": {"type": "string", "enum": ["SUCCESS", "FAILURE", "ALL"]},
		"subject": {"type": "string"}, "body": {"type": "string"},
		"recipientType": {"type": "string", "enum": ["USER", "GROUP", "SLACK_CHANNEL"]},
		"includeSuccessScreenshot": {"type": "boolean"},
		"screenshotFormat": {"type": "array", "items": {"type": "string", "enum": ["png", "pdf"]}},
		"recipient": {"type": "object", "additionalProperties": false, "required": ["id", "name"],
			"properties": {"id": {"type": "string"}, "name": {"type": "string"}, "isPrivate": {"type": "boolean"}}}}}}`
	runTriggerSchema = `{"type": "string", "enum": ["API", "SCHEDULED", "APP_REFRESH"]}`
	// RunProject's other 422 form.
	invalidParamsSchema = `{"type": "object", "additionalProperties": false, "required": ["invalid", "notFound", "traceId"],
		"properties": {"traceId": {"type": "string"}, "notFound": {"type": "array"},
		"invalid": {"type": "array", "items": {"type": "object", "required": ["paramName"]}}}}`
	// ListProjects and GetProject are not in the 2022 document: the fields hex-api.md names.
	projectSchema = `{"type": "object", "required": ["id", "title", "type", "lastPublishedAt", "schedules"],
		"properties": {"id": {"type": "string", "format": "uuid"}, "title": {"type": "string"}, "type": {"type": "string"},
		"lastPublishedAt": {"type": "string", "format": "date-time", "nullable": true},
		"schedules": {"type": "array", "items": {"type": "object", "required": ["cadence", "enabled"],
			"properties": {"cadence": {"type": "string", "enum": ["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "CUSTOM"]},
			"enabled": {"type": "boolean"}}}}}}`
)

func mustSchema(t *testing.T, src string) *openapi3.Schema {
	t.Helper()
	var s openapi3.Schema
	if err := json.Unmarshal([]byte(src), &s); err != nil {
		t.Fatalf("test schema: %v", err)
	}
	return &s
}

// loadSpec loads Hex's 2022 document and adds the fields documented since.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("testdata/hex-openapi-2022.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Hex's document gives integer and boolean defaults as strings ('0', 'false'): it
	// is otherwise valid.
	if err := doc.Validate(context.Background(), openapi3.DisableSchemaDefaultsValidation()); err != nil {
		t.Fatalf("the 2022 document: %v", err)
	}
	add := func(schema, prop, src string) {
		doc.Components.Schemas[schema].Value.Properties[prop] = &openapi3.SchemaRef{Value: mustSchema(t, src)}
	}
	add("ProjectRunResponsePayload", "projectVersion", projectVersionSchema)
	add("ProjectRunResponsePayload", "notifications", notificationsSchema)
	add("ProjectStatusResponsePayload", "projectVersion", projectVersionSchema)
	add("ProjectStatusResponsePayload", "runTrigger", runTriggerSchema)
	add("ProjectStatusResponsePayload", "notifications", notificationsSchema)
	return doc
}

// exchange is one request and the response the client received.
type exchange struct {
	method, path string
	req          *http.Request
	status       int
	header       http.Header
	body         []byte
}

// recordingTransport keeps every exchange that got a response.
type recordingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	rt.mu.Lock()
	rt.log = append(rt.log, exchange{req.Method, req.URL.Path, req, res.StatusCode, res.Header, body})
	rt.mu.Unlock()
	return res, nil
}

// Legacy 2022 paths for each request path of either family.
var legacyRoutes = []struct {
	method string
	re     *regexp.Regexp
	path   string
}{
	{"POST", regexp.MustCompile(`^/api/v1/projects?/([^/]+)/runs?$`), "/project/{projectId}/run"},
	{"GET", regexp.MustCompile(`^/api/v1/projects?/([^/]+)/runs?/([^/]+)$`), "/project/{projectId}/run/{runId}"},
	{"DELETE", regexp.MustCompile(`^/api/v1/projects?/([^/]+)/runs?/([^/]+)$`), "/project/{projectId}/run/{runId}"},
	{"GET", regexp.MustCompile(`^/api/v1/projects?/([^/]+)/runs$`), "/project/{projectId}/runs"},
}

// TestWireConformance drives the sim through every kind of answer and validates every
// response body against Hex's OpenAPI document (plural paths against the matching
// legacy operation), every JSON error against TsoaErrorResponsePayload or the
// documented 422 form, and ListProjects/GetProject against hex-api.md's fields.
func TestWireConformance(t *testing.T) {
	doc := loadSpec(t)
	errSchema := doc.Components.Schemas["TsoaErrorResponsePayload"].Value
	invalidSchema := mustSchema(t, invalidParamsSchema)
	project := mustSchema(t, projectSchema)
	listSchema := mustSchema(t, `{"type": "object", "required": ["values", "pagination"], "properties": {
		"values": {"type": "array"}, "pagination": {"type": "object", "required": ["after", "before"], "properties": {
		"after": {"type": "string", "nullable": true}, "before": {"type": "string", "nullable": true}}}}}`)

	for _, versionString := range []bool{false, true} {
		var log []exchange
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, Config{ProjectVersionString: versionString, RejectUnknownInputs: true,
				Projects: []Project{{ID: proj1, Title: "Daily", Published: true, Inputs: []string{"region"},
					Schedules: []HexSchedule{{Cadence: "CUSTOM", Enabled: true, Cron: "0 6 * * *"}, {Cadence: "HOURLY"}}},
					{ID: proj2, Title: "Draft"}, {ID: proj3, Title: "Private", Published: true, Access: AccessNone}},
				Limits: Limits{Kernels: 6, Trigger: []Rule{{Limit: 12, Per: time.Minute}},
					AllCalls: []Rule{{Limit: 500, Per: time.Minute}}, Status: []Rule{{Limit: 500, Per: time.Minute}}},
				Runs: Lifecycle{Pending: 5 * time.Second, PendingJitter: 5 * time.Second, Running: time.Minute, RunningJitter: time.Minute,
					Outcomes: map[Outcome]float64{OutcomeCompleted: 2, OutcomeErrored: 1, OutcomeKilled: 1, OutcomeNoKernel: 2}},
				Faults: Faults{Next: []Fault{FaultNone, Fault5xxAfterCreate, Fault5xxBeforeCreate, FaultConflict, FaultUnprocessable,
					FaultTooMany, FaultKernelCap, FaultUnauthorized}}})
			rt := &recordingTransport{next: h.tr}
			h.client.Transport = rt
			paths := []string{"/projects/" + proj1 + "/runs", "/project/" + proj1 + "/run"}
			var ids []string
			for i := range 14 { // scripted faults, then 201s, a 503 (kernels) and 429s (12/min)
				r, id := h.trigger(tokA, proj1)
				if i == 0 {
					h.do("POST", paths[1], tokA, `{"inputParams":{"region":"emea"},"notifications":[{"type":"ALL","slackChannelIds":["C1"]}],"dryRun":"false"}`)
				}
				if id != "" {
					ids = append(ids, id)
				}
				_ = r
			}
			time.Sleep(time.Minute)
			h.do("POST", paths[0], tokA, `{"inputParams":{"colour":"red"}}`) // 422 invalid form
			h.do("POST", paths[0], tokA, `{"dryRun":"maybe"}`)               // 400
			h.do("POST", "/projects/"+proj2+"/runs", tokA, nil)              // 422 unpublished
			h.do("POST", "/projects/2d9b5e4c-3f60-4b7c-9d8e-9f0a1b2c3d4e/runs", tokA, nil)
			h.do("GET", "/projects", "hxtp_nobody", nil) // 401
			for step := range 8 {
				if _, id := h.trigger(tokA, proj1); id != "" {
					ids = append(ids, id)
				}
				for j, id := range ids {
					h.do("GET", paths[j%2]+"/"+id, tokA, nil)
				}
				h.do("GET", "/projects/"+proj1+"/runs?limit=2&offset=1", tokA, nil)
				h.do("GET", "/project/"+proj1+"/runs?statusFilter=COMPLETED", tokA, nil)
				if step == 1 {
					h.do("DELETE", paths[0]+"/"+ids[len(ids)-1], tokA, nil)
				}
				time.Sleep(40 * time.Second)
			}
			h.do("GET", paths[0]+"/"+ids[0][:8]+"-0000-4000-8000-000000000000", tokA, nil) // 404 run
			h.do("GET", "/projects?limit=1", tokA, nil)
			h.do("GET", "/projects/"+proj2, tokA, nil)
			h.do("GET", "/projects/"+proj1, tokA, nil)
			h.do("GET", "/projects/"+proj3, tokA, nil)          // 403: not shared
			h.do("POST", "/projects/"+proj3+"/runs", tokA, nil) // 403
			log = rt.log
		})

		seen := map[string]bool{}
		for _, ex := range log {
			key := ex.method + " " + ex.path
			if ex.header.Get("x-trace-id") == "" {
				t.Errorf("%s %d: no x-trace-id header", key, ex.status)
			}
			if ex.status == http.StatusNoContent {
				if len(ex.body) != 0 {
					t.Errorf("%s: 204 with a body", key)
				}
				seen["204"] = true
				continue
			}
			ct := ex.header.Get("Content-Type")
			if strings.HasPrefix(ct, "text/plain") {
				if ex.status != 401 && ex.status != 502 {
					t.Errorf("%s: plain-text %d", key, ex.status)
				}
				seen["text"] = true
				continue
			}
			var v any
			if err := json.Unmarshal(ex.body, &v); err != nil {
				t.Errorf("%s %d: body is not JSON: %q", key, ex.status, ex.body)
				continue
			}
			if m, ok := v.(map[string]any); ok && m["traceId"] != nil && m["traceId"] != ex.header.Get("x-trace-id") {
				t.Errorf("%s: traceId %v, header %s", key, m["traceId"], ex.header.Get("x-trace-id"))
			}
			if ex.status >= 400 {
				schema := errSchema
				if m, ok := v.(map[string]any); ok && m["invalid"] != nil {
					schema = invalidSchema
					seen["invalid"] = true
				}
				if err := schema.VisitJSON(v); err != nil {
					t.Errorf("%s %d: error body %s: %v", key, ex.status, ex.body, err)
				}
				seen[http.StatusText(ex.status)] = true
			}
			if strings.HasPrefix(ex.path, "/api/v1/projects") && !strings.Contains(ex.path, "/runs") {
				if ex.status == 200 {
					schema := project
					if ex.path == "/api/v1/projects" {
						schema = listSchema
						for _, p := range v.(map[string]any)["values"].([]any) {
							if err := project.VisitJSON(p); err != nil {
								t.Errorf("%s: project %v: %v", key, p, err)
							}
						}
					}
					if err := schema.VisitJSON(v); err != nil {
						t.Errorf("%s: %s: %v", key, ex.body, err)
					}
					seen[key] = true
				}
				continue
			}
			if seen["invalid"] && ex.status == 422 && strings.Contains(string(ex.body), `"invalid"`) {
				// hex-api.md's current 422 form, validated above; the 2022 document
				// only knows {reason, traceId}.
				continue
			}
			route := legacyRoute(t, doc, ex)
			in := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: ex.req, Route: route},
				Status:                 ex.status, Header: ex.header, Options: &openapi3filter.Options{MultiError: true},
			}
			in.SetBodyBytes(ex.body)
			if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
				t.Errorf("%s %d: %s\n%v", key, ex.status, ex.body, err)
			}
			if m, ok := v.(map[string]any); ok {
				if st, ok := m["status"].(string); ok {
					seen[st] = true
				}
				if _, ok := m["runs"]; ok {
					seen["runs"] = true
				}
				if _, ok := m["runStatusUrl"]; ok {
					seen["201"] = true
				}
			}
		}
		for _, want := range []string{"201", "204", "runs", "text", "invalid", "PENDING", "RUNNING", "COMPLETED", "ERRORED", "KILLED",
			"UNABLE_TO_ALLOCATE_KERNEL", "Bad Request", "Not Found", "Unprocessable Entity", "Conflict", "Too Many Requests",
			"Service Unavailable", "Internal Server Error", "Forbidden", "GET /api/v1/projects", "GET /api/v1/projects/" + proj2,
			"GET /api/v1/projects/" + proj1} {
			if !seen[want] {
				t.Errorf("projectVersionString=%v: the scenario never produced %q; seen %v", versionString, want, seen)
			}
		}
	}
}

func legacyRoute(t *testing.T, doc *openapi3.T, ex exchange) *routers.Route {
	t.Helper()
	for _, lr := range legacyRoutes {
		if lr.method == ex.method && lr.re.MatchString(ex.path) {
			item := doc.Paths.Find(lr.path)
			return &routers.Route{Spec: doc, Path: lr.path, PathItem: item, Method: ex.method, Operation: item.GetOperation(ex.method)}
		}
	}
	t.Fatalf("no 2022 operation for %s %s", ex.method, ex.path)
	return nil
}
