package main

import "fmt"

// cmdRun is not built yet; its issue replaces this file.
func cmdRun(e *env, args []string) int {
	fmt.Fprintln(e.stderr, "hexcron: this command is not built yet")
	return exitError
}
