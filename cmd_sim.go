package main

import "fmt"

// cmdSim is not built yet; its issue replaces this file.
func cmdSim(e *env, args []string) int {
	fmt.Fprintln(e.stderr, "hexcron: this command is not built yet")
	return exitError
}
