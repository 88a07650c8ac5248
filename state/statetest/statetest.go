// Package statetest is the contract of hexcron's state: one suite of tests that every
// backend (SQLite in package state, PostgreSQL in state/postgres) passes unchanged.
// A backend's test calls Run with a Backend that opens fresh databases.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"hexcron/state"
)

// Store is the contract: what the scheduler, the ledger, the tenure and the commands
// need of a database, plus Slot (read one slot) for the tests.
type Store interface {
	Admit(ctx context.Context, by state.Holder, now, since time.Time, slot string, decide func([]state.Attempt) time.Duration) (int64, time.Duration, error)
	Complete(ctx context.Context, id int64, done time.Time) error
	Void(ctx context.Context, id int64, at time.Time) error
	Attempts(ctx context.Context, since time.Time) ([]state.Attempt, error)
	PruneLedger(ctx context.Context, before time.Time, limit int) (int64, error)
	PruneOwners(ctx context.Context, before time.Time) (int64, error)
	SlotAttempts(ctx context.Context, key string) ([]state.Attempt, error)
	BudgetUsed(ctx context.Context, now time.Time, windows []time.Duration) ([]int, error)
	SetHeartbeat(ctx context.Context, t time.Time) error
	Heartbeat(ctx context.Context) (time.Time, bool, error)
	RegisterOwner(ctx context.Context, role state.Role, host string, pid int, now time.Time, ttl time.Duration) (state.Owner, error)
	RenewOwner(ctx context.Context, id string, now time.Time, ttl time.Duration) (time.Time, error)
	ReleaseOwner(ctx context.Context, id string) error
	Owners(ctx context.Context) ([]state.Owner, error)
	AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (state.Lease, error)
	RenewLease(ctx context.Context, owner string, epoch int64, now time.Time, ttl time.Duration) (state.Lease, error)
	ReleaseLease(ctx context.Context, owner string, epoch int64, now time.Time) error
	CurrentLease(ctx context.Context) (state.Lease, error)
	PlanSlot(ctx context.Context, s state.Slot, now time.Time) (bool, error)
	Slot(ctx context.Context, key string) (state.Slot, error)
	Transition(ctx context.Context, key string, to state.State, u state.Update) error
	SkipSlot(ctx context.Context, s state.Slot, reason string, at time.Time) error
	ClaimedRun(ctx context.Context, runID string) (string, bool, error)
	SlotsInState(ctx context.Context, states ...state.State) ([]state.Slot, error)
	ActiveRuns(ctx context.Context) ([]state.Slot, error)
	LastRunPerSchedule(ctx context.Context) (map[string]state.Slot, error)
	NextPlanned(ctx context.Context, now time.Time) (map[string]state.Slot, error)
	History(ctx context.Context, f state.Filter) ([]state.Slot, error)
	PruneHistory(ctx context.Context, before time.Time, limit int) (int64, error)
	LastSuccess(ctx context.Context) (map[string]time.Time, error)
	SetPause(ctx context.Context, p state.Pause) error
	ClearPause(ctx context.Context, schedule string, now time.Time) (state.Pause, bool, error)
	Pauses(ctx context.Context, now time.Time) ([]state.Pause, error)
	PrunePauses(ctx context.Context, now time.Time) (int64, error)
	Submit(ctx context.Context, sub state.Submission, now, since time.Time, quota func([]time.Time) time.Duration) (state.Submitted, error)
	QueuedRequests(ctx context.Context) ([]state.Queued, error)
	PruneIdempotency(ctx context.Context, now time.Time) (int64, error)
	SlotOfRun(ctx context.Context, runID string) (state.Slot, error)
}

// Backend opens databases for the suite.
type Backend struct {
	// Open returns a fresh, empty database for one test; it is closed when the test ends.
	Open func(t *testing.T) Store
	// Second returns another handle on s's database (another process's view of it),
	// closed when the test ends.
	Second func(t *testing.T, s Store) Store
}

// Run runs the whole contract against b.
func Run(t *testing.T, be Backend) {
	t.Run("AdmitRecordsAndWaits", func(t *testing.T) { testAdmitRecordsAndWaits(t, be) })
	t.Run("AdmitClaimsSlot", func(t *testing.T) { testAdmitClaimsSlot(t, be) })
	t.Run("PruneLedgerAndBudgetUsed", func(t *testing.T) { testPruneLedgerAndBudgetUsed(t, be) })
	t.Run("AdmitConcurrentHandles", func(t *testing.T) { testAdmitConcurrentHandles(t, be) })
	t.Run("LeaseTakeover", func(t *testing.T) { testLeaseTakeover(t, be) })
	t.Run("TwoLeadersNeverBothTrigger", func(t *testing.T) { testTwoLeadersNeverBothTrigger(t, be) })
	t.Run("OwnerAdmission", func(t *testing.T) { testOwnerAdmission(t, be) })
	t.Run("Void", func(t *testing.T) { testVoid(t, be) })
	t.Run("TransitionErrorsAndFields", func(t *testing.T) { testTransitionErrorsAndFields(t, be) })
	t.Run("PlanSlot", func(t *testing.T) { testPlanSlot(t, be) })
	t.Run("SkipSlot", func(t *testing.T) { testSkipSlot(t, be) })
	t.Run("Queries", func(t *testing.T) { testQueries(t, be) })
	t.Run("PruneHistoryKeepsLedger", func(t *testing.T) { testPruneHistoryKeepsLedger(t, be) })
	t.Run("Heartbeat", func(t *testing.T) { testHeartbeat(t, be) })
	t.Run("LastSuccess", func(t *testing.T) { testLastSuccess(t, be) })
	t.Run("SlotProjectAndTimeout", func(t *testing.T) { testSlotProjectAndTimeout(t, be) })
	t.Run("PruneHistoryRules", func(t *testing.T) { testPruneHistoryRules(t, be) })
	t.Run("PruneLedgerInBatches", func(t *testing.T) { testPruneLedgerInBatches(t, be) })
	t.Run("PruneOwners", func(t *testing.T) { testPruneOwners(t, be) })
	t.Run("SlotStory", func(t *testing.T) { testSlotStory(t, be) })
	t.Run("Pauses", func(t *testing.T) { testPauses(t, be) })
	t.Run("GatewaySubmit", func(t *testing.T) { testSubmit(t, be) })
	t.Run("GatewaySubmitQuota", func(t *testing.T) { testSubmitQuota(t, be) })
	t.Run("GatewaySubmitOneKey", func(t *testing.T) { testSubmitOneKey(t, be) })
	t.Run("GatewayQuotaConcurrent", func(t *testing.T) { testQuotaConcurrent(t, be) })
	t.Run("GatewayIdempotencyTTL", func(t *testing.T) { testIdempotencyTTL(t, be) })
}

