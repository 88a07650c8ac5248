// Command hexbench measures hexcron and prints the Markdown performance table of
// docs/performance.md: trigger throughput and 429s under a saturated backlog (hexcron
// against a naive token bucket, per window model), the planner's time and memory, the
// daemon's start-up time, idle CPU and RSS, the wall time of a simulated day, and the
// SQLite ledger's admissions per second with one and two processes, and the trigger
// gateway's requests per second with their latency.
//
//	go run ./cmd/hexbench                        # everything, to stdout
//	go run ./cmd/hexbench -o docs/performance.md # write the document
//	go run ./cmd/hexbench -only throughput,planner -idle 10s
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are hexbench's flags.
type options struct {
	out      string
	only     map[string]bool
	speed    float64
	hours    float64
	idle     time.Duration
	counts   []int
	firings  []int
	ledgerD  time.Duration
	gwTime   time.Duration
	gwConns  []int
	cmdline  string
	progress io.Writer
}

func (o options) want(section string) bool { return len(o.only) == 0 || o.only[section] }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hexbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var only, counts, firings, gwConns string
	fs.StringVar(&o.out, "o", "", "write the Markdown document to this file (default: print the tables to stdout)")
	fs.StringVar(&only, "only", "", "comma-separated sections: throughput, planner, daemon, ledger, gateway (default all)")
	fs.Float64Var(&o.speed, "speed", 120, "throughput: virtual seconds per real second of the clock.Scaled the experiment runs on (8 h take 4 min at 120)")
	fs.Float64Var(&o.hours, "hours", 8, "throughput: simulated hours per run")
	fs.DurationVar(&o.idle, "idle", time.Minute, "daemon: how long to measure each idle daemon's CPU")
	fs.StringVar(&counts, "schedules", "10,500,5000", "daemon: schedule counts")
	fs.StringVar(&firings, "firings", "1000,10000,100000", "planner: firing counts (multiples of 100)")
	fs.DurationVar(&o.ledgerD, "ledger-time", 2*time.Second, "ledger: how long each admission run lasts")
	fs.DurationVar(&o.gwTime, "gateway-time", 10*time.Second, "gateway: how long each load lasts")
	fs.StringVar(&gwConns, "gateway-conns", "1,4,16", "gateway: concurrent connections of the load generator, one run per count")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.only[s] = true
		}
	}
	var err error
	if o.counts, err = ints(counts); err != nil {
		fmt.Fprintln(stderr, "hexbench: -schedules:", err)
		return 2
	}
	if o.gwConns, err = ints(gwConns); err != nil {
		fmt.Fprintln(stderr, "hexbench: -gateway-conns:", err)
		return 2
	}
	if o.firings, err = ints(firings); err != nil {
		fmt.Fprintln(stderr, "hexbench: -firings:", err)
		return 2
	}
	o.cmdline = "go run ./cmd/hexbench " + strings.Join(args, " ")
	o.progress = stderr

	var body bytes.Buffer
	sections := []struct {
		name string
		fn   func(context.Context, options, io.Writer) error
	}{
		{"throughput", throughputSection},
		{"planner", plannerSection},
		{"daemon", daemonSection},
		{"ledger", ledgerSection},
		{"gateway", gatewaySection},
	}
	failed := false
	for _, s := range sections {
		if !o.want(s.name) {
			continue
		}
		fmt.Fprintf(stderr, "hexbench: %s...\n", s.name)
		start := time.Now()
		if err := s.fn(ctx, o, &body); err != nil {
			fmt.Fprintf(stderr, "hexbench: %s: %v\n", s.name, err)
			fmt.Fprintf(&body, "\n_%s: not measured: %v_\n", s.name, err)
			failed = true
		}
		fmt.Fprintf(stderr, "hexbench: %s done in %s\n", s.name, time.Since(start).Round(time.Millisecond))
		if ctx.Err() != nil {
			return 1
		}
	}
	if o.out == "" {
		stdout.Write(body.Bytes())
	} else {
		var doc bytes.Buffer
		writeDoc(&doc, o, body.Bytes())
		if err := os.WriteFile(o.out, doc.Bytes(), 0o644); err != nil {
			fmt.Fprintln(stderr, "hexbench:", err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// machine describes where the numbers were taken.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
