package scheduler

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Environment of the virtual-time tests (the simulated day and the soak).
const (
	// envSimSeed seeds hexsim's draws and the Hex client's jitter (the soak's generated
	// config keeps its own fixed seed).
	envSimSeed = "HEXCRON_SOAK_SEED"
	// envSimRepeat runs the test once for each of N consecutive seeds from the first.
	envSimRepeat = "HEXCRON_SOAK_REPEAT"
)

// simSeeds seeds one virtual-time run: hexsim's draws (ids, outcomes, faults) and the
// Hex client's jitter.
type simSeeds struct {
	sim, client int64
}

func (s simSeeds) String() string {
	if s.sim == s.client {
		return fmt.Sprintf("seed=%d", s.sim)
	}
	return fmt.Sprintf("seed=%d,client=%d", s.sim, s.client)
}

// forEachSeed calls run with def, or with the seed HEXCRON_SOAK_SEED names (hexsim and
// client alike); with HEXCRON_SOAK_REPEAT=N it runs N subtests, one per consecutive
// seed, and logs how many passed.
func forEachSeed(t *testing.T, def simSeeds, run func(t *testing.T, seeds simSeeds)) {
	t.Helper()
	seeds := def
	if v := os.Getenv(envSimSeed); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSimSeed, v, err)
		}
		seeds = simSeeds{sim: n, client: n}
	}
	repeat := 1
	if v := os.Getenv(envSimRepeat); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive count", envSimRepeat, v)
		}
		repeat = n
	}
	if repeat == 1 {
		t.Logf("%v (%s=N reruns with another seed)", seeds, envSimSeed)
		run(t, seeds)
		return
	}
	var failed []string
	for i := range int64(repeat) {
		s := simSeeds{sim: seeds.sim + i, client: seeds.sim + i}
		if !t.Run(s.String(), func(t *testing.T) { run(t, s) }) {
			failed = append(failed, s.String())
		}
	}
	t.Logf("%s=%d: %d of %d seeds passed; failed: %v", envSimRepeat, repeat, repeat-len(failed), repeat, failed)
}