// t0 is an arbitrary instant the tests measure from.
var t0 = time.Date(2026, 11, 30, 11, 30, 0, 0, time.UTC)

const ttl = 15 * time.Second

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// Rule is a sliding-window limit used by SlidingDecide and Violations.
type Rule struct {
	Limit int
	Per   time.Duration
}

// SlidingDecide is a minimal correct admission rule for tests: an attempt is admitted
// at now when, for every rule, fewer than Limit attempts were sent after now-Per
// (including attempts other processes recorded with a later Sent than now).
func SlidingDecide(now time.Time, rules []Rule) func([]state.Attempt) time.Duration {
	return func(as []state.Attempt) time.Duration {
		var wait time.Duration
		for _, r := range rules {
			start := now.Add(-r.Per)
			var in []time.Time
			for _, a := range as {
				if a.Sent.After(start) {
					in = append(in, a.Sent)
				}
			}
			if len(in) >= r.Limit {
				w := in[len(in)-r.Limit].Add(r.Per).Sub(now) + time.Millisecond
				if w <= 0 {
					w = time.Millisecond
				}
				wait = max(wait, w)
			}
		}
		return wait
	}
}

// Violations brute-forces every window [sent_i, sent_i+Per) and describes each one
// holding more than Limit attempts.
func Violations(as []state.Attempt, rules []Rule) []string {
	var out []string
	for _, r := range rules {
		for _, a := range as {
			n := 0
			for _, b := range as {
				if !b.Sent.Before(a.Sent) && b.Sent.Before(a.Sent.Add(r.Per)) {
					n++
				}
			}
			if n > r.Limit {
				out = append(out, fmt.Sprintf("%d attempts in [%s, +%s) > %d", n, a.Sent.Format(time.RFC3339Nano), r.Per, r.Limit))
			}
		}
	}
	return out
}

func testAdmitRecordsAndWaits(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	rules := []Rule{{Limit: 2, Per: time.Minute}}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	id1, wait, err := db.Admit(ctx, state.Holder{}, at(0), at(-time.Hour), "", SlidingDecide(at(0), rules))
	if err != nil || wait != 0 || id1 == 0 {
		t.Fatalf("first Admit = %d, %v, %v", id1, wait, err)
	}
	// Sub-second precision survives the round trip.
	id2, _, err := db.Admit(ctx, state.Holder{}, at(1500*time.Millisecond), at(-time.Hour), "", SlidingDecide(at(1500*time.Millisecond), rules))
	if err != nil || id2 <= id1 {
		t.Fatalf("second Admit = %d, %v", id2, err)
	}
	var seen []state.Attempt
	id3, wait, err := db.Admit(ctx, state.Holder{}, at(2*time.Second), at(-time.Hour), "", func(as []state.Attempt) time.Duration {
		seen = as
		return SlidingDecide(at(2*time.Second), rules)(as)
	})
	if err != nil || id3 != 0 || wait != 58*time.Second+time.Millisecond {
		t.Errorf("third Admit = %d, %v, %v; want 0, 58.001s (the first attempt leaves the window)", id3, wait, err)
	}
	want := []state.Attempt{{ID: id1, Sent: at(0)}, {ID: id2, Sent: at(1500 * time.Millisecond)}}
	if !equalAttempts(seen, want) {
		t.Errorf("decide saw %+v, want %+v", seen, want)
	}
	if err := db.Complete(ctx, id1, at(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := db.Complete(ctx, id1, at(time.Hour)); err != nil { // first completion wins
		t.Fatal(err)
	}
	if err := db.Complete(ctx, 999, at(0)); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Complete(999) = %v, want state.ErrNotFound", err)
	}
	got, err := db.Attempts(ctx, at(-time.Hour))
	want[0].Done = at(300 * time.Millisecond)
	if err != nil || !equalAttempts(got, want) {
		t.Errorf("Attempts = %+v, %v\nwant %+v", got, err, want)
	}
	// since excludes older rows.
	if got, _ := db.Attempts(ctx, at(time.Second)); len(got) != 1 || got[0].ID != id2 {
		t.Errorf("Attempts(since 1s) = %+v, want only %d", got, id2)
	}
}

func equalAttempts(a, b []state.Attempt) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Slot != b[i].Slot || !a[i].Sent.Equal(b[i].Sent) || !a[i].Done.Equal(b[i].Done) {
			return false
		}
	}
	return true
}

func admitNow(at time.Time) func([]state.Attempt) time.Duration {
	return func([]state.Attempt) time.Duration { return 0 }
}

