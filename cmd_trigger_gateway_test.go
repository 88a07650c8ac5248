package main

import (
	"context"
	"crypto/sha256"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hexcron/clock"
	"hexcron/gateway"
)

// scriptedBackend answers the gateway's requests from a script, in order.
type scriptedBackend struct {
	mu     sync.Mutex
	script []gateway.Result
	reqs   []gateway.Request
	run    gateway.Run
}

func (b *scriptedBackend) Submit(_ context.Context, r gateway.Request) (gateway.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reqs = append(b.reqs, r)
	res := b.script[0]
	if len(b.script) > 1 {
		b.script = b.script[1:]
	}
	return res, nil
}

func (b *scriptedBackend) Run(context.Context, string, string) (gateway.Run, error) {
	return b.run, nil
}
func (b *scriptedBackend) Cancel(context.Context, string, string) (gateway.Run, error) {
	return b.run, nil
}
func (b *scriptedBackend) Clients() []gateway.Client {
	return []gateway.Client{{Name: "ci", TokenSHA256: sha256.Sum256([]byte("ci-token")), Projects: []string{triggerProject}, Schedules: []string{"report"}}}
}

// gatewayFor serves a gateway on loopback with b and writes the client's token file.
func gatewayFor(t *testing.T, b *scriptedBackend) (url, tokenFile string) {
	t.Helper()
	srv := httptest.NewServer(gateway.New(gateway.Config{Backend: b}))
	t.Cleanup(srv.Close)
	tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("ci-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, tokenFile
}

func triggered(slot string) gateway.Result {
	return gateway.Result{Status: gateway.Triggered, Run: gateway.Run{ProjectID: triggerProject, RunID: "0e0837c3-f5f2-4026-80f9-4a52f653f0e9",
		RunURL: "https://hex/run", Slot: slot, Schedule: "report"}}
}

// TestTriggerGateway: a schedule by name and a project by id, the params as each
// endpoint takes them, the output lines, and the key from the CI job's id.
func TestTriggerGateway(t *testing.T) {
	b := &scriptedBackend{script: []gateway.Result{triggered("report@2026-03-01T10:00:00.000Z+manual")}}
	url, tok := gatewayFor(t, b)
	env := map[string]string{"GITHUB_RUN_ID": "981", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "deploy"}
	e, out, errb := testEnv(t, time.Now(), env)
	code := runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--param", "limit=10", "--param", "region=emea"},
		clock.System{}, defaultTriggerPoll)
	if code != exitOK || out.String() != "slot report@2026-03-01T10:00:00.000Z+manual\nrun 0e0837c3-f5f2-4026-80f9-4a52f653f0e9\nurl https://hex/run\n" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	r := b.reqs[0]
	if r.Schedule != "report" || r.Params["limit"] != "10" || r.Params["region"] != "emea" || r.Client != "ci" ||
		!strings.HasPrefix(r.Key, "github-981-2-deploy-schedule:report-") || !strings.Contains(errb.String(), "Idempotency-Key "+r.Key) {
		t.Errorf("request %+v; stderr %s", r, errb)
	}
	e, out, errb = testEnv(t, time.Now(), map[string]string{"CI_JOB_ID": "5512"})
	code = runTrigger(context.Background(), e, []string{"--gateway", url, "--token-file", tok, "--project", strings.ToUpper(triggerProject),
		"--param", "limit=10", "--param", "region=emea", "--param", `tags=["a"]`}, clock.System{}, defaultTriggerPoll)
	if code != exitOK {
		t.Fatalf("project: exit %d: %s", code, errb)
	}
	if !strings.HasPrefix(out.String(), "slot report@2026-03-01T10:00:00.000Z+manual\n") {
		t.Errorf("the slot from X-Hexcron-Slot: %s", out)
	}
	r = b.reqs[1]
	if r.Project != triggerProject || r.Body.InputParams["limit"] == "10" || r.Body.InputParams["region"] != "emea" ||
		!strings.HasPrefix(r.Key, "gitlab-5512-project:"+triggerProject+"-") {
		t.Errorf("project request %+v", r)
	}
	if n, ok := r.Body.InputParams["tags"].([]any); !ok || len(n) != 1 {
		t.Errorf("tags = %#v, want a JSON list", r.Body.InputParams["tags"])
	}
	// The same step again: the same key; another request in the job: another key.
	e, _, _ = testEnv(t, time.Now(), env)
	runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--param", "limit=10", "--param", "region=emea"}, clock.System{}, defaultTriggerPoll)
	e, _, _ = testEnv(t, time.Now(), env)
	runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--param", "limit=11"}, clock.System{}, defaultTriggerPoll)
	if b.reqs[2].Key != b.reqs[0].Key || b.reqs[3].Key == b.reqs[0].Key {
		t.Errorf("keys %q %q %q", b.reqs[0].Key, b.reqs[2].Key, b.reqs[3].Key)
	}
	// An explicit key wins; outside CI there is none.
	e, _, _ = testEnv(t, time.Now(), nil)
	runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok}, clock.System{}, defaultTriggerPoll)
	e, _, _ = testEnv(t, time.Now(), env)
	runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--idempotency-key", "mine"}, clock.System{}, defaultTriggerPoll)
	if b.reqs[4].Key != "" || b.reqs[5].Key != "mine" {
		t.Errorf("keys %q %q", b.reqs[4].Key, b.reqs[5].Key)
	}
}

