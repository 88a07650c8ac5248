package main

import (
	"errors"
	"flag"
	"fmt"

	"hexcron/planner"
)

// cmdValidate checks a config file and reports every problem with FILE:LINE.
// Exit 0 when the config is valid (warnings may be printed), 1 when it is not.
func cmdValidate(e *env, args []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	config := fs.String("config", "", "the schedules YAML file to check (required)")
	verbose := fs.Bool("verbose", false, "print each warning, not one line per kind")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: hexcron validate --config FILE [--verbose]

Checks the config completely: strict keys, values, time zones, cron expressions and
whether any schedule alone exceeds a trigger cap. Prints every error as
FILE:LINE: field: message, and every warning the same way, except that a warning
more than three schedules share is one line: the count and the first three
schedules (--verbose prints each).

Exit codes: 0 valid (warnings may be printed), 1 invalid or unreadable, 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *config == "" || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "hexcron validate: --config FILE is required and takes no other arguments")
		fs.Usage()
		return exitUsage
	}
	cfg, err := planner.LoadFile(*config)
	if err != nil {
		return printConfigError(e, err, *verbose)
	}
	printWarnings(e, cfg.Warnings, *verbose)
	n := 0
	for _, s := range cfg.Schedules {
		n += len(s.Fanout())
	}
	fmt.Fprintf(e.stdout, "%s: ok: %d schedules (%d slots per firing time with matrix fan-out), %d warnings\n",
		*config, len(cfg.Schedules), n, len(cfg.Warnings))
	return exitOK
}

// reportConfigError prints a config load error: every problem and the warnings of a
// *planner.ConfigError (grouped), or the read error. It returns exitError.
func reportConfigError(e *env, err error) int { return printConfigError(e, err, false) }

// printConfigError is reportConfigError, with every warning on its own line when
// verbose.
func printConfigError(e *env, err error, verbose bool) int {
	var ce *planner.ConfigError
	if !errors.As(err, &ce) {
		fmt.Fprintf(e.stderr, "hexcron: %v\n", err)
		return exitError
	}
	for _, p := range ce.Problems {
		fmt.Fprintf(e.stderr, "%s\n", p)
	}
	printWarnings(e, ce.Warnings, verbose)
	fmt.Fprintf(e.stderr, "%d errors\n", len(ce.Problems))
	return exitError
}

// printWarnings prints config warnings to stderr: each one when verbose, else one
// line per kind several schedules share (planner.GroupWarnings).
func printWarnings(e *env, ws []planner.Problem, verbose bool) {
	if verbose {
		for _, w := range ws {
			fmt.Fprintf(e.stderr, "warning: %s\n", w)
		}
		return
	}
	lines, grouped := planner.GroupWarnings(ws)
	for _, l := range lines {
		fmt.Fprintf(e.stderr, "warning: %s\n", l)
	}
	if grouped {
		fmt.Fprintln(e.stderr, "(--verbose prints each warning)")
	}
}
