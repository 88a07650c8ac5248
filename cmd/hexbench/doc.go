package main

import (
	"fmt"
	"io"
	"time"
)

// writeDoc writes docs/performance.md around the measured tables.
func writeDoc(w io.Writer, o options, tables []byte) {
	fmt.Fprintf(w, `# Performance

How fast and how light hexcron is, and how close it gets to Hex's trigger caps without
a 429. Every number below was produced by one command, run from the repository root:

`+"```"+`
%s
`+"```"+`

on %s, %s. hexbench prints the same tables to stdout without `+"`-o`"+`; `+"`-only throughput,planner`"+`
picks sections and `+"`-idle 10s`"+` shortens the idle measurement. The code is `+"`cmd/hexbench`"+`
and `+"`internal/bench`"+`.

## Results

%s
## How to read these

- **Throughput.** hexsim counts Hex's limits with each window model (`+"`fixed`"+`: clock-aligned
  windows; `+"`anchored`"+`: windows that start at the first request; `+"`rolling`"+`: a sliding log)
  because Hex does not document which it uses. hexcron's sliding-log budget never puts more
  than the limit into any window however the server counts, so it gets no 429 and stays at
  60 per hour, the cap. The naive client (a 20/min and a 60/h token bucket, each refilled
  continuously and full at the start, and a 30 s·2ⁿ backoff on 429) also ends up near the
  hourly cap over 8 hours, but only by sending requests Hex refuses: each 429 row is a
  request that another client sharing the Hex user could not use. "runs created" counts the
  runs hexsim created during the simulated hours. hexbench cannot use testing/synctest (it
  is for tests), so it runs the experiment on a clock.Scaled virtual clock; every real
  millisecond of timer or scheduling delay becomes `+"`-speed`"+` virtual milliseconds, so
  its rows can differ from the synctest rows by a run or a 429. Keep the speed moderate:
  at 720x on a busy 2-CPU machine, hexcron's 30 s attempt timeout is 42 real ms, some
  attempts timed out, were resolved by listing runs, and hexcron fell to 57 per hour
  (still without a 429). The synctest rows are exact and deterministic.
- **Planner.** Time grows roughly linearly with firings when they fit. Under Hex's caps
  most firings are unplaced, and each unplaced firing carries its explanation, which
  costs more per firing. The daemon plans a 2-hour horizon by default, a few hundred
  firings for a large config.
- **Daemon.** Idle means no firing is due: the daemon sleeps until the next firing or
  the next plan. Start-up includes loading, validating and planning the config.
- **Ledger.** Hex allows 60 triggers an hour; the SQLite ledger admits thousands per
  second, so it is never the bottleneck, with one process or with `+"`hexcron trigger`"+`
  sharing the file with the daemon.
`, o.cmdline, machine(), time.Now().UTC().Format("2006-01-02"), tables)
}
