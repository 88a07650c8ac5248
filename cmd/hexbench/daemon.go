package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemonSection builds hexcron, serves `hexcron sim`, starts one `hexcron run` per
// schedule count against it, and reads each daemon's start-up time, CPU over the idle
// window and RSS from /proc. It then times the simulated-day test.
func daemonSection(ctx context.Context, o options, w io.Writer) error {
	dir, err := os.MkdirTemp("", "hexbench-daemon-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildHexcron(ctx, dir)
	if err != nil {
		return err
	}
	base, stopSim, err := startSim(ctx, bin)
	if err != nil {
		return err
	}
	defer stopSim()

	type daemon struct {
		n       int
		load    string
		cmd     *exec.Cmd
		startup time.Duration
		cpu0    time.Duration
	}
	far := time.Now().UTC().AddDate(0, 6, 0).Month() // every firing is months away: the daemon idles
	var ds []*daemon
	defer func() {
		for _, d := range ds {
			d.cmd.Process.Signal(syscall.SIGTERM)
			d.cmd.Wait()
		}
	}()
	for _, load := range []string{"idle", "weekly"} {
		for _, n := range o.counts {
			name := fmt.Sprintf("%s-%d", load, n)
			cfg := filepath.Join(dir, "schedules-"+name+".yaml")
			if err := os.WriteFile(cfg, daemonConfig(base, n, load, far), 0o644); err != nil {
				return err
			}
			cmd := exec.CommandContext(ctx, bin, "run", "--config", cfg, "--db", filepath.Join(dir, "hexcron-"+name+".db"),
				"--log-format", "text")
			cmd.Env = append(os.Environ(), "HEX_API_TOKEN=hxtp_bench_"+strings.ReplaceAll(name, "-", "_"))
			stderr, err := cmd.StderrPipe()
			if err != nil {
				return err
			}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				return err
			}
			d := &daemon{n: n, load: load, cmd: cmd}
			ds = append(ds, d)
			ready := make(chan error, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				var last string
				for sc.Scan() {
					if strings.Contains(sc.Text(), `msg="hexcron running"`) {
						ready <- nil
						io.Copy(io.Discard, stderr)
						return
					}
					last = sc.Text()
				}
				ready <- fmt.Errorf("exited before it was running; last line %q", last)
			}()
			select {
			case err := <-ready:
				if err != nil {
					return fmt.Errorf("%d schedules: %w", n, err)
				}
			case <-time.After(2 * time.Minute):
				return fmt.Errorf("%d schedules: not running after 2 minutes", n)
			}
			d.startup = time.Since(start)
			fmt.Fprintf(o.progress, "hexbench: daemon with %d %s schedules running after %s\n", n, load, d.startup.Round(time.Millisecond))
		}
	}
	time.Sleep(2 * time.Second) // let start-up work (first plan, reconcile) settle
	for _, d := range ds {
		if d.cpu0, err = cpuTime(d.cmd.Process.Pid); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.progress, "hexbench: measuring idle CPU for %s\n", o.idle)
	select {
	case <-time.After(o.idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintf(w, "### Daemon\n\n`hexcron run` (built with `go build`) against `hexcron sim` on loopback, in real time, "+
		"all daemons at once, each as its own Hex user. Two kinds of config: **idle**, schedules whose firings are all "+
		"months away (monthly crons in %s), so nothing is due; **weekly**, weekly crons spread evenly over the week "+
		"(about n/168 firings an hour, some due while measuring, so the daemon triggers and polls runs). "+
		"Start-up: from exec to the `hexcron running` log line (config loaded and validated, database opened, first plan made). "+
		"CPU: utime+stime from /proc/PID/stat over %s, after 2 s of settling. RSS: VmRSS at the end.\n\n", far, o.idle)
	fmt.Fprintln(w, "| schedules | config | start-up | CPU | RSS |\n|--:|---|--:|--:|--:|")
	for _, d := range ds {
		cpu1, err := cpuTime(d.cmd.Process.Pid)
		if err != nil {
			return err
		}
		rss, err := rssKiB(d.cmd.Process.Pid)
		if err != nil {
			return err
		}
		pct := 100 * (cpu1 - d.cpu0).Seconds() / o.idle.Seconds()
		fmt.Fprintf(w, "| %d | %s | %s | %.2f %% (%s of CPU in %s) | %.1f MiB |\n", d.n, d.load, d.startup.Round(time.Millisecond), pct,
			(cpu1 - d.cpu0).Round(time.Millisecond), o.idle, float64(rss)/1024)
	}
	fmt.Fprintln(w)
	return simulatedDay(ctx, dir, w)
}

// daemonConfig is n schedules: "idle", each monthly in month far, one per minute of
// the day; "weekly", weekly crons spread round-robin over the 168 hours of the week.
func daemonConfig(base string, n int, load string, far time.Month) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "hex:\n  base_url: %s\nbudget:\n  triggers:\n    - {limit: 20, per: 1m}\n    - {limit: 60, per: 1h}\n", base)
	b.WriteString("defaults:\n  timezone: UTC\n  window: 10m\nschedules:\n")
	for i := range n {
		cron := fmt.Sprintf("%d %d %d %d *", i%60, (i/60)%24, (i/1440)%28+1, far)
		if load == "weekly" {
			slot := i % 168
			cron = fmt.Sprintf("%d %d * * %d", (i/168)%60, slot%24, slot/24)
		}
		fmt.Fprintf(&b, "  - {name: s-%d, project: %08x-0000-4000-8000-000000000000, cron: \"%s\"}\n", i, i, cron)
	}
	return b.Bytes()
}

