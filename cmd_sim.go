package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"hexcron/clock"
	"hexcron/hexclient/hexsim"
)

const simUsage = `Usage: hexcron sim [--addr HOST:PORT] [--config sim.yaml] [--seed N]

Serve a simulated Hex API (hexsim) for tests and demos. Clients use the base URL
printed on stdout: "hexcron sim: listening on http://HOST:PORT/api/v1".
With --addr 127.0.0.1:0 the kernel picks a free port. SIGINT or SIGTERM stops it (exit 0).

Without --config it accepts any well-formed token (hxtp_... or hxtw_...; each token is
its own Hex user), treats any project UUID as a published project, and applies Hex's
default limits: RunProject 20/1m and 60/1h, 60/1m for all calls of a user (a window
anchored at its first call, as Hex documents), 30/1m for GetRunStatus and
GetProjectRuns, 25 running kernels (503 beyond), fixed clock-aligned windows for the
trigger and status rules, 429s with RateLimit-*/X-RateLimit-* headers. Unknown
inputParams are ignored (documented). Runs are PENDING 2s, RUNNING 30s, then
COMPLETED, listed newest first.

A config file (YAML, unknown keys are errors; every key optional) narrows that:

  seed: 1                          # --seed overrides
  shared_user: false               # open mode: all tokens are one user "default"
  tokens: [hxtp_abc]               # only these tokens (each its own user) ...
  users:                           # ... and these users with several tokens
    - {name: alice, tokens: [hxtp_a1, hxtw_a2]}
  read_only_tokens: [hxtw_ro]      # tokens without the Run projects scope: 403 on RunProject
  projects:                        # only these projects (others: 404)
    - {id: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, title: Daily, published: true, inputs: [region],
       access: full,               # full | read (403 on RunProject) | none (403 on everything)
       version: 1,                 # projectVersion
       schedules: [{cadence: CUSTOM, enabled: true, cron: "0 6 * * *", timezone: UTC}]}
  reject_unknown_inputs: false     # true: 422 {invalid, notFound} for inputs not declared
  list_order: newest               # GetProjectRuns: newest | oldest | unordered
  limits:
    trigger:   [{limit: 20, per: 1m}, {limit: 60, per: 1h}]
    all_calls: [{limit: 60, per: 1m}]
    status:    [{limit: 30, per: 1m}]
    kernels: 25                    # negative: no cap
    window: fixed                  # trigger and status rules: fixed | anchored | rolling
    all_calls_window: anchored     # all-calls rules: fixed | anchored | rolling
    style: reset                   # reset | retry-after | both | none | x-ratelimit
    reset_unit: unix               # X-RateLimit-Reset: unix | unix-ms | seconds
  runs:
    pending: 2s
    pending_jitter: 0s
    running: 30s
    running_jitter: 0s
    outcomes: {COMPLETED: 90, ERRORED: 5, KILLED: 1, UNABLE_TO_ALLOCATE_KERNEL: 2, STUCK: 1, UNKNOWN: 1}
    unknown_status: QUEUED_FOR_GPU
    conflict_409: false            # 409 while the project has a run going
  faults:                          # RunProject faults
    probabilities: {5xx-after-create: 0.1, drop-after-create: 0.05}
    next: [5xx-before-create, none]
    at: {3: delay}
    delay: 2m
    retry_after: 30s
  base_url: ""                     # API base in runStatusUrl/nextPage (default: from Host)
  app_url: https://app.hex.tech    # UI base in runUrl
  project_version_string: false
  latency: {min: 20ms, max: 2s}    # every answer delayed by a seeded draw (default: none)

Faults: 5xx-after-create, 5xx-before-create, delay, drop-after-create, 409, 422, 401,
429, 503, none. Debug endpoints (no auth; hexsim is a test tool): GET /_sim/requests,
GET /_sim/runs, POST /_sim/rotate {"old","new"}, POST /_sim/faults
{"clear","next","at","probabilities"}, POST /_sim/runs {"projectId","runTrigger"}.
See docs/hexsim.md.

Flags:
`

// cmdSim serves hexsim over TCP until SIGINT or SIGTERM.
func cmdSim(e *env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runSim(ctx, e, args)
}

// runSim is cmdSim stopped by ctx instead of signals, so tests can stop it.
func runSim(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "`HOST:PORT` to listen on")
	cfgPath := fs.String("config", "", "sim config `FILE` (YAML)")
	seed := fs.Int64("seed", 0, "seed for ids, jitter, outcomes and fault draws (overrides the config's)")
	usage := func() {
		fmt.Fprint(fs.Output(), simUsage)
		fs.PrintDefaults()
	}
	fs.Usage = usage
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			usage()
			return exitOK
		}
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "hexcron sim: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	var cfg hexsim.Config
	if *cfgPath != "" {
		var err error
		if cfg, err = hexsim.LoadConfig(*cfgPath); err != nil {
			fmt.Fprintf(e.stderr, "hexcron sim: %v\n", err)
			return exitError
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "seed" {
			cfg.Seed = *seed
		}
	})
	cfg.Clock = clock.System{}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(e.stderr, "hexcron sim: listen: %v\n", err)
		return exitError
	}
	srv := &http.Server{Handler: hexsim.New(cfg), ReadHeaderTimeout: 10 * time.Second}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		fmt.Fprintln(e.stderr, "hexcron sim: warning: listening beyond loopback; the /_sim debug endpoints need no token")
	}
	fmt.Fprintf(e.stdout, "hexcron sim: listening on http://%s/api/v1\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(e.stderr, "hexcron sim: serve: %v\n", err)
		return exitError
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close() // a delayed response is still waiting: drop it
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(e.stderr, "hexcron sim: serve: %v\n", err)
		return exitError
	}
	fmt.Fprintln(e.stdout, "hexcron sim: stopped")
	return exitOK
}
