// Command hexcron triggers runs of Hex projects on cron schedules kept in YAML, and
// never trips Hex's trigger caps. See README.md.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise the
// module version or "dev".
var version = ""

// Exit codes shared by every command.
const (
	exitOK       = 0
	exitError    = 1 // runtime failure, or invalid config for validate, plan, status, trigger, sim
	exitUsage    = 2 // bad flags or arguments
	exitUnplaced = 3 // `plan`: some firing cannot be placed under the caps
	// exitConfig is `run` refusing to start on an invalid or unreadable config:
	// sysexits.h's EX_CONFIG, named in the unit's RestartPreventExitStatus= so that
	// systemd does not restart a daemon that cannot start until someone edits the file.
	exitConfig = 78
)

// env is what a command may touch of the outside world; tests swap it.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time // the wall clock of commands that report "now" (status, history, plan)
}

type command struct {
	name, summary string
	run           func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"run", "run the daemon: fire the plan, track runs (--simulate for a demo)", cmdRun},
		{"plan", "forecast every hour's trigger cost and how the caps are met", cmdPlan},
		{"validate", "check a config file and report every problem with FILE:LINE", cmdValidate},
		{"check", "ask Hex whether the token, the base URL and every project are right", cmdCheck},
		{"status", "per schedule: last run, next firing, pauses, budget used now", cmdStatus},
		{"next", "the coming firings: planned instants and shifts, as the daemon plans them", cmdNext},
		{"history", "slots and runs from the database, filtered", cmdHistory},
		{"trigger", "run one schedule now, through the same budget", cmdTrigger},
		{"pause", "pause one schedule (stored in the database; the daemon skips its firings)", cmdPause},
		{"resume", "end the pause of a schedule", cmdResume},
		{"sim", "serve a simulated Hex API (for tests and demos)", cmdSim},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now}))
}

func run(args []string, e *env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			return run([]string{args[1], "--help"}, e)
		}
		usage(e.stdout)
		return exitOK
	case "--version", "-version":
		return cmdVersion(e, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "hexcron: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `hexcron triggers Hex project runs on cron schedules without tripping Hex's caps.

Usage:
  hexcron COMMAND [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "hexcron COMMAND --help" for a command's flags.
Exit codes: 0 ok, 1 error or invalid config, 2 usage, 3 plan has firings that cannot fit,
78 run cannot start on an invalid config (EX_CONFIG: systemd does not restart it).
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func cmdVersion(e *env, args []string) int {
	fs := newFlagSet(e, "version", "Usage: hexcron version\n\nPrint the version.\n")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "hexcron version: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "hexcron %s\n", versionString())
	return exitOK
}