// TestTriggerGatewayRetries: a 429 is retried after its Retry-After with the same key;
// when --retry-for cannot cover the next wait the command exits 75; a refusal exits 1.
func TestTriggerGatewayRetries(t *testing.T) {
	b := &scriptedBackend{script: []gateway.Result{{Status: gateway.NoRoom, RetryAfter: time.Second, Queued: true, Reason: "no room"},
		triggered("report@2026-03-01T10:00:01.000Z+manual")}}
	url, tok := gatewayFor(t, b)
	e, out, errb := testEnv(t, time.Now(), nil)
	code := runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--idempotency-key", "k7"}, clock.System{}, defaultTriggerPoll)
	if code != exitOK || len(b.reqs) != 2 || b.reqs[1].Key != "k7" || !strings.Contains(out.String(), "run 0e0837c3") ||
		!strings.Contains(errb.String(), "429: no room; retrying in 1s with the same Idempotency-Key") {
		t.Fatalf("exit %d, %d requests\n%s%s", code, len(b.reqs), out, errb)
	}
	b.script = []gateway.Result{{Status: gateway.Quota, RetryAfter: 40 * time.Minute, Reason: "client ci has used its max_per_hour"}}
	e, out, errb = testEnv(t, time.Now(), nil)
	code = runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--retry-for", "10m"}, clock.System{}, defaultTriggerPoll)
	if code != exitTempFail || out.Len() != 0 || !strings.Contains(errb.String(), "429 from the gateway: client ci has used its max_per_hour (Retry-After 40m0s; --retry-for 10m0s is used up)") {
		t.Fatalf("quota: exit %d\n%s%s", code, out, errb)
	}
	b.script = []gateway.Result{{Status: gateway.Refused, Reason: "Hex refused the run: 422"}}
	e, _, errb = testEnv(t, time.Now(), nil)
	if code := runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok}, clock.System{}, defaultTriggerPoll); code != exitError ||
		!strings.Contains(errb.String(), "422 from the gateway: Hex refused the run: 422") {
		t.Fatalf("refused: exit %d: %s", code, errb)
	}
	// The wrong token: 401, exit 1, and the token never shows.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not-the-token"), 0o600)
	e, _, errb = testEnv(t, time.Now(), nil)
	if code := runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", bad}, clock.System{}, defaultTriggerPoll); code != exitError ||
		!strings.Contains(errb.String(), "401 from the gateway") || strings.Contains(errb.String(), "not-the-token") {
		t.Fatalf("401: exit %d: %s", code, errb)
	}
}

// TestTriggerGatewayWait: --wait polls the run at the gateway until it ends.
func TestTriggerGatewayWait(t *testing.T) {
	b := &scriptedBackend{script: []gateway.Result{triggered("report@2026-03-01T10:00:00.000Z+manual")},
		run: gateway.Run{ProjectID: triggerProject, RunID: "0e0837c3-f5f2-4026-80f9-4a52f653f0e9", Status: "COMPLETED", Elapsed: 83 * time.Second}}
	url, tok := gatewayFor(t, b)
	e, out, errb := testEnv(t, time.Now(), nil)
	code := runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--wait"}, clock.System{}, triggerPoll{Start: time.Millisecond, Max: time.Millisecond})
	if code != exitOK || !strings.Contains(out.String(), "status COMPLETED\nelapsed 1m23s\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	b.script, b.run.Status = []gateway.Result{triggered("report@2026-03-01T10:00:02.000Z+manual")}, "ERRORED"
	e, out, _ = testEnv(t, time.Now(), nil)
	if code := runTrigger(context.Background(), e, []string{"report", "--gateway", url, "--token-file", tok, "--wait"}, clock.System{}, defaultTriggerPoll); code != exitError ||
		!strings.Contains(out.String(), "status ERRORED") {
		t.Fatalf("errored run: exit %d\n%s", code, out)
	}
}

// TestTriggerGatewayUsage: the flags that go together, and no token in clear off
// loopback.
func TestTriggerGatewayUsage(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "t")
	os.WriteFile(tok, []byte("x"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--gateway", "https://gw:8470", "--token-file", tok}, exitUsage, "give NAME, or --project ID"},
		{[]string{"a", "--gateway", "https://gw:8470", "--token-file", tok, "--project", triggerProject}, exitUsage, "not both"},
		{[]string{"a", "--gateway", "https://gw:8470"}, exitUsage, "--gateway needs --token-file"},
		{[]string{"a", "--gateway", "http://ci.example.com:8470", "--token-file", tok}, exitUsage, "plain HTTP to another host: the token would cross the network in clear"},
		{[]string{"a", "--gateway", "https://gw:8470/api/v1", "--token-file", tok}, exitUsage, "give only the scheme, host and port"},
		{[]string{"a", "--gateway", "gw:8470", "--token-file", tok}, exitUsage, "is not a URL like https://host:8470"},
		{[]string{"a", "--gateway", "https://gw:8470", "--token-file", tok, "--db", "x.db"}, exitUsage, "--config and --db do not apply"},
		{[]string{"a", "--project", triggerProject}, exitUsage, "go with --gateway URL"},
		{[]string{"a", "--gateway", "https://gw:8470", "--token-file", filepath.Join(t.TempDir(), "none")}, exitError, "--token-file"},
	} {
		e, _, errb := testEnv(t, time.Now(), nil)
		if code := runTrigger(context.Background(), e, tc.args, clock.System{}, defaultTriggerPoll); code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, code, errb, tc.code, tc.msg)
		}
	}
}
