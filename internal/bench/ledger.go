package bench

import (
	"context"
	"fmt"
	"time"

	"hexcron/state"
)

// AdmitResult is what one process's admission loop achieved.
type AdmitResult struct {
	Calls    int           `json:"calls"`    // Admit calls
	Admitted int           `json:"admitted"` // calls that recorded an attempt
	Elapsed  time.Duration `json:"elapsed"`
}

// AdmitLoop calls Admit then Complete on the SQLite ledger at path as fast as it can
// for d, as the state package's TestAdmissionThroughput does: each Admit loads the
// last second of attempts and decides with a rule that never refuses, so every call
// is one BEGIN IMMEDIATE write transaction plus one Complete. now tells the time.
func AdmitLoop(ctx context.Context, path string, d time.Duration, now func() time.Time) (AdmitResult, error) {
	db, err := state.Open(ctx, path, state.Options{})
	if err != nil {
		return AdmitResult{}, fmt.Errorf("bench: admit loop: %w", err)
	}
	defer db.Close()
	var res AdmitResult
	start := now()
	decide := func([]state.Attempt) time.Duration { return 0 }
	for now().Sub(start) < d {
		t := now().Truncate(time.Millisecond)
		res.Calls++
		id, wait, err := db.Admit(ctx, state.Holder{}, t, t.Add(-time.Second), "", decide)
		if err != nil {
			return res, fmt.Errorf("bench: admit loop: call %d: %w", res.Calls, err)
		}
		if wait > 0 {
			continue
		}
		res.Admitted++
		if err := db.Complete(ctx, id, now()); err != nil {
			return res, fmt.Errorf("bench: admit loop: complete: %w", err)
		}
	}
	res.Elapsed = now().Sub(start)
	return res, nil
}
