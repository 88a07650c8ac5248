package main

// hexcron trigger --gateway: the CLI client of the trigger gateway, for CI jobs.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"hexcron/clock"
	"hexcron/planner"
)

// exitTempFail is sysexits.h's EX_TEMPFAIL: the gateway kept answering 429 (or 503)
// until --retry-for ran out; trying again later may work.
const exitTempFail = 75

// gatewayTrigger is one run of hexcron trigger --gateway.
type gatewayTrigger struct {
	e      *env
	clk    clock.Clock
	poll   triggerPoll
	base   *url.URL // the gateway's root (scheme, host)
	hc     *http.Client
	token  string
	f      triggerFlags
	target string // what the request runs, for messages and the default key
}

// runGatewayTrigger is hexcron trigger with --gateway: NAME runs a configured schedule
// (POST /v1/schedules/NAME/trigger), --project ID a project (POST
// /api/v1/projects/ID/runs, Hex's own endpoint).
func runGatewayTrigger(ctx context.Context, e *env, f triggerFlags, pos []string, clk clock.Clock, poll triggerPoll) int {
	switch {
	case f.project == "" && len(pos) == 0:
		fmt.Fprintln(e.stderr, "hexcron trigger: which schedule? give NAME, or --project ID (see --help)")
		return exitUsage
	case f.project != "" && len(pos) > 0:
		fmt.Fprintf(e.stderr, "hexcron trigger: give a schedule NAME or --project ID, not both (got %q and --project %s)\n", pos[0], f.project)
		return exitUsage
	case len(pos) > 1:
		fmt.Fprintf(e.stderr, "hexcron trigger: unexpected argument %q (one schedule at a time)\n", pos[1])
		return exitUsage
	case f.tokenFile == "":
		fmt.Fprintln(e.stderr, "hexcron trigger: --gateway needs --token-file FILE (the file holding this client's gateway token)")
		return exitUsage
	case f.retryFor < 0:
		fmt.Fprintln(e.stderr, "hexcron trigger: --retry-for must not be negative")
		return exitUsage
	}
	base, hc, err := gatewayClient(f.gateway)
	if err != nil {
		fmt.Fprintf(e.stderr, "hexcron trigger: --gateway: %v\n", err)
		return exitUsage
	}
	tok, err := readGatewayToken(f.tokenFile)
	if err != nil {
		return fail(e.stderr, "trigger", err)
	}
	t := &gatewayTrigger{e: e, clk: clk, poll: poll, base: base, hc: hc, token: tok, f: f}
	var path string
	var body any
	if f.project != "" {
		t.target = "project " + strings.ToLower(f.project)
		path = "/api/v1/projects/" + url.PathEscape(strings.ToLower(f.project)) + "/runs"
		inputs := map[string]any{}
		for _, kv := range f.params {
			inputs[kv[0]] = jsonOrString(kv[1])
		}
		b := map[string]any{}
		if len(inputs) > 0 {
			b["inputParams"] = inputs
		}
		body = b
	} else {
		t.target = "schedule " + pos[0]
		path = "/v1/schedules/" + url.PathEscape(pos[0]) + "/trigger"
		params := map[string]any{}
		for _, kv := range f.params {
			params[kv[0]] = kv[1] // the daemon reads it as JSON where the schedule's param is not a string
		}
		b := map[string]any{}
		if len(params) > 0 {
			b["params"] = params
		}
		body = b
	}
	data, err := json.Marshal(body)
	if err != nil {
		return fail(e.stderr, "trigger", err)
	}
	key := f.key
	if key == "" {
		key = ciKey(e.getenv, t.target, data)
		if key != "" {
			fmt.Fprintf(e.stderr, "hexcron trigger: Idempotency-Key %s (from the CI job id; a retry of this job step gets the same run)\n", key)
		}
	}
	return t.run(ctx, path, data, key)
}

