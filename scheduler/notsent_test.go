package scheduler

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"hexcron/hexclient"
	"hexcron/state"
)

// TestNotSentLeavesNoClaim: against the SQLite ledger, RunProject attempts that never
// left (every connection refused) leave no ledger row counting against the budget and
// do not leave the slot triggering: it is back to planned, with no attempt.
func TestNotSentLeavesNoClaim(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "hexcron.db"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ten, err := Register(ctx, TenureConfig{Store: db, Role: state.RoleTrigger})
	if err != nil {
		t.Fatal(err)
	}
	hc, err := hexclient.New(hexclient.Config{BaseURL: "http://" + addr + "/api/v1", Token: hexclient.StaticToken("hxtp_ok"),
		Ledger: Ledger{DB: db, Tenure: ten}, ServerBackoff: hexclient.Backoff{Base: 50 * time.Millisecond, Cap: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	key := "report@2026-11-30T11:30:00Z+manual"
	if _, err := db.PlanSlot(ctx, state.Slot{Key: key}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = hc.Trigger(ctx, hexclient.TriggerRequest{Slot: key, ProjectID: "p", Deadline: time.Now().Add(time.Second)})
	var dl *hexclient.DeadlineError
	if !errors.As(err, &dl) || !dl.Unresolved.IsZero() {
		t.Fatalf("Trigger: %v", err)
	}
	s, err := db.Slot(ctx, key)
	if err != nil || s.State != state.StatePlanned || s.Attempts != 0 {
		t.Errorf("slot after attempts that never left: %s with %d attempts (%v); want planned, 0", s.State, s.Attempts, err)
	}
	if as, _ := db.Attempts(ctx, time.Time{}); len(as) != 0 {
		t.Errorf("%d ledger rows still count", len(as))
	}
}
