package main

// End-to-end tests of the trigger gateway: the real hexcron binary serving the gateway
// on loopback, `hexcron sim` as Hex, and this test process as the gateway's clients
// (real HTTP from a second process).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"hexcron/internal/pgtest"
)

const (
	gwToken    = "gw-ci-token-5f2a9c"
	gwOpsToken = "gw-ops-token-77e1d0"
	gwOther    = "9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c" // a project no client may run
)

// gwEnv is a daemon serving the gateway, its sim and its files.
type gwEnv struct {
	sim     simProc
	d       *daemonProc
	dir     string
	cfg, db string
	base    string // the gateway's root URL
	metrics string // the daemon's metrics address
	client  *http.Client
	args    []string // more flags for the daemon
}

// startGateway writes a config with the gateway's clients ci (token file, the e2e
// project, the schedule "report", quota as given) and ops (token_sha256, the schedule
// only), and starts the daemon on a SQLite file. tlsLines, when set, is the gateway's
// tls: line; schedules are more schedule items.
func startGateway(t *testing.T, simYAML, ciExtra, tlsLines string, schedules ...string) *gwEnv {
	t.Helper()
	e := newGateway(t, simYAML, ciExtra, tlsLines, schedules...)
	e.start(t)
	return e
}

// newGateway is startGateway without the start: the caller may set db (a postgres://
// URL) first.
func newGateway(t *testing.T, simYAML, ciExtra, tlsLines string, schedules ...string) *gwEnv {
	t.Helper()
	e := &gwEnv{sim: startSimProc(t, simYAML), dir: t.TempDir(), client: &http.Client{}}
	if err := os.WriteFile(filepath.Join(e.dir, "ci.token"), []byte(gwToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ops := sha256.Sum256([]byte(gwOpsToken))
	e.cfg = e2eConfig(t, e.dir, e.sim, `schedules:
  - {name: report, project: `+e2eProject+`, cron: "0 0 1 1 *", params: {limit: 5}}
`+strings.Join(schedules, "")+`gateway:
  listen: 127.0.0.1:0
`+tlsLines+`  clients:
    - name: ci
      token_file: ci.token
      projects: [`+e2eProject+`]
      schedules: [report]
      wait: 20s
`+ciExtra+`    - name: ops
      token_sha256: `+hex.EncodeToString(ops[:])+`
      schedules: [report]
`)
	e.db = filepath.Join(e.dir, "hexcron.db")
	return e
}

// start starts (or restarts) the daemon and learns the gateway's address.
func (e *gwEnv) start(t *testing.T) {
	t.Helper()
	e.d = startDaemon(t, []string{e2eToken}, append([]string{"--config", e.cfg, "--db", e.db, "--metrics-addr", "127.0.0.1:0"}, e.args...)...)
	waitFor(t, 20*time.Second, "the daemon to run", func() bool { return len(e.d.logLines("hexcron running")) > 0 })
	gw := e.d.logLines("serving the trigger gateway")
	ms := e.d.logLines("serving metrics")
	if len(gw) != 1 || len(ms) != 1 {
		t.Fatalf("no gateway or metrics address in the log:\n%s", e.d.stderr)
	}
	scheme := gw[0]["scheme"].(string)
	e.base = scheme + "://" + gw[0]["addr"].(string)
	e.metrics = ms[0]["addr"].(string)
}

// call sends one request to the gateway; the answer's body is decoded when JSON.
func (e *gwEnv) call(t *testing.T, method, path, token, body string, hdr ...string) (*http.Response, []byte, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(data, &v)
	return resp, data, v
}

// runsOf counts hexsim's runs of project.
func (e *gwEnv) runsOf(t *testing.T, project string) int {
	n := 0
	for _, r := range e.sim.runs(t) {
		if r.ProjectID == project {
			n++
		}
	}
	return n
}

// sim429s counts hexsim's 429 answers to RunProject.
func (e *gwEnv) sim429s(t *testing.T) int {
	n := 0
	for _, r := range e.sim.requests(t) {
		if r.Op == "RunProject" && r.Status == 429 {
			n++
		}
	}
	return n
}

// scrape reads the daemon's hexcron_gateway_requests_total series.
func (e *gwEnv) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	re := regexp.MustCompile(`^hexcron_gateway_requests_total\{client="([^"]+)",code="(\d+)"\} (\S+)$`)
	for _, l := range strings.Split(string(data), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			out[m[1]+" "+m[2]] = v
		}
	}
	return out
}

