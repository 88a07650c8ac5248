package postgres_test

import "fmt"

// helperEnv selects a helper mode: the test binary re-executes itself to get more OS
// processes (the admission hammer).
const helperEnv = "HEXCRON_PG_HELPER"

func runHelper(mode, arg string) int {
	fmt.Println("unknown helper mode", mode, arg)
	return 2
}
