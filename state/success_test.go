package state

import (
	"context"
	"testing"
	"time"
)

func TestLastSuccess(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	seed(t, db, []struct {
		key   string
		state State
	}{
		{"a@2026-11-30T09:00:00Z", StateCompleted},
		{"a@2026-11-30T10:00:00Z", StateCompleted},
		{"a@2026-11-30T11:00:00Z", StateErrored}, // a later failure does not count
		{"b@2026-11-30T08:00:00Z", StateCompleted},
		{"b@2026-11-30T09:00:00Z", StateRunning},
		{"c@2026-11-30T09:00:00Z", StateSkipped}, // never succeeded: absent
	})
	ended := map[string]time.Time{
		"a@2026-11-30T09:00:00Z": t0.Add(-2 * time.Hour),
		"a@2026-11-30T10:00:00Z": t0.Add(-time.Hour + 1500*time.Millisecond),
		"a@2026-11-30T11:00:00Z": t0,
		"b@2026-11-30T08:00:00Z": t0.Add(-3 * time.Hour),
	}
	for key, at := range ended {
		if _, err := db.sql.Exec("UPDATE slots SET ended_ms = ? WHERE key = ?", at.UnixMilli(), key); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.LastSuccess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"a": t0.Add(-time.Hour + 1500*time.Millisecond), "b": t0.Add(-3 * time.Hour)}
	if len(got) != len(want) {
		t.Fatalf("LastSuccess = %v, want %v", got, want)
	}
	for s, w := range want {
		if !got[s].Equal(w) {
			t.Errorf("LastSuccess[%s] = %v, want %v", s, got[s], w)
		}
	}
}