// hexSpec is Hex's 2022 OpenAPI document with the fields documented since (as in
// hexsim's conformance test).
func hexSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("hexclient/hexsim/testdata/hex-openapi-2022.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background(), openapi3.DisableSchemaDefaultsValidation()); err != nil {
		t.Fatal(err)
	}
	add := func(schema, prop, src string) {
		var s openapi3.Schema
		if err := json.Unmarshal([]byte(src), &s); err != nil {
			t.Fatal(err)
		}
		doc.Components.Schemas[schema].Value.Properties[prop] = &openapi3.SchemaRef{Value: &s}
	}
	version := `{"oneOf": [{"type": "number"}, {"type": "string"}]}`
	add("ProjectRunResponsePayload", "projectVersion", version)
	add("ProjectStatusResponsePayload", "projectVersion", version)
	add("ProjectStatusResponsePayload", "runTrigger", `{"type": "string", "enum": ["API", "SCHEDULED", "APP_REFRESH"]}`)
	return doc
}

// conform validates one answer of the gateway against Hex's document: the operation of
// the legacy path (plural paths are checked against it too), errors against
// TsoaErrorResponsePayload.
func conform(t *testing.T, doc *openapi3.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	var legacy string
	switch p := req.URL.Path; {
	case regexp.MustCompile(`^/api/v1/projects?/[^/]+/runs?$`).MatchString(p):
		legacy = "/project/{projectId}/run"
	case regexp.MustCompile(`^/api/v1/projects?/[^/]+/runs?/[^/]+$`).MatchString(p):
		legacy = "/project/{projectId}/run/{runId}"
	default:
		t.Fatalf("no Hex operation for %s", p)
	}
	if resp.StatusCode >= 400 {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s %s %d: not JSON: %q", req.Method, req.URL.Path, resp.StatusCode, body)
			return
		}
		if err := doc.Components.Schemas["TsoaErrorResponsePayload"].Value.VisitJSON(v); err != nil {
			t.Errorf("%s %s %d: error body %s: %v", req.Method, req.URL.Path, resp.StatusCode, body, err)
		}
	}
	item := doc.Paths.Find(legacy)
	route := &routers.Route{Spec: doc, Path: legacy, PathItem: item, Method: req.Method, Operation: item.GetOperation(req.Method)}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route},
		Status:                 resp.StatusCode, Header: resp.Header, Options: &openapi3filter.Options{MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s %d: %s\n%v", req.Method, req.URL.Path, resp.StatusCode, body, err)
	}
}

