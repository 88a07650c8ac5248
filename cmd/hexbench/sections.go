package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"hexcron/clock"
	"hexcron/internal/bench"
)

// throughputSection runs the saturated-backlog experiment on a clock.Scaled virtual
// clock (synctest is for tests only), and also runs the test that asserts on the same
// experiment in a synctest bubble, whose virtual time is exact.
func throughputSection(ctx context.Context, o options, w io.Writer) error {
	d := time.Duration(o.hours * float64(time.Hour))
	clk := clock.NewScaled(clock.System{}, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), o.speed)
	start := time.Now()
	rs, err := bench.ThroughputAll(ctx, bench.ThroughputConfig{Clock: clk, Duration: d})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "### Trigger throughput under a saturated backlog\n\n")
	fmt.Fprintf(w, "1,000 triggers queued, 20 in progress at a time, for %g simulated hours against hexsim with Hex's limits "+
		"(20 per minute and 60 per hour, no reserve), answers delayed by a seeded random 20 ms to 2 s. "+
		"Run on a clock.Scaled at %gx (%s of wall time, the six runs concurrently):\n\n", o.hours, o.speed, time.Since(start).Round(time.Second))
	if err := bench.WriteThroughputTable(w, rs); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThe same experiment in a testing/synctest bubble (exact virtual time, 8 hours), "+
		"from `go test -count=1 -run TestThroughputTable -v ./hexclient/`, which fails if hexcron gets a 429 or fewer than 59 per hour:\n\n")
	out, err := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^TestThroughputTable$", "-v", "./hexclient/").CombinedOutput()
	if err != nil {
		fmt.Fprintf(w, "_not available: %v_\n\n", err)
		return nil
	}
	fmt.Fprintln(w, "| client | window model | 429s received | RunProject requests | runs created | triggers per hour |\n|---|---|--:|--:|--:|--:|")
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "throughput_test.go:"); i >= 0 {
			if j := strings.Index(l[i:], "|"); j >= 0 {
				fmt.Fprintln(w, strings.TrimSpace(l[i+j:]))
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

func plannerSection(ctx context.Context, o options, w io.Writer) error {
	fmt.Fprintf(w, "### Planner\n\n`planner.Plan` over 100 every-minute schedules (windows of 1 to 10 minutes, three priorities); "+
		"the horizon sets the number of firings. \"fits\": caps of 110/min and 6,600/h (room for 100 a minute with the 2 s skew margin), every firing placed; "+
		"\"Hex caps\": 20/min and 60/h, most firings cannot be placed and each gets its explanation. "+
		"Measured with testing.Benchmark.\n\n")
	fmt.Fprintln(w, "| firings | caps | placed | time per plan | growth (time) | memory per plan | allocations |\n|--:|---|--:|--:|--:|--:|--:|")
	for _, caps := range []string{"fits", "hex"} {
		var prev bench.PlannerResult
		for _, n := range o.firings {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, err := bench.Planner(n, caps)
			if err != nil {
				return err
			}
			growth := "—"
			if prev.Firings > 0 {
				growth = fmt.Sprintf("×%.1f for ×%d firings", float64(r.PerPlan)/float64(prev.PerPlan), r.Firings/prev.Firings)
			}
			name := map[string]string{"fits": "fits", "hex": "Hex caps"}[caps]
			fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %s | %d |\n", r.Firings, name, r.Placed, roundDur(r.PerPlan), growth, mib(r.BytesPerPlan), r.AllocsPerPlan)
			prev = r
		}
	}
	fmt.Fprintln(w)
	return nil
}

func ledgerSection(ctx context.Context, o options, w io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hexbench-ledger-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(w, "### SQLite trigger ledger\n\nAdmissions per second on one database file (WAL) in %s: each admission is `Admit` "+
		"(a BEGIN IMMEDIATE transaction loading the last second of attempts, deciding, inserting) followed by `Complete`, "+
		"as fast as possible for %s per process, the processes started together.\n\n", tempFS(dir), o.ledgerD)
	fmt.Fprintln(w, "| processes | admissions per second (total) | per process |\n|--:|--:|---|")
	for _, n := range []int{1, 2} {
		path := filepath.Join(dir, fmt.Sprintf("ledger-%d.db", n))
		if _, err := bench.AdmitLoop(ctx, path, 0, time.Now); err != nil { // create and migrate first
			return err
		}
		cmds := make([]*exec.Cmd, n)
		outs := make([]strings.Builder, n)
		for i := range cmds {
			cmds[i] = exec.CommandContext(ctx, exe, path, o.ledgerD.String())
			cmds[i].Env = append(os.Environ(), helperEnv+"=admit")
			cmds[i].Stdout, cmds[i].Stderr = &outs[i], os.Stderr
			if err := cmds[i].Start(); err != nil {
				return err
			}
		}
		total, longest := 0, time.Duration(0)
		var per []string
		for i, c := range cmds {
			if err := c.Wait(); err != nil {
				return fmt.Errorf("admitter %d: %w", i, err)
			}
			var r bench.AdmitResult
			if err := json.Unmarshal([]byte(outs[i].String()), &r); err != nil {
				return fmt.Errorf("admitter %d: %q: %w", i, outs[i].String(), err)
			}
			total += r.Admitted
			longest = max(longest, r.Elapsed)
			per = append(per, fmt.Sprintf("%.0f/s", float64(r.Admitted)/r.Elapsed.Seconds()))
		}
		fmt.Fprintf(w, "| %d | %.0f | %s |\n", n, float64(total)/longest.Seconds(), strings.Join(per, " + "))
	}
	fmt.Fprintln(w)
	return nil
}

// helperEnv makes hexbench run as a helper process (a second SQLite admitter).
const helperEnv = "HEXBENCH_HELPER"

func runHelper(mode string, args []string) int {
	if mode != "admit" || len(args) != 2 {
		fmt.Fprintln(os.Stderr, "hexbench helper: want mode admit and PATH DURATION")
		return 2
	}
	d, err := time.ParseDuration(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hexbench helper:", err)
		return 2
	}
	r, err := bench.AdmitLoop(context.Background(), args[0], d, time.Now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hexbench helper:", err)
		return 1
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}

// tempFS names the file system holding dir (tmpfs numbers are not disk numbers).
func tempFS(dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return dir
	}
	best, fstype := "", ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && strings.HasPrefix(dir, f[1]) && len(f[1]) > len(best) {
			best, fstype = f[1], f[2]
		}
	}
	return fmt.Sprintf("%s (%s)", filepath.Dir(dir), fstype)
}

func roundDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(100 * time.Nanosecond).String()
	}
}

func mib(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(b)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
