package hexclient

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"hexcron/budget"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestMemLedgerConcurrent: 50 goroutines admitting at once never exceed the limit.
func TestMemLedgerConcurrent(t *testing.T) {
	l := NewMemLedger()
	b := Budget{Rules: []Rule{{Limit: 7, Per: time.Minute}}, MaxAttempt: time.Minute}
	var mu sync.Mutex
	var ids []int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			now := t0.Add(time.Duration(i) * time.Millisecond)
			id, w, err := l.Admit(context.Background(), now, b.Since(now), "slot", func(a []Attempt) time.Duration { return b.Wait(now, a) })
			if err != nil {
				t.Error(err)
			}
			if w == 0 {
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(ids) != 7 {
		t.Fatalf("%d admitted concurrently, want 7", len(ids))
	}
	slices.Sort(ids)
	if err := l.Complete(context.Background(), ids[0], t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := l.Attempts(); len(got) != 7 || got[0].Done.IsZero() {
		t.Fatalf("attempts %+v", got)
	}
	// Attempts older than since are forgotten.
	later := t0.Add(3 * time.Hour)
	if _, w, _ := l.Admit(context.Background(), later, b.Since(later), "", func(a []Attempt) time.Duration {
		if len(a) != 0 {
			t.Errorf("old attempts still loaded: %d", len(a))
		}
		return b.Wait(later, a)
	}); w != 0 {
		t.Fatal("not admitted")
	}
}

func TestAdaptiveDecreaseAndRecovery(t *testing.T) {
	a := newAdaptive(DefaultRules())
	if !a.decrease(t0) {
		t.Fatal("first 429 does not start an episode")
	}
	if got := a.usable(t0); !slices.Equal(got, []int{14, 42}) {
		t.Fatalf("after one decrease %v, want [14 42]", got)
	}
	if a.decrease(t0.Add(time.Second)) {
		t.Fatal("second 429 in the same episode started a new one (would log a second WARN)")
	}
	if got := a.usable(t0.Add(time.Second)); !slices.Equal(got, []int{14, 42}) {
		t.Fatalf("a second 429 within a minute shrank again: %v", got)
	}
	a.decrease(t0.Add(time.Minute))
	// The minute rule had regained 2 (14+2=16) before the second cut: 16×0.7 = 11.
	if got := a.usable(t0.Add(time.Minute)); !slices.Equal(got, []int{11, 29}) {
		t.Fatalf("after two decreases a minute apart %v, want [11 29]", got)
	}
	// Each rule regains a tenth of its usable count (20/10=2, 60/10=6) per quiet window.
	if got := a.usable(t0.Add(time.Minute + 2*time.Minute)); !slices.Equal(got, []int{15, 29}) {
		t.Fatalf("after 2 quiet minutes %v, want [15 29]", got)
	}
	if got := a.usable(t0.Add(time.Minute + 2*time.Hour)); !slices.Equal(got, []int{20, 41}) {
		t.Fatalf("after 2 quiet hours %v, want [20 41]", got)
	}
	if got := a.usable(t0.Add(time.Minute + 6*time.Hour)); !slices.Equal(got, []int{20, 60}) {
		t.Fatalf("after 6 quiet hours %v, want full [20 60]", got)
	}
	if !a.decrease(t0.Add(7 * time.Hour)) {
		t.Fatal("a 429 after full recovery is a new episode")
	}
	small := newAdaptive([]Rule{{Limit: 1, Per: time.Minute}})
	small.decrease(t0)
	if got := small.usable(t0); got[0] != 1 {
		t.Fatalf("effective limit %d, never below 1", got[0])
	}
}

// TestBudgetDefaultsAreTheModels: with the default attempt timeout, a client's zero
// Skew and MaxAttempt become budget.DefaultSkew and budget.DefaultMaxAttempt, the
// values the planner places firings by.
func TestBudgetDefaultsAreTheModels(t *testing.T) {
	c, err := New(Config{Token: StaticToken("hxtp_x")})
	if err != nil {
		t.Fatal(err)
	}
	if c.budget.Skew != budget.DefaultSkew || c.budget.MaxAttempt != budget.DefaultMaxAttempt {
		t.Fatalf("skew %v, max attempt %v; want %v, %v", c.budget.Skew, c.budget.MaxAttempt, budget.DefaultSkew, budget.DefaultMaxAttempt)
	}
	if !slices.Equal(c.budget.Rules, budget.DefaultRules()) {
		t.Fatalf("rules %v", c.budget.Rules)
	}
}