// gatewayClient parses --gateway: https://HOST[:PORT], http://LOOPBACK[:PORT] or
// unix:/path/to/socket. A token never goes in clear to another host.
func gatewayClient(raw string) (*url.URL, *http.Client, error) {
	if path, ok := strings.CutPrefix(raw, "unix:"); ok {
		if path == "" {
			return nil, nil, errors.New("unix: needs the socket's path")
		}
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		return &url.URL{Scheme: "http", Host: "hexcron-gateway"}, &http.Client{Transport: tr}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, nil, fmt.Errorf("%q is not a URL like https://host:8470 (or unix:/run/hexcron/gateway.sock)", raw)
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, nil, fmt.Errorf("%s is plain HTTP to another host: the token would cross the network in clear; use https://", raw)
		}
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, nil, fmt.Errorf("%q: give only the scheme, host and port", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, &http.Client{}, nil
}

// readGatewayToken reads a client token file (at most 4 KiB, white space trimmed).
func readGatewayToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxTokenFile {
		return "", fmt.Errorf("--token-file %s: not a regular file of at most %d bytes", path, maxTokenFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", path)
	}
	return tok, nil
}

// jsonOrString is a --param value for a project run: JSON when it reads as JSON (10,
// true, {"a": 1}, "quoted"), else the text itself.
func jsonOrString(v string) any {
	var x any
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&x); err == nil && !dec.More() {
		if _, err := dec.Token(); errors.Is(err, io.EOF) {
			return x
		}
	}
	return v
}

// ciKey is the default Idempotency-Key in a CI job: the job's id (GitHub Actions:
// run id, attempt and job; GitLab: the job id), what the request runs and a digest of
// the request, so that a step retried within the job gets the same run and two
// different triggers in one job do not share a key. "" outside CI.
func ciKey(getenv func(string) string, target string, body []byte) string {
	var job string
	switch {
	case getenv("GITHUB_RUN_ID") != "":
		job = "github-" + getenv("GITHUB_RUN_ID") + "-" + getenv("GITHUB_RUN_ATTEMPT")
		if j := getenv("GITHUB_JOB"); j != "" {
			job += "-" + j
		}
	case getenv("CI_JOB_ID") != "":
		job = "gitlab-" + getenv("CI_JOB_ID")
	default:
		return ""
	}
	sum := sha256.Sum256(append([]byte(target+"\n"), body...))
	k := job + "-" + strings.ReplaceAll(target, " ", ":") + "-" + hex.EncodeToString(sum[:6])
	var b strings.Builder
	for _, c := range []byte(k) {
		if c >= 0x21 && c <= 0x7e {
			b.WriteByte(c)
		}
	}
	return b.String()[:min(b.Len(), 255)]
}

// gatewayAnswer is one answer of the gateway.
type gatewayAnswer struct {
	code       int
	retryAfter time.Duration
	slot       string // X-Hexcron-Slot: the slot the request made
	body       map[string]any
}

func (a gatewayAnswer) str(k string) string { s, _ := a.body[k].(string); return s }

// send makes one request to the gateway.
func (t *gatewayTrigger) send(ctx context.Context, method, path string, body []byte, key string) (gatewayAnswer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := *t.base
	u.Path = path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return gatewayAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("User-Agent", "hexcron/"+versionString())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return gatewayAnswer{}, errors.New(strings.ReplaceAll(err.Error(), t.token, "[redacted]"))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := gatewayAnswer{code: resp.StatusCode, slot: resp.Header.Get("X-Hexcron-Slot")}
	_ = json.Unmarshal(data, &a.body)
	if a.body == nil && len(data) > 0 {
		a.body = map[string]any{"reason": strings.TrimSpace(string(data))}
	}
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
		a.retryAfter = time.Duration(s) * time.Second
	}
	return a, nil
}

