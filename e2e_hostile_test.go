package main

// End-to-end tests of what an adversarial pass found (issue 11): a second daemon
// reaching the database through another path, and others added below.

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
		// A second daemon that is not refused runs until the context kills it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, binPath, "run", "--log-format", "text", "--config", cfg, "--db", p)
		cmd.Env = append(os.Environ(), e2eToken)
		out, err := cmd.CombinedOutput()
		cancel()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("second daemon on %s: exit %d (%v), want 1 at once; output:\n%.2000s", p, code, err, out)
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

// hostileConfigs writes the configs an attacker or a careless operator could hand
// hexcron, and ones at the edge of what it accepts, and returns name -> (path, exit).
// The files are written in small pieces: a subprocess's peak memory, as the kernel
// reports it, starts from its parent's.
func hostileConfigs(t testing.TB, dir string) map[string]struct {
	path string
	exit int
} {
	t.Helper()
	sched := "schedules:\n  - name: a\n    project: " + e2eProject + "\n    cron: \"0 6 * * *\"\n"
	var bomb strings.Builder
	bomb.WriteString("schedules:\n  - name: bomb\n    project: " + e2eProject + "\n    cron: \"0 0 1 1 *\"\n    matrix:\n")
	for k := range 10 {
		fmt.Fprintf(&bomb, "      k%d: [v0, v1, v2, v3, v4, v5, v6, v7, v8, v9]\n", k)
	}
	type piece struct {
		head, rep string
		n         int
		tail      string
	}
	files := map[string]piece{
		"matrix-bomb":     {bomb.String(), "", 0, ""},
		"50MB":            {"", "- x\n", 50 << 20 / 4, ""},
		"too-many-tokens": {"x-list: [", "1,", 1_900_000, "1]\n" + sched},
		"largest-string":  {"x-blob: \"", "a", 4<<20 - 200, "\"\n" + sched},
		"most-tokens-ok":  {"x-list: [", "1,", 49_000, "1]\n" + sched},
	}
	out := map[string]struct {
		path string
		exit int
	}{}
	for name, pc := range files {
		p := filepath.Join(dir, name+".yaml")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(pc.head)
		chunk := strings.Repeat(pc.rep, max(1, 4096/max(1, len(pc.rep))))
		for left := pc.n * len(pc.rep); left > 0; left -= len(chunk) {
			f.WriteString(chunk[:min(len(chunk), left)])
		}
		f.WriteString(pc.tail)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		exit := 1
		if name == "most-tokens-ok" || name == "largest-string" {
			exit = 0
		}
		out[name] = struct {
			path string
			exit int
		}{p, exit}
	}
	return out
}

// validateUsage runs `hexcron validate --config path` (`hexcron version` when path is
// "") and returns its exit code, its CPU time (user + system) and its peak resident
// memory (which the kernel starts from the test process's own peak).
func validateUsage(t testing.TB, path string) (int, time.Duration, int64, string) {
	t.Helper()
	cmd := exec.Command(binPath, "validate", "--config", path)
	if path == "" {
		cmd = exec.Command(binPath, "version")
	}
	out, _ := cmd.CombinedOutput()
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cmd.ProcessState.ExitCode(), cpu, ru.Maxrss * 1024, string(out)
}

// TestE2EHostileConfigs: the matrix bomb, a 50 MB file and a file of too many tokens
// end with exit 1 and a message; the largest files hexcron accepts pass. (Their CPU
// time and memory are measured by BenchmarkHostileConfigs.)
func TestE2EHostileConfigs(t *testing.T) {
	want := map[string]string{
		"matrix-bomb":     "schedules[0].matrix: 10000000000 combinations per firing time (10 keys); hexcron allows at most 10000",
		"50MB":            "the file is 52428800 bytes; hexcron reads schedule files of at most 4194304 bytes (4 MiB)",
		"too-many-tokens": "more than 100000 YAML tokens by this line",
		"largest-string":  ": ok: 1 schedules",
		"most-tokens-ok":  ": ok: 1 schedules",
	}
	for name, c := range hostileConfigs(t, t.TempDir()) {
		code, _, _, out := validateUsage(t, c.path)
		if code != c.exit || !strings.Contains(out, want[name]) {
			t.Errorf("%s: exit %d (want %d), output:\n%.500s", name, code, c.exit, out)
		}
	}
}

// BenchmarkHostileConfigs reports, per config, the CPU time and the peak memory of
// `hexcron validate` (a process of its own); "version" is the baseline of a process
// that reads nothing: go test -run '^$' -bench HostileConfigs .
func BenchmarkHostileConfigs(b *testing.B) {
	configs := hostileConfigs(b, b.TempDir())
	configs["version"] = struct {
		path string
		exit int
	}{"", 0}
	for _, name := range []string{"version", "matrix-bomb", "50MB", "too-many-tokens", "largest-string", "most-tokens-ok"} {
		c := configs[name]
		b.Run(name, func(b *testing.B) {
			var cpu time.Duration
			var peak int64
			for b.Loop() {
				code, c1, p, out := validateUsage(b, c.path)
				if code != c.exit {
					b.Fatalf("exit %d, want %d: %.300s", code, c.exit, out)
				}
				cpu += c1
				peak = max(peak, p)
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		})
	}
}
