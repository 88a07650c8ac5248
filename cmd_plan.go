package main

import "fmt"

// cmdPlan is not built yet; its issue replaces this file.
func cmdPlan(e *env, args []string) int {
	fmt.Fprintln(e.stderr, "hexcron: this command is not built yet")
	return exitError
}