// run sends the request, retrying 429 and 503 answers (after Retry-After) and lost
// connections (only with a key: without one a retry may start a second run) until
// --retry-for has passed.
func (t *gatewayTrigger) run(ctx context.Context, path string, body []byte, key string) int {
	e := t.e
	giveUp := t.clk.Now().Add(t.f.retryFor)
	netTries := 0
	for {
		a, err := t.send(ctx, http.MethodPost, path, body, key)
		if err != nil {
			if ctx.Err() != nil {
				return fail(e.stderr, "trigger", fmt.Errorf("interrupted: %w", ctx.Err()))
			}
			if key == "" {
				return fail(e.stderr, "trigger", fmt.Errorf("the gateway did not answer (%v); without an Idempotency-Key a retry could start a second run, so none is made", err))
			}
			netTries++
			wait := min(time.Duration(1<<min(netTries, 5))*time.Second, 30*time.Second)
			if netTries > 6 || t.clk.Now().Add(wait).After(giveUp) {
				return fail(e.stderr, "trigger", fmt.Errorf("the gateway did not answer: %v", err))
			}
			fmt.Fprintf(e.stderr, "hexcron trigger: the gateway did not answer (%v); retrying in %s with the same Idempotency-Key\n", err, wait)
			if clock.Sleep(ctx, t.clk, wait) != nil {
				return fail(e.stderr, "trigger", ctx.Err())
			}
			continue
		}
		netTries = 0
		switch a.code {
		case http.StatusCreated:
			slot := a.slot
			if slot == "" {
				slot = dash(a.str("slot"))
			}
			fmt.Fprintf(e.stdout, "slot %s\nrun %s\nurl %s\n", slot, a.str("runId"), a.str("runUrl"))
			if !t.f.wait {
				return exitOK
			}
			return t.waitRun(ctx, a.str("runStatusUrl"), a.str("projectId"), a.str("runId"))
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			wait := max(a.retryAfter, time.Second)
			if t.clk.Now().Add(wait).After(giveUp) {
				fmt.Fprintf(e.stderr, "hexcron trigger: %d from the gateway: %s (Retry-After %s; --retry-for %s is used up)\n",
					a.code, a.str("reason"), wait, t.f.retryFor)
				return exitTempFail
			}
			how := "as a new request (no Idempotency-Key)"
			if key != "" {
				how = "with the same Idempotency-Key"
			}
			fmt.Fprintf(e.stderr, "hexcron trigger: %d: %s; retrying in %s %s\n", a.code, a.str("reason"), wait, how)
			if clock.Sleep(ctx, t.clk, wait) != nil {
				return fail(e.stderr, "trigger", ctx.Err())
			}
		default:
			return fail(e.stderr, "trigger", fmt.Errorf("%d from the gateway: %s", a.code, dash(a.str("reason"))))
		}
	}
}

// waitRun polls the run's status at the gateway (answered from the daemon's
// tracking, no Hex read) until it ends or --timeout passes.
func (t *gatewayTrigger) waitRun(ctx context.Context, statusURL, project, runID string) int {
	e := t.e
	path := "/api/v1/projects/" + project + "/runs/" + runID
	if u, err := url.Parse(statusURL); err == nil && u.Path != "" {
		path = u.Path // the gateway's own URL; the host may be a name it does not know itself by
	}
	var giveUp time.Time
	if t.f.timeout > 0 {
		giveUp = t.clk.Now().Add(t.f.timeout)
	}
	interval := t.poll.Start
	last := ""
	for {
		a, err := t.send(ctx, http.MethodGet, path, nil, "")
		switch {
		case ctx.Err() != nil:
			return fail(e.stderr, "trigger", fmt.Errorf("stopped waiting (run %s keeps going; the daemon tracks it)", runID))
		case err != nil:
			fmt.Fprintf(e.stderr, "hexcron trigger: run status: %v (will retry)\n", err)
		case a.code != http.StatusOK:
			if a.code >= 400 && a.code < 500 && a.code != http.StatusTooManyRequests {
				return fail(e.stderr, "trigger", fmt.Errorf("run status: %d: %s", a.code, a.str("reason")))
			}
		default:
			st := a.str("status")
			if st != last {
				last = st
				fmt.Fprintf(e.stderr, "hexcron trigger: run %s is %s\n", runID, st)
			}
			switch st {
			case "COMPLETED", "ERRORED", "KILLED", "UNABLE_TO_ALLOCATE_KERNEL":
				fmt.Fprintf(e.stdout, "status %s\n", st)
				if ms, ok := a.body["elapsedTime"].(float64); ok && ms > 0 {
					fmt.Fprintf(e.stdout, "elapsed %s\n", planner.FormatDuration(time.Duration(ms*float64(time.Millisecond))))
				}
				if st == "COMPLETED" {
					return exitOK
				}
				return exitError
			}
		}
		if !giveUp.IsZero() && !t.clk.Now().Before(giveUp) {
			return fail(e.stderr, "trigger", fmt.Errorf("run %s still %s after %s; stopped waiting (the run is not cancelled)", runID, dash(last), t.f.timeout))
		}
		wait := interval
		if !giveUp.IsZero() {
			wait = max(min(wait, giveUp.Sub(t.clk.Now())), 0)
		}
		if clock.Sleep(ctx, t.clk, wait) != nil {
			return fail(e.stderr, "trigger", fmt.Errorf("stopped waiting (run %s keeps going; the daemon tracks it)", runID))
		}
		interval = min(2*interval, t.poll.Max)
	}
}