// TestE2EGatewayConformance: both path families of the real daemon's gateway answer
// what Hex's OpenAPI document says (201, run status, 204, errors), the runStatusUrl
// points at the gateway and answers from hexcron's tracking without a Hex read, and
// each request reaches Hex once.
func TestE2EGatewayConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	e := startGateway(t, fastSim+"  running_jitter: 0s\n", "", "")
	doc := hexSpec(t)
	check := func(method, path, token, body string, want int, hdr ...string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
		}
		conform(t, doc, req, resp, data)
		var v map[string]any
		_ = json.Unmarshal(data, &v)
		return v
	}
	plural, legacy := "/api/v1/projects/"+e2eProject+"/runs", "/api/v1/project/"+e2eProject+"/run"
	var runs []string
	for _, p := range []string{plural, legacy} {
		v := check("POST", p, gwToken, `{"inputParams": {"region": "emea"}, "dryRun": "false", "useCachedSqlResults": true}`, 201)
		run, _ := v["runId"].(string)
		if v["runStatusUrl"] != e.base+plural+"/"+run || v["projectId"] != e2eProject {
			t.Errorf("%s: %v (runStatusUrl must point at the gateway)", p, v)
		}
		runs = append(runs, run)
	}
	check("POST", plural, gwToken, "", 201)
	statusReads := func() int {
		n := 0
		for _, r := range e.sim.requests(t) {
			if r.Op == "GetRunStatus" || r.Op == "GetProjectRuns" {
				n++
			}
		}
		return n
	}
	before := statusReads()
	for i := range 3 {
		for j, p := range []string{plural, legacy} {
			v := check("GET", p+"/"+runs[j], gwToken, "", 200)
			if v["runId"] != runs[j] || v["status"] == nil || v["runTrigger"] != "API" {
				t.Errorf("status %d of %s: %v", i, runs[j], v)
			}
		}
	}
	if n := statusReads() - before; n > 2 {
		t.Errorf("six status reads through the gateway made %d reads at Hex (the daemon's own polls only)", n)
	}
	// The run ends at Hex; the daemon's tracking sees it and the gateway says so.
	waitFor(t, 20*time.Second, "the daemon to record the first run's end", func() bool {
		_, _, v := e.call(t, "GET", plural+"/"+runs[0], gwToken, "")
		return v["status"] == "COMPLETED"
	})
	v := check("GET", legacy+"/"+runs[0], gwToken, "", 200)
	if v["endTime"] == nil || v["startTime"] == nil || v["elapsedTime"] == nil {
		t.Errorf("an ended run: %v", v)
	}
	// Cancel a run still going (a long one from a fresh request).
	slow := check("POST", plural, gwToken, `{"inputParams": {"slow": true}}`, 201)["runId"].(string)
	check("DELETE", legacy+"/"+slow, gwToken, "", 204)
	if r := e.simRun(t, slow); !r.Cancelled {
		t.Errorf("hexsim's run %s was not cancelled", slow)
	}
	check("GET", plural+"/"+slow, gwToken, "", 200)
	// Errors, in Hex's error body.
	check("POST", plural, "", "", 401)
	check("POST", "/api/v1/projects/"+gwOther+"/runs", gwToken, "", 403)
	check("POST", plural, gwToken, `{"inputParms": {}}`, 400)
	check("POST", legacy, gwToken, `{"inputParams": {"blob": "`+strings.Repeat("x", 70<<10)+`"}}`, 413)
	check("GET", plural+"/"+"2d9b5e4c-3f60-4b7c-9d8e-9f0a1b2c3d4e", gwToken, "", 404)
	check("DELETE", plural+"/"+runs[0], gwToken, "", 422) // already ended
	check("GET", plural+"/"+runs[0], gwOpsToken, "", 404) // ops sees only the runs it asked for

	if n := e.runsOf(t, e2eProject); n != 4 {
		t.Errorf("hexsim has %d runs, want 4 (one per accepted request)", n)
	}
	if code := e.d.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkOneRunPerSlot(t, e.sim, slotsOf(t, e.db))
	for _, s := range slotsOf(t, e.db) {
		if s.Client != "ci" || s.Kind != "manual" {
			t.Errorf("slot %s: client %q kind %s", s.Key, s.Client, s.Kind)
		}
	}
}

