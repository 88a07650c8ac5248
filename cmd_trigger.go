package main

import "fmt"

// cmdTrigger is not built yet; its issue replaces this file.
func cmdTrigger(e *env, args []string) int {
	fmt.Fprintln(e.stderr, "hexcron: this command is not built yet")
	return exitError
}
