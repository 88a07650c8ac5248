package hexsim

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzParseConfig: any YAML either fails to parse with an error or gives a config that
// validates and whose server answers RunProject, GetRunStatus and GetProjectRuns
// without panicking (a dropped connection aborts the handler, as net/http expects).
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"seed: 7\nlimits: {window: rolling, style: both, kernels: 3}\n",
		"limits:\n  trigger: [{limit: 2, per: 1m}, {limit: -1, per: 0s}]\n  status: [{limit: 1, per: 1s}]\n",
		"runs:\n  pending: 1s\n  running: -5s\n  outcomes: {COMPLETED: 85, ERRORED: 5, STUCK: 4, UNKNOWN: 3, UNABLE_TO_ALLOCATE_KERNEL: 2, KILLED: 1}\n  unknown_status: QUEUED\n  conflict_409: true\n",
		"faults:\n  probabilities: {5xx-after-create: 0.03, 5xx-before-create: 0.03, drop-after-create: 0.02, delay: 0.02}\n",
		"faults:\n  next: [drop-after-create, 422, 401, 429, 503, 409, none]\n  at: {2: 5xx-after-create}\n  retry_after: 2s\n",
		"tokens: [hxtp_a]\nusers:\n  - {name: shared, tokens: [hxtp_b, hxtw_c]}\nprojects:\n  - {id: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, title: T, published: false}\n  - {id: 1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d, inputs: [region]}\n",
		"runs: {outcomes: {COMPLETED: .nan, ERRORED: .inf}}\nfaults: {probabilities: {delay: .nan}}\n",
		"shared_user: true\nproject_version_string: true\nbase_url: http://127.0.0.1:8080/api/v1\n",
		"limits: {window: sliding}\n",
		"latency: {min: 50ms, max: 2s}\n",
		"latency: {min: 2s, max: 1s}\n",
		"bogus: 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse sim config: ") {
				t.Fatalf("error %q does not name the operation", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config Validate rejects: %v", err)
		}
		for f, p := range cfg.Faults.Probabilities {
			if !(p >= 0 && p <= 1) {
				t.Fatalf("accepted fault %q with probability %v", f, p)
			}
		}
		for o, w := range cfg.Runs.Outcomes {
			if !(w >= 0 && w <= math.MaxFloat64) {
				t.Fatalf("accepted outcome %q with weight %v", o, w)
			}
		}
		// The server runs on the real clock here: keep FaultDelay and latency from
		// holding the fuzzer.
		cfg.Faults.Delay = time.Millisecond
		cfg.Latency = Latency{}
		token := "hxtp_fuzz"
		switch {
		case len(cfg.Tokens) > 0:
			token = cfg.Tokens[0]
		case len(cfg.Users) > 0 && len(cfg.Users[0].Tokens) > 0:
			token = cfg.Users[0].Tokens[0]
		}
		project := "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
		if len(cfg.Projects) > 0 {
			project = cfg.Projects[0].ID
		}
		sim := New(cfg)
		serve := func(method, path, body string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(method, "http://hexsim/api/v1"+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			defer func() {
				if r := recover(); r != nil && r != http.ErrAbortHandler {
					panic(r)
				}
			}()
			sim.ServeHTTP(rec, req)
			return rec
		}
		for range 3 {
			serve(http.MethodPost, "/projects/"+project+"/runs", `{"inputParams":{"region":"emea"}}`)
		}
		for _, r := range sim.Runs() {
			rec := serve(http.MethodGet, "/projects/"+project+"/runs/"+r.ID, "")
			if rec.Code != http.StatusOK && rec.Code != http.StatusTooManyRequests {
				t.Fatalf("status of run %s: %d %s", r.ID, rec.Code, rec.Body)
			}
		}
		serve(http.MethodGet, "/projects/"+project+"/runs?limit=5", "")
		// The ledger: every run was created by exactly one recorded request, and no
		// record holds the token.
		created := map[string]int{}
		for _, r := range sim.Requests() {
			if r.RunCreated != "" {
				created[r.RunCreated]++
			}
			if strings.Contains(r.Token, token) {
				t.Fatalf("request ledger holds the token: %+v", r)
			}
		}
		for _, r := range sim.Runs() {
			if created[r.ID] != 1 {
				t.Fatalf("run %s created by %d recorded requests", r.ID, created[r.ID])
			}
		}
	})
}