func testAdmitClaimsSlot(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	const key = "regional-report@2026-11-30T11:30:00Z[region=emea]"

	// No row yet: Admit creates it from the key, in triggering.
	id, _, err := db.Admit(ctx, state.Holder{}, t0, t0.Add(-time.Hour), key, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Slot(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != state.StateTriggering || s.Attempts != 1 || !s.LastAttempt.Equal(t0) || s.Schedule != "regional-report" ||
		s.Matrix["region"] != "emea" || !s.Nominal.Equal(t0) || s.Kind != state.KindScheduled {
		t.Errorf("slot after Admit = %+v", s)
	}
	as, _ := db.Attempts(ctx, t0.Add(-time.Hour))
	if len(as) != 1 || as[0].ID != id || as[0].Slot != key {
		t.Errorf("ledger = %+v, want one row for %s", as, key)
	}

	// A retry while triggering counts another attempt.
	t1 := t0.Add(10 * time.Second)
	if _, _, err := db.Admit(ctx, state.Holder{}, t1, t0.Add(-time.Hour), key, admitNow(t1)); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, key); s.Attempts != 2 || !s.LastAttempt.Equal(t1) {
		t.Errorf("after retry: attempts %d last %v", s.Attempts, s.LastAttempt)
	}

	// A decide that says wait changes nothing.
	if _, wait, err := db.Admit(ctx, state.Holder{}, t1, t0, key, func([]state.Attempt) time.Duration { return time.Second }); err != nil || wait != time.Second {
		t.Errorf("waiting Admit = %v, %v", wait, err)
	}
	if s, _ := db.Slot(ctx, key); s.Attempts != 2 {
		t.Errorf("a refused admission counted an attempt: %d", s.Attempts)
	}

	// Once triggered, the slot is taken: nothing recorded, decide not even asked.
	if err := db.Transition(ctx, key, state.StateTriggered, state.Update{At: t1, RunID: "run-1"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.Admit(ctx, state.Holder{}, t1, t0, key, func([]state.Attempt) time.Duration { t.Error("decide called for a taken slot"); return 0 })
	var st *state.SlotTakenError
	if !errors.As(err, &st) || !errors.Is(err, state.ErrSlotTaken) || st.State != state.StateTriggered || st.RunID != "run-1" {
		t.Errorf("Admit on a triggered slot: %v", err)
	}
	if want := "admit: slot " + key + " already triggered (state triggered, run run-1)"; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if as, _ := db.Attempts(ctx, t0.Add(-time.Hour)); len(as) != 2 {
		t.Errorf("ledger has %d rows, want 2", len(as))
	}

	// A planned slot goes to triggering through Admit.
	const planned = "nightly@2026-12-01T02:00:00Z"
	if _, err := db.PlanSlot(ctx, state.Slot{Key: planned, Planned: t0.Add(time.Hour)}, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Admit(ctx, state.Holder{}, t1, t0, planned, admitNow(t1)); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, planned); s.State != state.StateTriggering || s.Attempts != 1 || !s.Planned.Equal(t0.Add(time.Hour)) {
		t.Errorf("planned slot after Admit: %+v", s)
	}

	// A key that cannot be parsed is refused without a row.
	if _, _, err := db.Admit(ctx, state.Holder{}, t1, t0, "no-at-sign", admitNow(t1)); !errors.Is(err, state.ErrBadSlotKey) {
		t.Errorf("Admit with a bad key: %v", err)
	}
}

func testPruneLedgerAndBudgetUsed(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	// sent, done offsets from t0 (done < 0: in flight).
	rows := []struct{ sent, done time.Duration }{
		{-2 * time.Hour, -2*time.Hour + time.Second},
		{-61 * time.Second, -59 * time.Second}, // sent before the 1m window, answered inside it
		{-30 * time.Second, -29 * time.Second},
		{-10 * time.Second, -1}, // in flight
		{-70 * time.Minute, -70*time.Minute + time.Second},
	}
	for _, r := range rows {
		sent := t0.Add(r.sent)
		id, _, err := db.Admit(ctx, state.Holder{}, sent, time.Time{}, "", admitNow(sent))
		if err != nil {
			t.Fatal(err)
		}
		if r.done != -1 {
			db.Complete(ctx, id, t0.Add(r.done))
		}
	}
	got, err := db.BudgetUsed(ctx, t0, []time.Duration{time.Second, time.Minute, time.Hour, 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 3, 3, 5}; !equalInts(got, want) {
		t.Errorf("BudgetUsed = %v, want %v", got, want)
	}
	n, err := db.PruneLedger(ctx, t0.Add(-time.Hour), 10)
	if err != nil || n != 2 {
		t.Errorf("PruneLedger = %d, %v; want 2", n, err)
	}
	if as, _ := db.Attempts(ctx, time.Time{}); len(as) != 3 {
		t.Errorf("%d rows left, want 3", len(as))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAdmitConcurrentHandles: many goroutines on several handles of one file admit
// under a rule; no error, and no window breaks the rule.
func testAdmitConcurrentHandles(t *testing.T, be Backend) {
	ctx := context.Background()
	first := be.Open(t)
	rules := []Rule{{Limit: 5, Per: 50 * time.Millisecond}, {Limit: 12, Per: 200 * time.Millisecond}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		db := be.Second(t, first)
		for range 2 {
			wg.Go(func() {
				for admitted := 0; admitted < 15; {
					now := time.Now().Truncate(time.Millisecond)
					_, wait, err := db.Admit(ctx, state.Holder{}, now, now.Add(-time.Second), "", SlidingDecide(now, rules))
					if err != nil {
						errs <- err
						return
					}
					if wait == 0 {
						admitted++
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	as, _ := first.Attempts(ctx, time.Time{})
	if len(as) != 120 {
		t.Errorf("%d attempts, want 120", len(as))
	}
	for _, v := range Violations(as, rules) {
		t.Error(v)
	}
}

func register(t *testing.T, db Store, role state.Role, now time.Time) state.Owner {
	t.Helper()
	o, err := db.RegisterOwner(context.Background(), role, "host", 42, now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestLeaseTakeover: another daemon waits for the leader to lapse; every take
// increments the epoch; renewals by a superseded leader are fenced; a release frees
// the lease and keeps the epoch.
func testLeaseTakeover(t *testing.T, be Backend) {
	ctx := context.Background()
	a := be.Open(t)
	b := be.Second(t, a)
	oa := register(t, a, state.RoleDaemon, t0)
	ob := register(t, b, state.RoleDaemon, t0)
	if len(oa.ID) != 16 || oa.ID == ob.ID {
		t.Fatalf("owner ids %q %q: want 16 random hex characters each", oa.ID, ob.ID)
	}
	la, err := a.AcquireLease(ctx, oa.ID, t0, ttl)
	if err != nil || la.Epoch != 1 || la.Owner != oa.ID {
		t.Fatalf("first lease: %+v %v", la, err)
	}
	// b has no flock and a is live: refused, naming a.
	_, err = b.AcquireLease(ctx, ob.ID, t0.Add(time.Second), ttl)
	var held *state.LeaseHeldError
	if !errors.As(err, &held) || !errors.Is(err, state.ErrLeaseHeld) || held.Holder.ID != oa.ID || held.Holder.PID != 42 {
		t.Fatalf("lease held by a live leader: %v", err)
	}
	// a keeps it alive.
	if _, err := a.RenewLease(ctx, oa.ID, 1, t0.Add(10*time.Second), ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, ob.ID, t0.Add(20*time.Second), ttl); !errors.Is(err, state.ErrLeaseHeld) {
		t.Fatalf("after a's renewal: %v", err)
	}
	// a stops renewing: once lapsed, b takes it with epoch 2.
	lb, err := b.AcquireLease(ctx, ob.ID, t0.Add(26*time.Second), ttl)
	if err != nil || lb.Epoch != 2 || lb.Owner != ob.ID {
		t.Fatalf("takeover after expiry: %+v %v", lb, err)
	}
	_, err = a.RenewLease(ctx, oa.ID, 1, t0.Add(27*time.Second), ttl)
	var fe *state.FencedError
	if !errors.As(err, &fe) || !errors.Is(err, state.ErrFenced) || fe.Owner != oa.ID || fe.Epoch != 1 {
		t.Fatalf("superseded leader renews: %v", err)
	}
	// Once b's lease lapsed, a takes it back with epoch 3.
	la, err = a.AcquireLease(ctx, oa.ID, t0.Add(42*time.Second), ttl)
	if err != nil || la.Epoch != 3 {
		t.Fatalf("take back after b lapsed: %+v %v", la, err)
	}
	// A clean release leaves the epoch and frees the lease.
	if err := a.ReleaseLease(ctx, oa.ID, 3, t0.Add(43*time.Second)); err != nil {
		t.Fatal(err)
	}
	if l, err := b.CurrentLease(ctx); err != nil || l.Owner != "" || l.Epoch != 3 {
		t.Fatalf("after release: %+v %v", l, err)
	}
}

// TestTwoLeadersNeverBothTrigger: two handles that both reach one database (the flock
// did not keep the second out) admit the same slots; the one whose epoch was superseded
// gets state.ErrFenced and never claims a slot, even racing the leader.
func testTwoLeadersNeverBothTrigger(t *testing.T, be Backend) {
	ctx := context.Background()
	a := be.Open(t)
	b := be.Second(t, a)
	oa := register(t, a, state.RoleDaemon, t0)
	la, err := a.AcquireLease(ctx, oa.ID, t0, ttl)
	if err != nil {
		t.Fatal(err)
	}
	old := state.Holder{Owner: oa.ID, Epoch: la.Epoch}
	// a is paused past its lease; b takes over.
	later := t0.Add(time.Minute)
	ob := register(t, b, state.RoleDaemon, later)
	lb, err := b.AcquireLease(ctx, ob.ID, later, ttl)
	if err != nil {
		t.Fatal(err)
	}
	leader := state.Holder{Owner: ob.ID, Epoch: lb.Epoch}

	keys := []string{"report@2026-11-30T11:31:00Z", "report@2026-11-30T11:32:00Z", "report@2026-11-30T11:33:00Z"}
	var wg sync.WaitGroup
	results := make(chan error, 2*len(keys))
	for _, h := range []struct {
		db Store
		by state.Holder
	}{{a, old}, {b, leader}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range keys {
				_, _, err := h.db.Admit(ctx, h.by, later, later.Add(-time.Hour), k, admitNow(later))
				if h.by == old {
					if !errors.Is(err, state.ErrFenced) {
						results <- errors.New("fenced holder admitted " + k + ": " + errText(err))
					}
				} else if err != nil {
					results <- err
				}
			}
		}()
	}
	wg.Wait()
	close(results)
	for err := range results {
		t.Error(err)
	}
	for _, k := range keys {
		s, err := b.Slot(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != state.StateTriggering || s.Attempts != 1 || s.Owner != ob.ID {
			t.Errorf("%s: state %s, attempts %d, owner %q; want triggering, 1, the leader %s", k, s.State, s.Attempts, s.Owner, ob.ID)
		}
	}
	as, err := a.Attempts(ctx, time.Time{})
	if err != nil || len(as) != len(keys) {
		t.Errorf("ledger: %d attempts (%v), want %d: the fenced admissions recorded nothing", len(as), err, len(keys))
	}
}

// TestOwnerAdmission: a process that does not lead (hexcron trigger) admits while its
// registration is live; once it lapsed it is fenced and cannot revive it; a released
// owner is gone; registering deletes rows expired for more than a day.
func testOwnerAdmission(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	o := register(t, db, state.RoleTrigger, t0)
	by := state.Holder{Owner: o.ID}
	key := "report@2026-11-30T11:30:00Z+manual"
	if _, _, err := db.Admit(ctx, by, t0.Add(time.Second), t0.Add(-time.Hour), key, admitNow(t0.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, key); s.Owner != o.ID {
		t.Errorf("slot owner %q, want %q", s.Owner, o.ID)
	}
	if exp, err := db.RenewOwner(ctx, o.ID, t0.Add(10*time.Second), ttl); err != nil || !exp.Equal(t0.Add(25*time.Second)) {
		t.Fatalf("renew: %v %v", exp, err)
	}
	// Paused past its TTL: fenced, and the renewal does not revive it.
	late := t0.Add(time.Minute)
	if _, _, err := db.Admit(ctx, by, late, late.Add(-time.Hour), "", admitNow(late)); !errors.Is(err, state.ErrFenced) {
		t.Errorf("admission after the registration lapsed: %v, want state.ErrFenced", err)
	}
	if _, err := db.RenewOwner(ctx, o.ID, late, ttl); !errors.Is(err, state.ErrFenced) {
		t.Errorf("renewal after the registration lapsed: %v, want state.ErrFenced", err)
	}
	owners, err := db.Owners(ctx)
	if err != nil || len(owners) != 1 || owners[0].Live(late) {
		t.Fatalf("owners: %+v %v", owners, err)
	}
	// Released: gone.
	o2 := register(t, db, state.RoleTrigger, late)
	if err := db.ReleaseOwner(ctx, o2.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Admit(ctx, state.Holder{Owner: o2.ID}, late, late.Add(-time.Hour), "", admitNow(late)); !errors.Is(err, state.ErrFenced) {
		t.Errorf("admission of a released owner: %v, want state.ErrFenced", err)
	}
	// A day after o expired, the next registration deletes its row.
	register(t, db, state.RoleTrigger, t0.Add(25*time.Second+state.OwnerRetention+time.Second))
	owners, _ = db.Owners(ctx)
	for _, x := range owners {
		if x.ID == o.ID {
			t.Errorf("owner expired more than a day ago is still there")
		}
	}
	if len(owners) != 1 {
		t.Errorf("%d owners, want 1", len(owners))
	}
}

// TestVoid: an attempt that never left is undone: no ledger row, the slot back to
// planned when it was its only attempt, one attempt fewer otherwise.
func testVoid(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	key := "report@2026-11-30T11:30:00Z"
	id, _, err := db.Admit(ctx, state.Holder{}, t0, t0.Add(-time.Hour), key, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Void(ctx, id, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if as, _ := db.Attempts(ctx, time.Time{}); len(as) != 0 {
		t.Errorf("ledger after void: %d rows", len(as))
	}
	s, err := db.Slot(ctx, key)
	if err != nil || s.State != state.StatePlanned || s.Attempts != 0 || !s.LastAttempt.IsZero() {
		t.Errorf("slot after void: %+v %v; want planned, 0 attempts", s, err)
	}
	// Two attempts, the second voided: still triggering with one.
	t1 := t0.Add(2 * time.Second)
	if _, _, err := db.Admit(ctx, state.Holder{}, t1, t0.Add(-time.Hour), key, admitNow(t1)); err != nil {
		t.Fatal(err)
	}
	id2, _, err := db.Admit(ctx, state.Holder{}, t1.Add(time.Second), t0.Add(-time.Hour), key, admitNow(t1.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Void(ctx, id2, t1.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Slot(ctx, key); s.State != state.StateTriggering || s.Attempts != 1 {
		t.Errorf("slot after voiding the second attempt: %s, %d attempts; want triggering, 1", s.State, s.Attempts)
	}
	if err := db.Void(ctx, 999, t1); err != nil {
		t.Errorf("void of an unknown id: %v", err)
	}
}

func testTransitionErrorsAndFields(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	const a, b = "nightly@2026-11-30T11:30:00Z", "nightly@2026-12-01T11:30:00Z"
	for _, k := range []string{a, b} {
		if _, err := db.PlanSlot(ctx, state.Slot{Key: k}, t0); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(time.Hour)
	steps := []struct {
		to state.State
		u  state.Update
	}{
		{state.StateTriggering, state.Update{At: t1}},
		{state.StateTriggered, state.Update{At: t2, RunID: "run-1", RunURL: "https://app.hex.tech/r/1", TraceID: "tr-1", Triggered: t2}},
		{state.StateRunning, state.Update{At: t2, Started: t2}},
		{state.StateErrored, state.Update{At: t3, Ended: t3, Elapsed: time.Hour - 2*time.Second, Error: "cell 3 failed"}},
	}
	for _, st := range steps {
		if err := db.Transition(ctx, a, st.to, st.u); err != nil {
			t.Fatalf("-> %s: %v", st.to, err)
		}
	}
	got, _ := db.Slot(ctx, a)
	if got.State != state.StateErrored || got.RunID != "run-1" || got.RunURL != "https://app.hex.tech/r/1" || got.TraceID != "tr-1" ||
		!got.Triggered.Equal(t2) || !got.Started.Equal(t2) || !got.Ended.Equal(t3) || got.Elapsed != time.Hour-2*time.Second ||
		got.LastError != "cell 3 failed" || !got.Updated.Equal(t3) || !got.Created.Equal(t0) {
		t.Errorf("slot after its life = %+v", got)
	}

	err := db.Transition(ctx, a, state.StateRunning, state.Update{At: t3})
	if want := "transition slot: slot " + a + ": illegal slot state transition errored -> running"; err == nil || err.Error() != want {
		t.Errorf("out of a terminal state: %v\nwant %s", err, want)
	}
	if err := db.Transition(ctx, "x@2026-11-30T11:30:00Z", state.StateRunning, state.Update{At: t3}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("missing slot: %v", err)
	}
	if err := db.Transition(ctx, b, state.StateTriggering, state.Update{}); err == nil || !strings.Contains(err.Error(), "(At) is required") {
		t.Errorf("no At: %v", err)
	}
	if err := db.Transition(ctx, b, state.State("exploded"), state.Update{At: t1}); err == nil || !strings.Contains(err.Error(), `unknown state "exploded"`) {
		t.Errorf("bad state: %v", err)
	}

	// One run belongs to one slot.
	db.Transition(ctx, b, state.StateTriggering, state.Update{At: t1})
	err = db.Transition(ctx, b, state.StateTriggered, state.Update{At: t2, RunID: "run-1"})
	if !errors.Is(err, state.ErrRunClaimed) || err.Error() != "transition slot "+b+": run already recorded for another slot" {
		t.Errorf("adopting another slot's run: %v", err)
	}
	if key, ok, err := db.ClaimedRun(ctx, "run-1"); key != a || !ok || err != nil {
		t.Errorf("ClaimedRun(run-1) = %q %v %v", key, ok, err)
	}
	if _, ok, err := db.ClaimedRun(ctx, "run-2"); ok || err != nil {
		t.Errorf("ClaimedRun(run-2) = %v %v", ok, err)
	}
	// One slot has one run: a second run id is refused.
	if err := db.Transition(ctx, b, state.StateTriggered, state.Update{At: t2, RunID: "run-2"}); err != nil {
		t.Fatal(err)
	}
	err = db.Transition(ctx, b, state.StateTriggered, state.Update{At: t2, RunID: "run-3"})
	if !errors.Is(err, state.ErrSlotTaken) || err.Error() != "transition slot: slot "+b+" already triggered (state triggered, run run-2)" {
		t.Errorf("second run id: %v", err)
	}
	if err := db.Transition(ctx, b, state.StateRunning, state.Update{At: t2, RunID: "run-2"}); err != nil {
		t.Errorf("same run id again: %v", err)
	}
}

func testPlanSlot(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	s := state.Slot{Key: "r@2026-11-30T11:30:00Z[region=emea]", Planned: t0.Add(5 * time.Minute)}
	created, err := db.PlanSlot(ctx, s, t0)
	if err != nil || !created {
		t.Fatalf("PlanSlot = %v, %v", created, err)
	}
	got, _ := db.Slot(ctx, s.Key)
	if got.State != state.StatePlanned || got.Schedule != "r" || !got.Nominal.Equal(t0) || got.Matrix["region"] != "emea" ||
		!got.Planned.Equal(t0.Add(5*time.Minute)) || got.Kind != state.KindScheduled {
		t.Errorf("planned slot = %+v", got)
	}
	// Re-planning moves a planned slot.
	s.Planned = t0.Add(7 * time.Minute)
	if created, err := db.PlanSlot(ctx, s, t0.Add(time.Second)); err != nil || created {
		t.Errorf("re-plan = %v, %v", created, err)
	}
	if got, _ := db.Slot(ctx, s.Key); !got.Planned.Equal(t0.Add(7*time.Minute)) || !got.Updated.Equal(t0.Add(time.Second)) {
		t.Errorf("re-planned slot = %+v", got)
	}
	// ... but not one already fired.
	db.Transition(ctx, s.Key, state.StateTriggering, state.Update{At: t0.Add(7 * time.Minute)})
	s.Planned = t0.Add(9 * time.Minute)
	db.PlanSlot(ctx, s, t0.Add(8*time.Minute))
	if got, _ := db.Slot(ctx, s.Key); !got.Planned.Equal(t0.Add(7*time.Minute)) || got.State != state.StateTriggering {
		t.Errorf("a fired slot was re-planned: %+v", got)
	}
	// Same (schedule, nominal, matrix) under another key is refused; manual runs are exempt.
	_, err = db.PlanSlot(ctx, state.Slot{Key: "other-key", Schedule: "r", Nominal: t0, Matrix: map[string]string{"region": "emea"}}, t0)
	if err == nil || !strings.Contains(err.Error(), "another slot has the same schedule, nominal time and matrix") {
		t.Errorf("duplicate instant: %v", err)
	}
	if _, err := db.PlanSlot(ctx, state.Slot{Key: "r@2026-11-30T11:30:00Z+manual", Matrix: map[string]string{"region": "emea"}}, t0); err != nil {
		t.Errorf("manual run at a slot's instant: %v", err)
	}
	if got, _ := db.Slot(ctx, "r@2026-11-30T11:30:00Z+manual"); got.Kind != state.KindManual {
		t.Errorf("manual kind = %s", got.Kind)
	}
	if _, err := db.Slot(ctx, "nope@2026-11-30T11:30:00Z"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Slot(missing) = %v", err)
	}
}

func testSkipSlot(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	// Never planned: recorded directly as skipped.
	const k1 = "nightly@2026-11-30T11:30:00Z"
	if err := db.SkipSlot(ctx, state.Slot{Key: k1, Kind: state.KindCatchup}, "no room in window", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Slot(ctx, k1); got.State != state.StateSkipped || got.Reason != "no room in window" || got.Kind != state.KindCatchup {
		t.Errorf("skipped = %+v", got)
	}
	// Planned, then skipped.
	const k2 = "nightly@2026-12-01T11:30:00Z"
	db.PlanSlot(ctx, state.Slot{Key: k2}, t0)
	if err := db.SkipSlot(ctx, state.Slot{Key: k2}, "overlap: previous run still running", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Slot(ctx, k2); got.State != state.StateSkipped || got.Reason != "overlap: previous run still running" {
		t.Errorf("skipped = %+v", got)
	}
	// Not out of a terminal state.
	if err := db.SkipSlot(ctx, state.Slot{Key: k2}, "again", t0); !errors.Is(err, state.ErrIllegalTransition) {
		t.Errorf("skip a skipped slot: %v", err)
	}
}

// seed writes a small history through the contract: each slot planned at nominal+1m,
// then moved along a legal path to its state, its last change at nominal+1h; a run
// that ended ended then, or at ended[key] when given.
func seed(t *testing.T, db Store, rows []struct {
	key   string
	state state.State
}, ended ...map[string]time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, r := range rows {
		s, err := state.ParseSlotKey(r.key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.PlanSlot(ctx, state.Slot{Key: r.key, Planned: s.Nominal.Add(time.Minute)}, s.Nominal.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		var e time.Time
		if len(ended) > 0 {
			e = ended[0][r.key]
		}
		moveTo(t, db, r.key, r.state, s.Nominal.Add(time.Hour), e)
	}
}

// moveTo moves the planned slot key along a legal path to st, its last change at last
// (intermediate ones a minute after its nominal instant); a run that ended ended at
// last, or at ended when given.
func moveTo(t *testing.T, db Store, key string, st state.State, last time.Time, ended ...time.Time) {
	t.Helper()
	ctx := context.Background()
	s, err := state.ParseSlotKey(key)
	if err != nil {
		t.Fatal(err)
	}
	at := s.Nominal.Add(time.Minute)
	var path []state.State
	switch st {
	case state.StatePlanned:
	case state.StateSkipped:
		path = []state.State{state.StateSkipped}
	case state.StateTriggering:
		path = []state.State{state.StateTriggering}
	case state.StateFailed:
		path = []state.State{state.StateTriggering, state.StateFailed}
	case state.StateTriggered:
		path = []state.State{state.StateTriggering, state.StateTriggered}
	case state.StateRunning:
		path = []state.State{state.StateTriggering, state.StateTriggered, state.StateRunning}
	default:
		path = []state.State{state.StateTriggering, state.StateTriggered, state.StateRunning, st}
	}
	for i, to := range path {
		u := state.Update{At: at}
		if i == len(path)-1 {
			u.At = last
		}
		if to == state.StateTriggered {
			u.RunID, u.Triggered = "run-"+key, at
		}
		if to.Terminal() && to != state.StateSkipped && to != state.StateFailed {
			u.Ended = last
			if len(ended) > 0 && !ended[0].IsZero() {
				u.Ended = ended[0]
			}
		}
		if err := db.Transition(ctx, key, to, u); err != nil {
			t.Fatal(err)
		}
	}
}

func keysOf(ss []state.Slot) string {
	var ks []string
	for _, s := range ss {
		ks = append(ks, s.Key)
	}
	return strings.Join(ks, " ")
}

func testQueries(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	seed(t, db, []struct {
		key   string
		state state.State
	}{
		{"a@2026-11-30T09:00:00Z", state.StateCompleted},
		{"a@2026-11-30T10:00:00Z", state.StateErrored},
		{"a@2026-11-30T11:00:00Z", state.StateRunning},
		{"a@2026-11-30T12:00:00Z", state.StatePlanned},
		{"a@2026-11-30T13:00:00Z", state.StatePlanned},
		{"b@2026-11-30T10:30:00Z", state.StateSkipped},
		{"b@2026-11-30T11:30:00Z", state.StateTriggering},
		{"b@2026-11-30T11:45:00Z", state.StateTriggered},
		{"c@2026-11-30T08:00:00Z", state.StatePlanned}, // planned in the past: not "next"
	})
	tests := []struct {
		name string
		got  func() ([]state.Slot, error)
		want string
	}{
		{"triggering", func() ([]state.Slot, error) { return db.SlotsInState(ctx, state.StateTriggering) }, "b@2026-11-30T11:30:00Z"},
		{"active runs", activeRunsT(ctx, db), "a@2026-11-30T11:00:00Z b@2026-11-30T11:45:00Z"},
		{"history all", func() ([]state.Slot, error) { return db.History(ctx, state.Filter{}) }, "a@2026-11-30T13:00:00Z a@2026-11-30T12:00:00Z b@2026-11-30T11:45:00Z b@2026-11-30T11:30:00Z a@2026-11-30T11:00:00Z b@2026-11-30T10:30:00Z a@2026-11-30T10:00:00Z a@2026-11-30T09:00:00Z c@2026-11-30T08:00:00Z"},
		{"history schedule", func() ([]state.Slot, error) { return db.History(ctx, state.Filter{Schedule: "b"}) }, "b@2026-11-30T11:45:00Z b@2026-11-30T11:30:00Z b@2026-11-30T10:30:00Z"},
		{"history states", func() ([]state.Slot, error) {
			return db.History(ctx, state.Filter{States: []state.State{state.StateCompleted, state.StateErrored, state.StateSkipped}})
		}, "b@2026-11-30T10:30:00Z a@2026-11-30T10:00:00Z a@2026-11-30T09:00:00Z"},
		{"history since until limit", func() ([]state.Slot, error) {
			return db.History(ctx, state.Filter{Since: t0.Add(-2 * time.Hour), Until: t0.Add(31 * time.Minute), Limit: 3})
		}, "a@2026-11-30T12:00:00Z b@2026-11-30T11:45:00Z b@2026-11-30T11:30:00Z"},
	}
	for _, tt := range tests {
		got, err := tt.got()
		if err != nil || keysOf(got) != tt.want {
			t.Errorf("%s = %s, %v\nwant %s", tt.name, keysOf(got), err, tt.want)
		}
	}

	last, err := db.LastRunPerSchedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 2 || last["a"].Key != "a@2026-11-30T11:00:00Z" || last["a"].State != state.StateRunning ||
		last["b"].Key != "b@2026-11-30T11:45:00Z" {
		t.Errorf("LastRunPerSchedule = %v", last)
	}
	next, err := db.NextPlanned(ctx, t0) // 11:30
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || next["a"].Key != "a@2026-11-30T12:00:00Z" || !next["a"].Planned.Equal(t0.Add(31*time.Minute)) {
		t.Errorf("NextPlanned = %v", next)
	}

	// Prune: terminal slots last updated before the instant go, live ones stay.
	// Updated = nominal + 1h: a@09 (10:00), a@10 (11:00), b@10:30 (11:30). a@09 is a's
	// latest completed slot and a has newer rows: it stays (its last success).
	n, err := db.PruneHistory(ctx, t0, 100) // 11:30
	if err != nil || n != 1 {
		t.Errorf("PruneHistory = %d, %v; want 1", n, err)
	}
	if all, _ := db.History(ctx, state.Filter{}); len(all) != 8 || strings.Contains(keysOf(all), "a@2026-11-30T10:00:00Z") {
		t.Errorf("%d slots left, want 8 without a@10:00: %s", len(all), keysOf(all))
	}
}

func activeRunsT(ctx context.Context, db Store) func() ([]state.Slot, error) {
	return func() ([]state.Slot, error) { return db.ActiveRuns(ctx) }
}

func testPruneHistoryKeepsLedger(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	const k = "nightly@2026-11-30T11:30:00Z"
	id, _, err := db.Admit(ctx, state.Holder{}, t0, time.Time{}, k, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	db.Transition(ctx, k, state.StateFailed, state.Update{At: t0, Reason: "422: project not published"})
	if n, err := db.PruneHistory(ctx, t0.Add(time.Hour), 10); n != 1 || err != nil {
		t.Fatalf("PruneHistory = %d, %v", n, err)
	}
	as, _ := db.Attempts(ctx, time.Time{})
	if len(as) != 1 || as[0].ID != id || as[0].Slot != "" {
		t.Errorf("ledger after pruning its slot = %+v, want the row kept with no slot", as)
	}
}

func testHeartbeat(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	if _, ok, err := db.Heartbeat(ctx); ok || err != nil {
		t.Errorf("fresh heartbeat = %v, %v", ok, err)
	}
	for _, at := range []time.Time{t0, t0.Add(1500 * time.Millisecond)} {
		if err := db.SetHeartbeat(ctx, at); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := db.Heartbeat(ctx); !ok || err != nil || !got.Equal(at) {
			t.Errorf("Heartbeat = %v %v %v, want %v", got, ok, err, at)
		}
	}
}

func testLastSuccess(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	ended := map[string]time.Time{
		"a@2026-11-30T09:00:00Z": t0.Add(-2 * time.Hour),
		"a@2026-11-30T10:00:00Z": t0.Add(-time.Hour + 1500*time.Millisecond),
		"a@2026-11-30T11:00:00Z": t0,
		"b@2026-11-30T08:00:00Z": t0.Add(-3 * time.Hour),
	}
	seed(t, db, []struct {
		key   string
		state state.State
	}{
		{"a@2026-11-30T09:00:00Z", state.StateCompleted},
		{"a@2026-11-30T10:00:00Z", state.StateCompleted},
		{"a@2026-11-30T11:00:00Z", state.StateErrored}, // a later failure does not count
		{"b@2026-11-30T08:00:00Z", state.StateCompleted},
		{"b@2026-11-30T09:00:00Z", state.StateRunning},
		{"c@2026-11-30T09:00:00Z", state.StateSkipped}, // never succeeded: absent
	}, ended)
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

// TestSlotProjectAndTimeout: the project and timeout a slot's run is tracked with are
// written by PlanSlot and Transition, kept when a later write leaves them zero, and a
// planned slot's reason follows PlanSlot.
func testSlotProjectAndTimeout(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	const key = "nightly@2026-11-30T11:30:00Z"
	const p1, p2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	check := func(what, project string, timeout time.Duration, reason string) {
		t.Helper()
		got, err := db.Slot(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got.Project != project || got.Timeout != timeout || got.Reason != reason {
			t.Errorf("%s: project %q timeout %s reason %q; want %q %s %q", what, got.Project, got.Timeout, got.Reason, project, timeout, reason)
		}
	}
	if _, err := db.PlanSlot(ctx, state.Slot{Key: key, Reason: "overlap queue: waits for run r1 to end"}, t0); err != nil {
		t.Fatal(err)
	}
	check("planned without them", "", 0, "overlap queue: waits for run r1 to end")
	if _, err := db.PlanSlot(ctx, state.Slot{Key: key, Project: p1, Timeout: 30 * time.Minute}, t0); err != nil {
		t.Fatal(err)
	}
	check("re-planned with them", p1, 30*time.Minute, "")
	if _, err := db.PlanSlot(ctx, state.Slot{Key: key}, t0); err != nil {
		t.Fatal(err)
	}
	check("re-planned without them", p1, 30*time.Minute, "")
	if err := db.Transition(ctx, key, state.StateTriggering, state.Update{At: t0}); err != nil {
		t.Fatal(err)
	}
	// Past planned, PlanSlot changes nothing.
	if _, err := db.PlanSlot(ctx, state.Slot{Key: key, Project: p2, Reason: "x"}, t0); err != nil {
		t.Fatal(err)
	}
	check("PlanSlot of a triggering slot", p1, 30*time.Minute, "")
	if err := db.Transition(ctx, key, state.StateTriggered, state.Update{At: t0, RunID: "r2", Project: p2, Timeout: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	check("triggered with them", p2, 2*time.Hour, "")
	if err := db.Transition(ctx, key, state.StateRunning, state.Update{At: t0}); err != nil {
		t.Fatal(err)
	}
	check("running without them", p2, 2*time.Hour, "")
	runs, err := db.ActiveRuns(ctx)
	if err != nil || len(runs) != 1 || runs[0].Project != p2 || runs[0].Timeout != 2*time.Hour {
		t.Errorf("ActiveRuns = %+v, %v", runs, err)
	}
	// A slot inserted directly (skipped, or by Admit) carries what it is given.
	if err := db.SkipSlot(ctx, state.Slot{Key: "nightly@2026-12-01T11:30:00Z", Project: p1, Timeout: time.Minute}, "why", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Slot(ctx, "nightly@2026-12-01T11:30:00Z"); got.Project != p1 || got.Timeout != time.Minute {
		t.Errorf("skipped slot = %+v", got)
	}
}

// TestPruneHistoryRules: only terminal slots older than the cut go (planned and last
// changed before it), live slots never do whatever their age, a schedule's latest
// completed slot stays while the schedule has newer rows, and each call deletes at
// most its limit.
func testPruneHistoryRules(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	day := 24 * time.Hour
	old := t0.Add(-100 * day)
	put := func(key string, st state.State, at time.Time) {
		t.Helper()
		if _, err := db.PlanSlot(ctx, state.Slot{Key: key}, at); err != nil {
			t.Fatal(err)
		}
		moveTo(t, db, key, st, at)
	}
	key := func(schedule string, at time.Time) string { return schedule + "@" + at.UTC().Format(time.RFC3339) }
	// Every live state, ancient: never pruned.
	for i, st := range []state.State{state.StatePlanned, state.StateTriggering, state.StateTriggered, state.StateRunning} {
		put(key("live", old.Add(time.Duration(i)*time.Hour)), st, old.Add(time.Duration(i)*time.Hour))
	}
	// Every terminal state, ancient: pruned, except a's latest completed (a runs on).
	var terminal []state.State
	for _, st := range state.States {
		if st.Terminal() {
			terminal = append(terminal, st)
		}
	}
	for i, st := range terminal {
		put(key("a", old.Add(time.Duration(i)*time.Hour)), st, old.Add(time.Duration(i)*time.Hour))
	}
	lastSuccess := key("a", old.Add(-time.Hour))
	put(lastSuccess, state.StateCompleted, old.Add(-time.Hour)) // older than a's other completed one
	put(key("a", t0), state.StateErrored, t0)                   // recent: a is still configured and firing
	// b left the config long ago: its last success goes with the rest.
	put(key("b", old), state.StateCompleted, old)

	cut := t0.Add(-90 * day)
	var total int64
	for {
		n, err := db.PruneHistory(ctx, cut, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n > 3 {
			t.Fatalf("one call deleted %d rows, limit 3", n)
		}
		if n == 0 {
			break
		}
		total += n
	}
	rest, err := db.History(ctx, state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]state.State{}
	for _, s := range rest {
		got[s.Key] = s.State
	}
	want := []string{key("live", old), key("live", old.Add(time.Hour)), key("live", old.Add(2*time.Hour)), key("live", old.Add(3*time.Hour)),
		key("a", t0)}
	// a's latest completed slot among the ancient ones is the terminal-states row.
	for i, st := range terminal {
		if st == state.StateCompleted {
			want = append(want, key("a", old.Add(time.Duration(i)*time.Hour)))
		}
	}
	if len(got) != len(want) {
		t.Errorf("left %d slots %v, want %d: %v", len(got), got, len(want), want)
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("slot %s was pruned; want it kept", k)
		}
	}
	if _, ok := got[lastSuccess]; ok {
		t.Errorf("an older completed slot of a was kept: only the latest is")
	}
	if want := int64(len(terminal) - 1 + 1 + 1); total != want {
		t.Errorf("pruned %d slots, want %d", total, want)
	}
	// The kept last success is what LastSuccess reads.
	ls, err := db.LastSuccess(ctx)
	if _, hasB := ls["b"]; err != nil || hasB || ls["a"].IsZero() {
		t.Errorf("LastSuccess = %v, %v; want a's kept and b's gone with its rows", ls, err)
	}
}

func testPruneLedgerInBatches(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	for i := range 25 {
		sent := t0.Add(time.Duration(i) * time.Minute)
		if _, _, err := db.Admit(ctx, state.Holder{}, sent, time.Time{}, "", admitNow(sent)); err != nil {
			t.Fatal(err)
		}
	}
	cut := t0.Add(20 * time.Minute)
	for _, want := range []int64{8, 8, 4, 0} {
		if n, err := db.PruneLedger(ctx, cut, 8); err != nil || n != want {
			t.Fatalf("PruneLedger = %d, %v; want %d", n, err, want)
		}
	}
	if as, _ := db.Attempts(ctx, time.Time{}); len(as) != 5 || !as[0].Sent.Equal(cut) {
		t.Errorf("ledger after pruning = %d rows from %v, want 5 from %v", len(as), as[0].Sent, cut)
	}
}

func testPruneOwners(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	dead, err := db.RegisterOwner(ctx, state.RoleTrigger, "h", 1, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	live, err := db.RegisterOwner(ctx, state.RoleTrigger, "h", 2, t0.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneOwners(ctx, t0.Add(30*time.Minute)); n != 1 || err != nil {
		t.Fatalf("PruneOwners = %d, %v; want 1", n, err)
	}
	owners, _ := db.Owners(ctx)
	if len(owners) != 1 || owners[0].ID != live.ID || owners[0].ID == dead.ID {
		t.Errorf("owners left = %+v, want only %s", owners, live.ID)
	}
}

// TestSlotStory: the fields `history --slot` tells a slot's story from: the plan and
// wait reasons, the adopted flag, and the slot's ledger rows.
func testSlotStory(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.Open(t)
	const k = "nightly@2026-11-30T11:30:00Z"
	if _, err := db.PlanSlot(ctx, state.Slot{Key: k, Planned: t0.Add(40 * time.Second), PlanReason: "rule 60/1h full"}, t0); err != nil {
		t.Fatal(err)
	}
	id, _, err := db.Admit(ctx, state.Holder{}, t0.Add(time.Minute), time.Time{}, k, admitNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	db.Complete(ctx, id, t0.Add(61*time.Second))
	if _, _, err := db.Admit(ctx, state.Holder{}, t0, time.Time{}, "other@2026-11-30T11:30:00Z", admitNow(t0)); err != nil {
		t.Fatal(err)
	}
	if err := db.Transition(ctx, k, state.StateTriggered, state.Update{At: t0.Add(2 * time.Minute), RunID: "r1", Adopted: true,
		WaitReason: "the trigger budget (rule 20/1m full)"}); err != nil {
		t.Fatal(err)
	}
	// A later update without them leaves them.
	if err := db.Transition(ctx, k, state.StateCompleted, state.Update{At: t0.Add(5 * time.Minute), Reason: "hex status COMPLETED"}); err != nil {
		t.Fatal(err)
	}
	s, err := db.Slot(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if s.PlanReason != "rule 60/1h full" || s.WaitReason != "the trigger budget (rule 20/1m full)" || !s.Adopted {
		t.Errorf("slot story = plan %q, wait %q, adopted %v", s.PlanReason, s.WaitReason, s.Adopted)
	}
	as, err := db.SlotAttempts(ctx, k)
	if err != nil || len(as) != 1 || as[0].ID != id || !as[0].Done.Equal(t0.Add(61*time.Second)) {
		t.Errorf("SlotAttempts = %+v, %v; want the one attempt of the slot", as, err)
	}
}
