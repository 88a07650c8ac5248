package main

import "fmt"

// cmdStatus is not built yet; its issue replaces this file.
func cmdStatus(e *env, args []string) int {
	fmt.Fprintln(e.stderr, "hexcron: this command is not built yet")
	return exitError
}
