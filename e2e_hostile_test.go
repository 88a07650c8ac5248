package main

// End-to-end tests of what an adversarial pass found (issue 11): a second daemon
// reaching the database through another path, and others added below.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2ESecondDaemonThroughAnotherPath: while a daemon runs on real.db, a second
// `hexcron run` on the same file through a symlink, a hard link or a path through ".."
// exits 1 naming the first one's pid, and no slot is triggered twice.
func TestE2ESecondDaemonThroughAnotherPath(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sim := startSimProc(t, fastSim)
	dir := t.TempDir()
	cfg := e2eConfig(t, dir, sim, `schedules:
  - name: every-two-seconds
    project: `+e2eProject+`
    cron: "*/2 * * * * *"
`)
	real := filepath.Join(dir, "real.db")
	first := startDaemon(t, []string{e2eToken}, "--config", cfg, "--db", real)
	waitFor(t, 20*time.Second, "the first daemon to trigger", func() bool { return len(first.logLines("triggered")) > 0 })

	if err := os.Symlink(real, filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(real, filepath.Join(dir, "hard.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "link.db"), filepath.Join(dir, "hard.db"), dir + "/sub/../real.db"} {
		cmd := exec.Command(binPath, "run", "--log-format", "text", "--config", cfg, "--db", p)
		cmd.Env = append(os.Environ(), e2eToken)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("second daemon on %s: exit %d (%v), want 1; output:\n%s", p, code, err, out)
			continue
		}
		want := fmt.Sprintf("database is in use by another hexcron daemon (pid %d holds the lock on ", first.cmd.Process.Pid)
		if !strings.Contains(string(out), want) {
			t.Errorf("second daemon on %s says:\n%s\nwant it to contain %q", p, out, want)
		}
	}
	time.Sleep(3 * time.Second) // a few more slots while the refused daemons are gone
	if code := first.stop(t); code != 0 {
		t.Fatalf("first daemon exit %d", code)
	}
	checkOneRunPerSlot(t, sim, slotsOf(t, real))
}

const echoedToken = "hxtp_Zq9W4rVb7Kx2Lm8Np3Yt"

// echoHex is a hostile Hex over loopback: every answer (RunProject's 201, run statuses,
// run lists, an error now and then) echoes the caller's token whole, lower-cased,
// truncated, hex-encoded and JSON-escaped, in bodies and in x-trace-id.
type echoHex struct {
	mu   sync.Mutex
	runs int
}

func (h *echoHex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	esc := fmt.Sprintf(`\u%04x`, tok[0]) + tok[1:]
	w.Header().Set("x-trace-id", "tr-"+strings.ToLower(tok))
	w.Header().Set("Content-Type", "application/json")
	now := time.Now().UTC().Format(time.RFC3339)
	run := func(id string) string {
		return fmt.Sprintf(`{"projectId":"%s","runId":"%s","runUrl":"https://app.hex.tech/app/p?leak=%s","status":"COMPLETED",
			"runTrigger":"API","startTime":"%s","endTime":"%s","elapsedTime":1000,"traceId":"%s"}`, e2eProject, id, tok, now, now, esc)
	}
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/runs"):
		h.mu.Lock()
		h.runs++
		n := h.runs
		h.mu.Unlock()
		if n%4 == 0 { // now and then a refusal whose body echoes it too
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"reason":"bad input %s","details":"%s","traceId":"%s"}`, hex.EncodeToString([]byte(tok)), strings.ToUpper(tok), tok[:12])
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"projectId":"%s","runId":"run-%d","runUrl":"https://app.hex.tech/app/p?leak=%s","runStatusUrl":"https://x/%s","traceId":"tr-%s"}`,
			e2eProject, n, tok, esc, tok)
	case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/runs/"):
		fmt.Fprint(w, run(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]))
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/runs"):
		fmt.Fprintf(w, `{"runs":[],"nextPage":null,"traceId":"%s"}`, tok)
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "no such thing for %s", tok)
	}
}

// tokenLeak reports the first piece of the token (six characters or more, any case, or
// twelve hex digits of its hex encoding) in data, or "".
func tokenLeak(data []byte) string {
	low := bytes.ToLower(data)
	tok := strings.ToLower(echoedToken)
	for i := 0; i+6 <= len(tok); i++ {
		if bytes.Contains(low, []byte(tok[i:i+6])) {
			return tok[i : i+6]
		}
	}
	hx := hex.EncodeToString([]byte(echoedToken))
	for i := 0; i+12 <= len(hx); i++ {
		if bytes.Contains(low, []byte(hx[i:i+12])) {
			return hx[i : i+12]
		}
	}
	return ""
}

// TestE2EEchoedTokenGoesNowhere: against a Hex that echoes the token in everything it
// answers, the token is in no log line of the daemon, no byte of the database, its WAL
// or its shared memory, and no output of trigger, status or history.
func TestE2EEchoedTokenGoesNowhere(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	srv := httptest.NewServer(&echoHex{})
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "schedules.yaml")
	writeConfig(t, cfg, simProc{base: srv.URL + "/api/v1"}, `schedules:
  - name: echo
    project: `+e2eProject+`
    cron: "*/2 * * * * *"
`)
	db := filepath.Join(dir, "hexcron.db")
	env := []string{"HEX_API_TOKEN=" + echoedToken}
	d := startDaemon(t, env, "--config", cfg, "--db", db)
	waitFor(t, 30*time.Second, "completed and failed slots", func() bool {
		return len(d.logLines("completed")) >= 3 && len(d.logLines("failed")) >= 1
	})
	check := func(what string, data []byte) {
		t.Helper()
		if p := tokenLeak(data); p != "" {
			i := bytes.Index(bytes.ToLower(data), []byte(p))
			t.Errorf("%s holds %q of the token: ...%q...", what, p, data[max(0, i-80):min(len(data), i+40)])
		}
	}
	// While it runs, the WAL holds the latest writes.
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		check(filepath.Base(p)+" (daemon running)", data)
	}
	for _, args := range [][]string{
		{"trigger", "echo", "--config", cfg, "--db", db, "--wait", "--timeout", "10s"},
		{"status", "--config", cfg, "--db", db},
		{"status", "--config", cfg, "--db", db, "--json"},
		{"history", "--db", db},
		{"history", "--db", db, "--json"},
	} {
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		check("hexcron "+strings.Join(args[:1], " ")+" output", out)
		if len(out) == 0 {
			t.Errorf("hexcron %s printed nothing", args[0])
		}
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("daemon exit %d", code)
	}
	check("the daemon's log", []byte(d.stderr.String()))
	if !strings.Contains(d.stderr.String(), "leak=[redacted]") {
		t.Errorf("the daemon's log shows no redacted run URL: the test does not exercise the echo")
	}
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if data, err := os.ReadFile(p); err == nil {
			check(filepath.Base(p)+" (after stop)", data)
		}
	}
}
