package main

import "fmt"

// cmdHistory is not built yet; its issue replaces this file.
func cmdHistory(e *env, args []string) int {
	fmt.Fprintln(e.stderr, "hexcron: this command is not built yet")
	return exitError
}