func (e *gwEnv) simRun(t *testing.T, id string) simRun {
	for _, r := range e.sim.runs(t) {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("hexsim has no run %s", id)
	return simRun{}
}

// TestE2EGatewayIdempotency: one Idempotency-Key, one run at Hex: twice in a row,
// concurrently, and after a restart of the daemon; the same key with another body is
// refused (422).
func TestE2EGatewayIdempotency(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	testE2EGatewayIdempotency(t, startGateway(t, fastSim, "", ""))
}

// TestE2EPostgresGatewayIdempotency: the same with the daemon's state on PostgreSQL:
// the keys, the quota's slots and the queued requests live in the shared database, so
// a retry after a restart still gets its first run.
func TestE2EPostgresGatewayIdempotency(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	e := newGateway(t, fastSim, "", "")
	e.db = pgtest.NewURL(t)
	e.start(t)
	testE2EGatewayIdempotency(t, e)
}

// TestE2EPostgresGatewayStandby: two daemons with the gateway on one PostgreSQL. The
// standby's gateway refuses with 503 and Retry-After (only the leader admits, and a
// retry may find a new one) and starts nothing; when the leader is killed, the standby
// leads and its gateway answers with a run, and a retry of the leader's keyed request
// gets the leader's run back.
func TestE2EPostgresGatewayStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const ttl = 3 * time.Second
	e := newGateway(t, fastSim, "", "")
	e.db = pgtest.NewURL(t)
	e.args = []string{"--lease-ttl", ttl.String()}
	e.start(t)
	leader, leaderBase := e.d, e.base
	path := "/api/v1/projects/" + e2eProject + "/runs"
	_, raw, first := e.call(t, "POST", path, gwToken, `{"inputParams": {"build": 7}}`, "Idempotency-Key", "build-7")
	if first["runId"] == nil {
		t.Fatalf("the leader's gateway: %s", raw)
	}

	// A second daemon on the same database: it stands by, and serves its gateway.
	e.d = startDaemon(t, []string{e2eToken}, append([]string{"--config", e.cfg, "--db", e.db}, e.args...)...)
	waitFor(t, 30*time.Second, "the second daemon to stand by", func() bool {
		return strings.Contains(e.d.stderr.String(), `"msg":"standing by: hexcron on`) && len(e.d.logLines("serving the trigger gateway")) == 1
	})
	e.base = "http://" + e.d.logLines("serving the trigger gateway")[0]["addr"].(string)
	if e.base == leaderBase {
		t.Fatalf("both gateways on %s", e.base)
	}
	resp, raw, _ := e.call(t, "POST", path, gwToken, `{"inputParams": {"build": 8}}`, "Idempotency-Key", "build-8")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), "stands by") {
		t.Fatalf("the standby's gateway: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	if n := e.runsOf(t, e2eProject); n != 1 {
		t.Fatalf("hexsim has %d runs, want the leader's 1", n)
	}

	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Between taking the lease and running (recovery, the plan) the gateway answers 503
	// "starting"; a client retries that like any 503.
	waitFor(t, ttl+15*time.Second, "the standby to lead and run", func() bool { return len(e.d.logLines("hexcron running")) > 0 })
	resp, raw, v := e.call(t, "POST", path, gwToken, `{"inputParams": {"build": 8}}`, "Idempotency-Key", "build-8")
	if resp.StatusCode != 201 || v["runId"] == nil {
		t.Fatalf("the new leader's gateway: %d %s", resp.StatusCode, raw)
	}
	_, raw, again := e.call(t, "POST", path, gwToken, `{"inputParams": {"build": 7}}`, "Idempotency-Key", "build-7")
	if again["runId"] != first["runId"] {
		t.Fatalf("the old leader's keyed request retried on the new leader: %s, want run %v", raw, first["runId"])
	}
	if n := e.runsOf(t, e2eProject); n != 2 {
		t.Errorf("hexsim has %d runs, want 2 (one per key)", n)
	}
}