// simulatedDay builds the scheduler's tests and times TestSimulatedDayOfExampleConfig:
// a day of schedules.example.yaml against hexsim with faults, in a synctest bubble.
func simulatedDay(ctx context.Context, dir string, w io.Writer) error {
	test := filepath.Join(dir, "scheduler.test")
	fmt.Fprintf(w, "### A simulated day\n\n`TestSimulatedDayOfExampleConfig` (scheduler/day_test.go): the daemon runs a whole day of "+
		"schedules.example.yaml against hexsim with injected faults, in a testing/synctest bubble; built once with `go test -c`, then timed:\n\n")
	if out, err := exec.CommandContext(ctx, "go", "test", "-c", "-o", test, "./scheduler/").CombinedOutput(); err != nil {
		fmt.Fprintf(w, "_not measured: the scheduler tests did not build: %s_\n\n", firstLine(string(out)))
		return nil
	}
	cmd := exec.CommandContext(ctx, test, "-test.run", "^TestSimulatedDayOfExampleConfig$", "-test.count=1", "-test.v")
	cmd.Dir = "scheduler"
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSimulatedDayOfExampleConfig") {
		fmt.Fprintf(w, "_not measured: the test did not pass: %v_\n\n", errors.Join(err, errors.New(firstLine(string(out)))))
		return nil
	}
	st := cmd.ProcessState
	fmt.Fprintf(w, "| wall time per simulated day | CPU time (user + system) |\n|--:|--:|\n| %.2f s | %.2f s |\n\n",
		wall.Seconds(), (st.UserTime() + st.SystemTime()).Seconds())
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// cpuTime is a process's utime+stime from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / time.Duration(clockTicks()), nil
}

// clockTicks is the kernel's USER_HZ (getconf CLK_TCK), 100 when unknown.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// buildHexcron builds the hexcron binary of the working tree into dir.
func buildHexcron(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "hexcron")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
}

// startSim starts `hexcron sim` on a free loopback port (more flags in args) and returns
// its base URL and a function that stops it.
func startSim(ctx context.Context, bin string, args ...string) (string, func(), error) {
	sim := exec.CommandContext(ctx, bin, append([]string{"sim", "--addr", "127.0.0.1:0"}, args...)...)
	simOut, err := sim.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	sim.Stderr = io.Discard
	if err := sim.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { sim.Process.Signal(syscall.SIGTERM); sim.Wait() }
	line, err := bufio.NewReader(simOut).ReadString('\n')
	base := strings.TrimSpace(strings.TrimPrefix(line, "hexcron sim: listening on "))
	if err != nil || !strings.HasPrefix(base, "http://") {
		stop()
		return "", nil, fmt.Errorf("hexcron sim printed %q: %v", line, err)
	}
	go io.Copy(io.Discard, simOut)
	return base, stop, nil
}
