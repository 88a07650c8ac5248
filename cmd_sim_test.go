package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hexcron/hexclient/hexsim"
)

// startSim runs `hexcron sim ARGS` in a goroutine until the returned stop is called,
// and returns the base URL it printed. stop returns the exit code.
func startSim(t *testing.T, args ...string) (baseURL string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := runSim(ctx, &env{stdout: outW, stderr: &stderr, getenv: func(string) string { return "" }}, args)
		outW.Close()
		done <- code
	}()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cancel()
		t.Fatalf("sim printed nothing; exit %d; stderr %s", <-done, stderr.String())
	}
	line := sc.Text()
	baseURL, ok := strings.CutPrefix(line, "hexcron sim: listening on ")
	if !ok || !strings.HasPrefix(baseURL, "http://127.0.0.1:") || !strings.HasSuffix(baseURL, "/api/v1") {
		t.Fatalf("first line %q", line)
	}
	go io.Copy(io.Discard, out)
	return baseURL, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
			t.Fatal("sim did not stop")
			return -1
		}
	}
}

func simDo(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

// TestSimOverLoopback serves the sim over real TCP with no config, triggers a run and
// reads the ledger from the debug endpoint, then stops it.
func TestSimOverLoopback(t *testing.T) {
	base, stop := startSim(t, "--addr", "127.0.0.1:0", "--seed", "9")
	const proj = "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
	code, body := simDo(t, "POST", base+"/projects/"+proj+"/runs", "hxtp_anyone", `{"dryRun":"false"}`)
	if code != http.StatusCreated {
		t.Fatalf("RunProject: %d %s", code, body)
	}
	var created struct{ RunID, RunStatusURL string }
	json.Unmarshal(body, &created)
	if code, body := simDo(t, "GET", created.RunStatusURL, "hxtw_other", ""); code != 200 || !strings.Contains(string(body), `"status":"PENDING"`) {
		t.Fatalf("GetRunStatus at runStatusUrl: %d %s", code, body)
	}
	if code, _ := simDo(t, "GET", base+"/projects", "not-a-token", ""); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	code, body = simDo(t, "GET", strings.TrimSuffix(base, "/api/v1")+"/_sim/requests", "", "")
	var reqs []hexsim.Request
	if err := json.Unmarshal(body, &reqs); err != nil || code != 200 {
		t.Fatalf("/_sim/requests: %d %s", code, body)
	}
	if len(reqs) != 3 || reqs[0].RunCreated != created.RunID || reqs[2].Status != 401 {
		t.Fatalf("ledger %+v", reqs)
	}
	if strings.Contains(string(body), "hxtp_anyone") {
		t.Fatal("the ledger shows a raw token")
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d after stop, want 0", code)
	}
}

// TestSimConfigFile narrows the sim with a config: listed tokens only, a registry,
// the rolling window and Retry-After.
func TestSimConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.yaml")
	os.WriteFile(path, []byte(`
tokens: [hxtp_ci]
projects:
  - {id: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, title: Daily}
  - {id: 1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d, title: Draft, published: false}
limits:
  trigger: [{limit: 2, per: 1h}]
  window: rolling
  style: retry-after
`), 0o600)
	base, stop := startSim(t, "--addr", "127.0.0.1:0", "--config", path)
	defer stop()
	runs := func(p string) string { return base + "/projects/" + p + "/runs" }
	for _, c := range []struct {
		method, url, token string
		want               int
	}{
		{"POST", runs("0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"), "hxtp_other", 401},
		{"POST", runs("1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d"), "hxtp_ci", 422},
		{"POST", runs("2d9b5e4c-3f60-4b7c-9d8e-9f0a1b2c3d4e"), "hxtp_ci", 404},
		{"POST", runs("0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"), "hxtp_ci", 429}, // the 422 and the 404 used the hour's two triggers
	} {
		if code, body := simDo(t, c.method, c.url, c.token, ""); code != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.url, code, body, c.want)
		}
	}
}

func TestSimUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("limits:\n  windows: rolling\n"), 0o600)
	for _, c := range []struct {
		args []string
		want int
		err  string
	}{
		{[]string{"--nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"extra"}, exitUsage, "unexpected argument"},
		{[]string{"--config", bad, "--addr", "127.0.0.1:0"}, exitError, "line 2: field windows not found"},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, exitError, "no such file"},
		{[]string{"--addr", "256.0.0.1:1"}, exitError, "listen"},
	} {
		var out, errb bytes.Buffer
		code := runSim(context.Background(), &env{stdout: &out, stderr: &errb, getenv: os.Getenv}, c.args)
		if code != c.want || !strings.Contains(errb.String(), c.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.want, c.err)
		}
	}
}

// TestSimHelp prints the usage on stdout, and the YAML example in it is a valid config.
func TestSimHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"sim", "--help"}, &env{stdout: &out, stderr: &errb, getenv: os.Getenv}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	help := out.String()
	for _, want := range []string{"--addr", "--config", "--seed", "window: fixed", "/_sim/faults"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	start := strings.Index(help, "  seed: 1")
	end := strings.Index(help, "\nFaults:")
	if start < 0 || end < start {
		t.Fatal("no YAML example in the help")
	}
	if _, err := hexsim.ParseConfig([]byte(help[start:end])); err != nil {
		t.Fatalf("the help's example config: %v", err)
	}
}

// TestSimSignal runs `hexcron sim` in a child process and stops it with SIGTERM.
func TestSimSignal(t *testing.T) {
	if os.Getenv("HEXCRON_SIM_CHILD") == "1" {
		os.Exit(cmdSim(&env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, []string{"--addr", "127.0.0.1:0"}))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimSignal$")
	cmd.Env = append(os.Environ(), "HEXCRON_SIM_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || !strings.Contains(sc.Text(), "listening on http://127.0.0.1:") {
		cmd.Process.Kill()
		t.Fatalf("child printed %q", sc.Text())
	}
	base := strings.TrimPrefix(sc.Text(), "hexcron sim: listening on ")
	if code, _ := simDo(t, "GET", base+"/projects", "hxtp_x", ""); code != 200 {
		t.Fatalf("ListProjects on the child: %d", code)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child after SIGTERM: %v, want exit 0", err)
	}
}
