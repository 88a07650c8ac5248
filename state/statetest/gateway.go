package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"hexcron/state"
)

// gwSub is a submission of client ci at instant at (slot key from it).
func gwSub(at time.Time, key, hash string) state.Submission {
	return state.Submission{
		Slot: state.Slot{Key: fmt.Sprintf("project:p1@%s+manual", at.UTC().Format("2006-01-02T15:04:05.000Z")), Schedule: "project:p1",
			Nominal: at, Planned: at, Kind: state.KindManual, Project: "p1", Client: "ci", Deadline: at.Add(time.Minute)},
		Key: key, Hash: hash, Body: `{"inputParams":{"a":1}}`, Expires: at.Add(24 * time.Hour),
	}
}

func noQuota([]time.Time) time.Duration { return 0 }

// testSubmit: a submission is a planned manual slot carrying its client, key and
// deadline; the same key and hash return it; another hash is refused; a key whose slot
// was skipped makes a new slot.
func testSubmit(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	got, err := db.Submit(ctx, gwSub(t0, "k1", "h1"), t0, t0.Add(-time.Hour), noQuota)
	if err != nil || !got.Created {
		t.Fatalf("Submit = %+v, %v", got, err)
	}
	s, err := db.Slot(ctx, got.Slot.Key)
	if err != nil || s.State != state.StatePlanned || s.Kind != state.KindManual || s.Client != "ci" || s.IdemKey != "k1" ||
		!s.Deadline.Equal(t0.Add(time.Minute)) || s.Project != "p1" || !s.Nominal.Equal(t0) {
		t.Fatalf("slot %+v, %v", s, err)
	}
	again, err := db.Submit(ctx, gwSub(t0.Add(time.Second), "k1", "h1"), t0.Add(time.Second), t0, noQuota)
	if err != nil || again.Created || again.Slot.Key != s.Key {
		t.Fatalf("same key again = %+v, %v; want slot %s", again, err, s.Key)
	}
	var kr *state.KeyReusedError
	_, err = db.Submit(ctx, gwSub(t0.Add(2*time.Second), "k1", "h2"), t0.Add(2*time.Second), t0, noQuota)
	if !errors.Is(err, state.ErrKeyReused) || !errors.As(err, &kr) || kr.Slot != s.Key {
		t.Fatalf("same key, another request: %v", err)
	}
	// Another client's key of the same name is its own.
	other := gwSub(t0.Add(3*time.Second), "k1", "h2")
	other.Slot.Client = "cd"
	if o, err := db.Submit(ctx, other, t0.Add(3*time.Second), t0, noQuota); err != nil || !o.Created {
		t.Fatalf("client cd, key k1: %+v, %v", o, err)
	}
	// Without a key every submission is a new slot.
	for i := range 2 {
		at := t0.Add(time.Duration(4+i) * time.Second)
		if n, err := db.Submit(ctx, gwSub(at, "", "h1"), at, t0, noQuota); err != nil || !n.Created {
			t.Fatalf("no key #%d: %+v, %v", i, n, err)
		}
	}
	// A key whose slot ended without reaching Hex can be used again.
	if err := db.SkipSlot(ctx, s, "no room within wait", t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(11 * time.Second)
	re, err := db.Submit(ctx, gwSub(at, "k1", "h1"), at, t0, noQuota)
	if err != nil || !re.Created || re.Slot.Key == s.Key {
		t.Fatalf("after the key's slot was skipped: %+v, %v", re, err)
	}
	if again, err := db.Submit(ctx, gwSub(at.Add(time.Second), "k1", "h1"), at.Add(time.Second), t0, noQuota); err != nil || again.Slot.Key != re.Slot.Key {
		t.Fatalf("the key now names %s: %+v, %v", re.Slot.Key, again, err)
	}
	// A triggered slot stays the key's answer, and its run finds it.
	if err := db.Transition(ctx, re.Slot.Key, state.StateTriggering, state.Update{At: at}); err != nil {
		t.Fatal(err)
	}
	if err := db.Transition(ctx, re.Slot.Key, state.StateTriggered, state.Update{At: at, RunID: "run-9", RunURL: "https://hex/r9"}); err != nil {
		t.Fatal(err)
	}
	if again, err := db.Submit(ctx, gwSub(at.Add(2*time.Second), "k1", "h1"), at.Add(2*time.Second), t0, noQuota); err != nil ||
		again.Created || again.Slot.RunID != "run-9" {
		t.Fatalf("key of a triggered slot: %+v, %v", again, err)
	}
	if r, err := db.SlotOfRun(ctx, "run-9"); err != nil || r.Key != re.Slot.Key || r.Client != "ci" {
		t.Fatalf("SlotOfRun = %+v, %v", r, err)
	}
	if _, err := db.SlotOfRun(ctx, "run-0"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("SlotOfRun(unknown) = %v", err)
	}
	// The same key twice in one millisecond-named slot cannot happen; two slots with
	// one key name can: the second is refused as existing.
	if _, err := db.Submit(ctx, gwSub(t0.Add(4*time.Second), "", "h"), at, t0, noQuota); !errors.Is(err, state.ErrSlotExists) {
		t.Fatalf("an existing slot key: %v", err)
	}
	hist, err := db.History(ctx, state.Filter{Client: "ci"})
	if err != nil || len(hist) != 4 {
		t.Fatalf("history of client ci: %d slots, %v", len(hist), err)
	}
	if all, err := db.History(ctx, state.Filter{Gateway: true}); err != nil || len(all) != 5 {
		t.Fatalf("gateway history: %d slots, %v", len(all), err)
	}
	// Planned ones, with the body the key stored.
	q, err := db.QueuedRequests(ctx)
	if err != nil || len(q) != 3 {
		t.Fatalf("QueuedRequests = %d, %v", len(q), err)
	}
	for _, r := range q {
		if r.Slot.IdemKey != "" && r.Body != `{"inputParams":{"a":1}}` || r.Slot.IdemKey == "" && r.Body != "" {
			t.Errorf("queued %s key %q body %q", r.Slot.Key, r.Slot.IdemKey, r.Body)
		}
	}
}

// testSubmitQuota: the quota sees the client's slots since the given instant, skipped
// ones excepted, and a positive wait records nothing.
func testSubmitQuota(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	var keys []string
	for i := range 3 {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		got, err := db.Submit(ctx, gwSub(at, "", "h"), at, at.Add(-time.Hour), noQuota)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, got.Slot.Key)
	}
	if err := db.SkipSlot(ctx, state.Slot{Key: keys[1]}, "abandoned", t0.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(65 * time.Minute)
	var seen []time.Time
	got, err := db.Submit(ctx, gwSub(now, "k", "h"), now, now.Add(-time.Hour), func(recent []time.Time) time.Duration {
		seen = recent
		return 7 * time.Minute
	})
	if err != nil || got.Wait != 7*time.Minute || got.Created {
		t.Fatalf("refused by quota: %+v, %v", got, err)
	}
	if len(seen) != 1 || !seen[0].Equal(t0.Add(20*time.Minute)) {
		t.Fatalf("quota saw %v, want only the slot at %s (the one at %s is older than the hour, the skipped one does not count)",
			seen, t0.Add(20*time.Minute), t0)
	}
	if _, err := db.Slot(ctx, gwSub(now, "k", "h").Slot.Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a refused request left a slot: %v", err)
	}
	if again, err := db.Submit(ctx, gwSub(now, "k", "h"), now, now.Add(-time.Hour), noQuota); err != nil || !again.Created {
		t.Fatalf("the key of a refused request is free: %+v, %v", again, err)
	}
}

// testSubmitOneKey: concurrent submissions with one key, through two handles on the
// database (two processes), make one slot.
func testSubmitOneKey(t *testing.T, be Backend) {
	ctx := context.Background()
	dbs := []Store{be.Open(t)}
	dbs = append(dbs, be.Second(t, dbs[0]))
	const n = 8
	var wg sync.WaitGroup
	res := make([]state.Submitted, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := t0.Add(time.Duration(i) * time.Millisecond)
			res[i], errs[i] = dbs[i%2].Submit(ctx, gwSub(at, "same", "h"), at, t0.Add(-time.Hour), noQuota)
		}()
	}
	wg.Wait()
	created, slot := 0, ""
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("submission %d: %v", i, errs[i])
		}
		if res[i].Created {
			created++
		}
		if slot == "" {
			slot = res[i].Slot.Key
		} else if res[i].Slot.Key != slot {
			t.Errorf("submission %d got slot %s, another got %s", i, res[i].Slot.Key, slot)
		}
	}
	if created != 1 {
		t.Fatalf("%d slots created for one key", created)
	}
}

