package scheduler

import (
	"testing"

	"hexcron/hexclient"
	"hexcron/state"
)

// TestStatusOfStateInvertsStateOfStatus: every Hex status hexcron knows maps to a slot
// state and back to itself, and the states no Hex status maps to read as Hex would
// report them.
func TestStatusOfStateInvertsStateOfStatus(t *testing.T) {
	for _, st := range []hexclient.Status{hexclient.StatusPending, hexclient.StatusRunning, hexclient.StatusCompleted,
		hexclient.StatusErrored, hexclient.StatusKilled, hexclient.StatusUnableToAllocateKernel} {
		s, ok := StateOfStatus(st)
		if !ok {
			t.Fatalf("StateOfStatus(%s) unknown", st)
		}
		if back := StatusOfState(s); back != st {
			t.Errorf("%s -> %s -> %s", st, s, back)
		}
	}
	for s, want := range map[state.State]hexclient.Status{
		state.StatePlanned: hexclient.StatusPending, state.StateTriggering: hexclient.StatusPending,
		state.StateUnknown: hexclient.StatusErrored, state.StateTimedOut: hexclient.StatusKilled,
	} {
		if got := StatusOfState(s); got != want {
			t.Errorf("StatusOfState(%s) = %s, want %s", s, got, want)
		}
	}
}
