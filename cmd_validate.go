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
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: hexcron validate --config FILE

Checks the config completely: strict keys, values, time zones, cron expressions and
whether any schedule alone exceeds a trigger cap. Prints every error and warning as
FILE:LINE: field: message.

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
		return reportConfigError(e, err)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	n := 0
	for _, s := range cfg.Schedules {
		n += len(s.Fanout())
	}
	fmt.Fprintf(e.stdout, "%s: ok: %d schedules (%d slots per firing time with matrix fan-out), %d warnings\n",
		*config, len(cfg.Schedules), n, len(cfg.Warnings))
	return exitOK
}

// reportConfigError prints a config load error: every problem and warning of a
// *planner.ConfigError, or the read error. It returns exitError.
func reportConfigError(e *env, err error) int {
	var ce *planner.ConfigError
	if !errors.As(err, &ce) {
		fmt.Fprintf(e.stderr, "hexcron: %v\n", err)
		return exitError
	}
	for _, p := range ce.Problems {
		fmt.Fprintf(e.stderr, "%s\n", p)
	}
	for _, w := range ce.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(e.stderr, "%d errors\n", len(ce.Problems))
	return exitError
}