func testE2EGatewayIdempotency(t *testing.T, e *gwEnv) {
	path := "/api/v1/projects/" + e2eProject + "/runs"
	body := `{"inputParams": {"build": 41}}`
	_, raw1, first := e.call(t, "POST", path, gwToken, body, "Idempotency-Key", "build-41")
	_, raw2, second := e.call(t, "POST", "/api/v1/project/"+e2eProject+"/run", gwToken, body, "Idempotency-Key", "build-41")
	if first["runId"] == nil || first["runId"] != second["runId"] {
		t.Fatalf("same key twice: %s / %s", raw1, raw2)
	}
	var wg sync.WaitGroup
	runs := make([]string, 8)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, raw, v := e.call(t, "POST", path, gwToken, `{"inputParams": {"build": 42}}`, "Idempotency-Key", "build-42")
			if resp.StatusCode != 201 {
				t.Errorf("concurrent request %d: %d %s", i, resp.StatusCode, raw)
			}
			runs[i], _ = v["runId"].(string)
		}()
	}
	wg.Wait()
	for _, r := range runs {
		if r != runs[0] {
			t.Fatalf("concurrent requests with one key got runs %v", runs)
		}
	}
	if n := e.runsOf(t, e2eProject); n != 2 {
		t.Fatalf("hexsim has %d runs, want 2 (one per key)", n)
	}
	resp, _, v := e.call(t, "POST", path, gwToken, `{"inputParams": {"build": 43}}`, "Idempotency-Key", "build-41")
	if resp.StatusCode != 422 || !strings.Contains(fmt.Sprint(v["reason"]), "was used for another request") {
		t.Errorf("same key, another body: %d %v", resp.StatusCode, v)
	}
	if code := e.d.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	e.start(t)
	_, raw3, third := e.call(t, "POST", path, gwToken, body, "Idempotency-Key", "build-41")
	if third["runId"] != first["runId"] {
		t.Fatalf("after a restart: %s, want run %v", raw3, first["runId"])
	}
	if n := e.runsOf(t, e2eProject); n != 2 {
		t.Errorf("hexsim has %d runs after the restart, want 2", n)
	}
	// Without a key every request is a new run.
	for range 2 {
		e.call(t, "POST", path, gwToken, body)
	}
	if n := e.runsOf(t, e2eProject); n != 4 {
		t.Errorf("hexsim has %d runs, want 4", n)
	}
	e.d.stop(t)
	checkOneRunPerSlot(t, e.sim, slotsOf(t, e.db))
}

