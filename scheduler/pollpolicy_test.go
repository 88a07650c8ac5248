package scheduler

import (
	"testing"
	"time"
)

func TestPollIntervalGrowsWithAge(t *testing.T) {
	prev := time.Duration(0)
	for _, age := range []time.Duration{0, time.Minute, 5 * time.Minute, 30 * time.Minute, 3 * time.Hour} {
		got := pollInterval(age)
		if got < prev {
			t.Fatalf("pollInterval(%v) = %v, shorter than for a younger run (%v)", age, got, prev)
		}
		prev = got
	}
	if pollInterval(0) >= pollInterval(3*time.Hour) {
		t.Fatal("old runs are not polled less often than young ones")
	}
}