// testQuotaConcurrent: submissions racing through two handles (two processes) never
// pass one quota place twice: with a quota of 3 per hour, 3 of 12 are recorded and the
// others refused with a wait.
func testQuotaConcurrent(t *testing.T, be Backend) {
	ctx := context.Background()
	dbs := []Store{be.Open(t)}
	dbs = append(dbs, be.Second(t, dbs[0]))
	const n, limit = 12, 3
	quota := func(recent []time.Time) time.Duration {
		if len(recent) >= limit {
			return time.Minute
		}
		return 0
	}
	var wg sync.WaitGroup
	res := make([]state.Submitted, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := t0.Add(time.Duration(i) * time.Millisecond)
			res[i], errs[i] = dbs[i%2].Submit(ctx, gwSub(at, "", "h"), at, t0.Add(-time.Hour), quota)
		}()
	}
	wg.Wait()
	created, refused := 0, 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Fatalf("submission %d: %v", i, errs[i])
		case res[i].Created:
			created++
		case res[i].Wait > 0:
			refused++
		}
	}
	hist, err := dbs[0].History(ctx, state.Filter{Client: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if created != limit || refused != n-limit || len(hist) != limit {
		t.Fatalf("%d created, %d refused, %d slots recorded; want %d, %d, %d (one quota place taken twice?)",
			created, refused, len(hist), limit, n-limit, limit)
	}
}

// testIdempotencyTTL: an expired key is forgotten (a new slot), PruneIdempotency
// deletes expired keys, and pruning a slot forgets its key.
func testIdempotencyTTL(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	first, err := db.Submit(ctx, gwSub(t0, "k", "h"), t0, t0, noQuota)
	if err != nil {
		t.Fatal(err)
	}
	late := t0.Add(25 * time.Hour)
	second, err := db.Submit(ctx, gwSub(late, "k", "h2"), late, late, noQuota)
	if err != nil || !second.Created || second.Slot.Key == first.Slot.Key {
		t.Fatalf("after the key expired: %+v, %v", second, err)
	}
	for i := range 50 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, err := db.Submit(ctx, gwSub(at.Add(time.Second), fmt.Sprintf("key-%d", i), "h"), at, at, noQuota); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.PruneIdempotency(ctx, t0.Add(24*time.Hour+30*time.Minute))
	if err != nil || n != 30 {
		t.Fatalf("PruneIdempotency = %d, %v; want the 30 keys expired by then", n, err)
	}
	// Their slots are still there; a key of a pruned slot is gone with it.
	if err := db.SkipSlot(ctx, state.Slot{Key: second.Slot.Key}, "x", late); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PruneHistory(ctx, late.Add(time.Second), 1000); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneIdempotency(ctx, late.Add(25*time.Hour)); err != nil || n != 20 {
		t.Fatalf("PruneIdempotency later = %d, %v; want the other 20 (the pruned slot's key went with it)", n, err)
	}
}