// TestE2EGatewayQuotaAndRefusals: past max_per_hour a request gets 429 with the time
// until the hour's oldest request leaves it; the CLI client exits 75 on it; 401, 403,
// 400, 404 and 413 have their reasons; every answer is counted by client and code,
// every series at zero from the first scrape; the token is never logged.
func TestE2EGatewayQuotaAndRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	e := startGateway(t, fastSim, "      max_per_hour: 2\n", "")
	zero := e.scrape(t)
	for _, want := range []string{"ci 201", "ci 429", "ci 413", "ops 403", "anonymous 401"} {
		if v, ok := zero[want]; !ok || v != 0 {
			t.Errorf("series %s = %v, %v at the first scrape; want 0", want, v, ok)
		}
	}
	path := "/api/v1/projects/" + e2eProject + "/runs"
	start := time.Now()
	for i := range 2 {
		if resp, raw, _ := e.call(t, "POST", path, gwToken, ""); resp.StatusCode != 201 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	resp, _, v := e.call(t, "POST", path, gwToken, "")
	elapsed := time.Since(start)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || err != nil || !strings.Contains(fmt.Sprint(v["reason"]), "max_per_hour") {
		t.Fatalf("third request: %d Retry-After %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), v)
	}
	// The first request leaves the hour an hour after it was taken.
	if lo, hi := 3600-int(elapsed.Seconds())-2, 3600; retry < lo || retry > hi {
		t.Errorf("Retry-After %d, want within [%d, %d]", retry, lo, hi)
	}
	// The CLI client: the same 429, more than --retry-for can wait: exit 75.
	cmd := exec.Command(binPath, "trigger", "--gateway", e.base, "--token-file", filepath.Join(e.dir, "ci.token"), "--project", e2eProject, "--retry-for", "1m")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if cmd.ProcessState.ExitCode() != 75 || !strings.Contains(errb.String(), "429 from the gateway") {
		t.Errorf("hexcron trigger --gateway over quota: %v, exit %d\n%s%s", err, cmd.ProcessState.ExitCode(), out.String(), errb.String())
	}
	// ops may run the schedule (its params), not the project; the schedule runs.
	if resp, raw, v := e.call(t, "POST", "/v1/schedules/report/trigger", gwOpsToken, `{"params": {"limit": "7"}}`); resp.StatusCode != 201 || v["slot"] == nil {
		t.Errorf("ops runs report: %d %s", resp.StatusCode, raw)
	}
	for _, tc := range []struct {
		method, path, token, body string
		code                      int
		reason                    string
	}{
		{"POST", path, "wrong-token", "", 401, "unknown token"},
		{"POST", path, gwOpsToken, "", 403, "may not run project"},
		{"POST", "/v1/schedules/other/trigger", gwToken, "", 403, "may not run schedule"},
		{"POST", path, gwOpsToken + " ", "", 403, "may not run project"},
		{"POST", "/v1/schedules/report/trigger", gwOpsToken, `{"params": {"limit": "seven"}}`, 400, "read as JSON"},
		{"POST", path, gwToken, `{"viewId": "v", "inputParams": {"a": 1}}`, 400, "viewId cannot be combined"},
		{"GET", "/api/v1/projects", gwToken, "", 404, "no endpoint"},
		{"POST", path, gwToken, strings.Repeat(" ", 65<<10) + "{}", 413, "larger than 65536"},
	} {
		resp, raw, v := e.call(t, tc.method, tc.path, tc.token, tc.body)
		if resp.StatusCode != tc.code || !strings.Contains(fmt.Sprint(v["reason"]), tc.reason) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, resp.StatusCode, raw, tc.code, tc.reason)
		}
	}
	got := e.scrape(t)
	for k, want := range map[string]float64{"ci 201": 2, "ci 429": 2, "ci 403": 1, "ci 400": 1, "ci 404": 1, "ci 413": 1,
		"ops 201": 1, "ops 403": 2, "ops 400": 1, "anonymous 401": 1} {
		if got[k] != want {
			t.Errorf("hexcron_gateway_requests_total %s = %v, want %v", k, got[k], want)
		}
	}
	e.d.stop(t)
	for _, secret := range []string{gwToken, gwOpsToken, "wrong-token"} {
		if strings.Contains(e.d.stderr.String(), secret) {
			t.Errorf("the daemon's log holds a client token")
		}
	}
	hist := exec.Command(binPath, "history", "--db", e.db, "--client", "ops", "--json")
	data, err := hist.Output()
	if err != nil || !strings.Contains(string(data), `"client": "ops"`) || !strings.Contains(string(data), `"schedule": "report"`) {
		t.Errorf("history --client ops: %v\n%s", err, data)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hexcron gateway test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestE2EGatewayTLS: plain HTTP on an address off loopback is refused by validate and
// by run (exit 78, before anything listens); with tls the gateway speaks HTTPS only,
// and the CLI client reaches it.
func TestE2EGatewayTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.yaml")
	ops := sha256.Sum256([]byte(gwOpsToken))
	if err := os.WriteFile(plain, []byte(`schedules:
  - {name: report, project: `+e2eProject+`, cron: "0 0 1 1 *"}
gateway:
  listen: 0.0.0.0:0
  clients: [{name: ops, token_sha256: `+hex.EncodeToString(ops[:])+`, schedules: [report]}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", "--config", plain}, {"run", "--config", plain, "--db", filepath.Join(dir, "x.db")}} {
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), e2eToken)
		out, _ := cmd.CombinedOutput()
		want := 1
		if args[0] == "run" {
			want = exitConfig
		}
		if cmd.ProcessState.ExitCode() != want || !strings.Contains(string(out), "plain.yaml:4: gateway.listen: ") || !strings.Contains(string(out), "is not a loopback address: plain HTTP") {
			t.Errorf("%s: exit %d, want %d\n%s", args[0], cmd.ProcessState.ExitCode(), want, out)
		}
	}

	certFile, keyFile := selfSigned(t, dir)
	e := startGateway(t, fastSim, "", "  tls: {cert: "+certFile+", key: "+keyFile+"}\n")
	if !strings.HasPrefix(e.base, "https://") {
		t.Fatalf("gateway at %s", e.base)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pem)
	e.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, raw, _ := e.call(t, "POST", "/v1/schedules/report/trigger", gwOpsToken, ""); resp.StatusCode != 201 {
		t.Fatalf("over TLS: %d %s", resp.StatusCode, raw)
	}
	// Plain HTTP to the TLS port gets no answer from the gateway.
	resp, err := http.Post("http://"+strings.TrimPrefix(e.base, "https://")+"/v1/schedules/report/trigger", "application/json", nil)
	if err == nil {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(data), "HTTPS server") {
			t.Errorf("plain HTTP to the TLS port: %d %s", resp.StatusCode, data)
		}
	}
	// The CLI client, trusting the certificate through SSL_CERT_FILE.
	tok := filepath.Join(dir, "ops.token")
	os.WriteFile(tok, []byte(gwOpsToken), 0o600)
	cmd := exec.Command(binPath, "trigger", "--gateway", e.base, "--token-file", tok, "report", "--param", "limit=9")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile, "GITHUB_RUN_ID=77", "GITHUB_RUN_ATTEMPT=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^run [0-9a-f-]{36}$`).MatchString(string(out)) || !strings.Contains(string(out), "Idempotency-Key github-77-1-schedule:report-") {
		t.Errorf("hexcron trigger --gateway over TLS: %v\n%s", err, out)
	}
	e.d.stop(t)
}

// TestE2EGatewayLoad: a bounded loop of concurrent requests from this process (the
// gateway's clients) while the daemon's own schedule (of a higher priority) fires every
// two seconds: hexcron keeps every trigger under the caps, so Hex (hexsim, counting
// rolling windows) never answers 429, every slot of the schedule is triggered, and the
// clients get 429s from hexcron with a Retry-After instead.
func TestE2EGatewayLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	e := startGateway(t, fastSim, "", "", `  - {name: tick, project: `+e2eQueueProject+`, cron: "*/2 * * * * *", window: 1s, priority: 1}
`)
	started := time.Now()
	path := "/api/v1/projects/" + e2eProject + "/runs"
	const workers, each = 6, 8
	var mu sync.Mutex
	codes := map[int]int{}
	var noRetry int
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				resp, _, _ := e.call(t, "POST", path, gwToken, fmt.Sprintf(`{"inputParams": {"w": %d, "i": %d}}`, w, i), "X-Hexcron-Wait", "3s")
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
					noRetry++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[201] == 0 || codes[429] == 0 || codes[201]+codes[429] != workers*each {
		t.Fatalf("answers %v: want both 201s and 429s, nothing else", codes)
	}
	if noRetry > 0 {
		t.Errorf("%d 429s without Retry-After", noRetry)
	}
	e.d.stop(t)
	if n := e.sim429s(t); n != 0 {
		t.Errorf("hexsim answered %d 429s", n)
	}
	// Every RunProject hexsim saw: never more than 20 in 10s nor 60 in a minute.
	var sent []time.Time
	statuses := map[int]int{}
	for _, r := range e.sim.requests(t) {
		if r.Op == "RunProject" {
			sent = append(sent, r.Time)
			statuses[r.Status]++
		}
	}
	t.Logf("hexsim's RunProject answers: %v", statuses)
	sort.Slice(sent, func(i, j int) bool { return sent[i].Before(sent[j]) })
	for _, rule := range []struct {
		n   int
		per time.Duration
	}{{20, 10 * time.Second}, {60, time.Minute}} {
		for i := range sent {
			j := i
			for j < len(sent) && sent[j].Sub(sent[i]) < rule.per {
				j++
			}
			if j-i > rule.n {
				t.Fatalf("%d RunProject requests within %s from %s (cap %d)", j-i, rule.per, sent[i].Format(time.RFC3339Nano), rule.n)
			}
		}
	}
	ticks := 0
	for _, s := range slotsOf(t, e.db) {
		if s.Schedule != "tick" || s.Nominal.Before(started.Add(time.Second)) {
			continue
		}
		ticks++
		if s.RunID == "" {
			t.Errorf("the schedule's slot %s was not triggered: %s %s", s.Key, s.State, s.Reason)
		}
	}
	if ticks == 0 || len(sent) != codes[201]+e.runsOf(t, e2eQueueProject) {
		t.Errorf("hexsim saw %d RunProject requests; the clients got %d runs, the schedule %d (%d slots)", len(sent), codes[201], e.runsOf(t, e2eQueueProject), ticks)
	}
	t.Logf("%d requests: %v; the schedule: %d runs; hexsim: %d RunProject, 0 429s", workers*each, codes, e.runsOf(t, e2eQueueProject), len(sent))
}
