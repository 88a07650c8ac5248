package state

import (
	"context"
	"testing"
	"time"
)

// TestPauseSurvivesReopen: a pause is in the file, not in the handle.
func TestPauseSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	p := Pause{Schedule: "alpha", Since: t0, By: "alice", Reason: "maintenance"}
	if err := db.SetPause(ctx, p); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	db.Close()
	ro, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Pauses(ctx, t0.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0] != p {
		t.Errorf("after reopening read-only: %+v, %v; want %+v", got, err, p)
	}
}
