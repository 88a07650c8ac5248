package main

import "fmt"

// cmdValidate is not built yet; its issue replaces this file.
func cmdValidate(e *env, args []string) int {
	fmt.Fprintln(e.stderr, "hexcron: this command is not built yet")
	return exitError
}
