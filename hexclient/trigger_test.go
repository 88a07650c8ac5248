package hexclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const testProject = "4f6c3b1e-7a2d-4c1b-9e8f-0a1b2c3d4e5f"

func trig(slot string) TriggerRequest {
	return TriggerRequest{Slot: slot, ProjectID: testProject, Deadline: time.Now().Add(time.Hour)}
}

func TestTriggerCreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t}
		ledger := NewMemLedger()
		c, _, obs := testClient(t, f, StaticToken("hxtp_ok"), func(cfg *Config) { cfg.Ledger = ledger })
		start := time.Now()
		got, err := c.Trigger(context.Background(), trig("s@2026-01-01T00:00:00Z"))
		if err != nil {
			t.Fatal(err)
		}
		if got.RunID != "run-1" || got.Adopted || got.Attempts != 1 || got.TraceID != "trace-run-1" || !got.Sent.Equal(start) {
			t.Fatalf("got %+v", got)
		}
		if !strings.Contains(got.RunStatusURL, "/projects/") {
			t.Fatalf("run status url %q", got.RunStatusURL)
		}
		if f.agents[0] != "hexcron/1.2.3" {
			t.Fatalf("User-Agent %q", f.agents[0])
		}
		at := ledger.Attempts()
		if len(at) != 1 || at[0].Done.IsZero() {
			t.Fatalf("ledger %+v, want one completed attempt", at)
		}
		if obs.triggers["ok"] != 1 || obs.triggers["trigger_created"] != 1 {
			t.Fatalf("observer %+v", obs.triggers)
		}
	})
}

func TestTrigger429(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  [2]map[string]string
		minWait [2]time.Duration // the POST after each 429 must not come sooner
	}{
		{"retry-after seconds", [2]map[string]string{{"Retry-After": "120"}, {"Retry-After": "120"}}, [2]time.Duration{120 * time.Second, 120 * time.Second}},
		// The bubble starts at 2000-01-01T00:00:00Z.
		{"retry-after date", [2]map[string]string{{"Retry-After": "Sat, 01 Jan 2000 00:05:00 GMT"}, {"Retry-After": "Sat, 01 Jan 2000 00:07:30 GMT"}},
			[2]time.Duration{5 * time.Minute, 150 * time.Second}},
		{"retry-after date in the past", [2]map[string]string{{"Retry-After": "Fri, 31 Dec 1999 23:00:00 GMT"}, {"Retry-After": "120"}}, [2]time.Duration{0, 120 * time.Second}},
		{"x-ratelimit-reset delta", [2]map[string]string{{"X-RateLimit-Reset": "45"}, {"RateLimit-Reset": "30"}}, [2]time.Duration{45 * time.Second, 30 * time.Second}},
		{"x-ratelimit-reset unix", [2]map[string]string{{"X-RateLimit-Reset": "946684860"}, {"X-RateLimit-Reset": "946684920"}}, [2]time.Duration{time.Minute, 0}},
		{"no header", [2]map[string]string{}, [2]time.Duration{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeHex{t: t, script: []step{{status: 429, header: tc.header[0]}, {status: 429, header: tc.header[1]}}}
				c, logs, obs := testClient(t, f, StaticToken("hxtp_ok"), nil)
				got, err := c.Trigger(context.Background(), trig("s"))
				if err != nil {
					t.Fatal(err)
				}
				posts, _, runs := f.snapshot()
				if len(posts) != 3 || len(runs) != 1 || got.Attempts != 3 {
					t.Fatalf("posts %d runs %d attempts %d, want 3 1 3", len(posts), len(runs), got.Attempts)
				}
				for i := 1; i < len(posts); i++ {
					if gap := posts[i].Sub(posts[i-1]); gap < tc.minWait[i-1] {
						t.Fatalf("POST %d came %v after a 429 that named %v", i+1, gap, tc.minWait[i-1])
					}
				}
				if n := strings.Count(logs.String(), "probably another client triggers as this Hex user"); n != 1 {
					t.Fatalf("%d WARN lines for one 429 episode, want 1\n%s", n, logs.String())
				}
				if obs.n429 != 2 {
					t.Fatalf("On429 called %d times, want 2", obs.n429)
				}
				if u := c.adapt.usable(time.Now()); u[0] >= 20 {
					t.Fatalf("effective limits %v not shrunk after an unpredicted 429", u)
				}
			})
		})
	}
}

func TestTriggerKernelCapHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, script: []step{{status: 503}}}
		c, _, obs := testClient(t, f, StaticToken("hxtp_ok"), nil)
		done := make(chan *Triggered)
		go func() {
			got, err := c.Trigger(context.Background(), trig("s"))
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		synctest.Wait()
		time.Sleep(10 * time.Second) // less than the minimum hold (15s)
		synctest.Wait()
		if posts, _, runs := f.snapshot(); len(posts) != 1 || len(runs) != 0 {
			t.Fatalf("during the hold: %d posts, %d runs; want 1, 0", len(posts), len(runs))
		}
		c.KernelFreed()
		got := <-done
		posts, _, runs := f.snapshot()
		if len(posts) != 2 || len(runs) != 1 || got.Attempts != 2 {
			t.Fatalf("after KernelFreed: %d posts %d runs %d attempts", len(posts), len(runs), got.Attempts)
		}
		if posts[1].Sub(posts[0]) != 10*time.Second {
			t.Fatalf("re-POST %v after the 503, want right after KernelFreed (10s)", posts[1].Sub(posts[0]))
		}
		if len(obs.holds) != 1 || obs.holds[0] != "kernel_cap" {
			t.Fatalf("holds %v", obs.holds)
		}
	})
}

func TestTriggerKernelCapBackoffPasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, script: []step{{status: 503}}}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		if _, err := c.Trigger(context.Background(), trig("s")); err != nil {
			t.Fatal(err)
		}
		posts, _, _ := f.snapshot()
		if gap := posts[1].Sub(posts[0]); gap < 15*time.Second || gap > 30*time.Second {
			t.Fatalf("hold lasted %v, want within [15s, 30s] (KernelBackoff base 30s, half jitter)", gap)
		}
	})
}

func TestTriggerAmbiguous(t *testing.T) {
	for _, tc := range []struct {
		name      string
		script    []step
		posts     int
		adopted   bool
		minToList time.Duration
	}{
		{"5xx after create", []step{{status: 500, create: true}}, 1, true, 10 * time.Second},
		{"502 after create", []step{{status: 502, create: true}}, 1, true, 10 * time.Second},
		{"5xx before create", []step{{status: 500}}, 2, false, 10 * time.Second},
		{"timeout after create", []step{{hang: true, create: true}}, 1, true, 20 * time.Second},
		{"timeout before create", []step{{hang: true}}, 2, false, 20 * time.Second},
		{"connection dropped after create", []step{{drop: true, create: true}}, 1, true, 10 * time.Second},
		{"409 project busy, earlier run ours", []step{{status: 500, create: true}, {status: 409}}, 1, true, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeHex{t: t, script: tc.script}
				c, _, obs := testClient(t, f, StaticToken("hxtp_ok"), nil)
				got, err := c.Trigger(context.Background(), trig("s"))
				if err != nil {
					t.Fatal(err)
				}
				posts, lists, runs := f.snapshot()
				if len(runs) != 1 {
					t.Fatalf("%d runs created, want exactly 1", len(runs))
				}
				if len(posts) != tc.posts || got.Adopted != tc.adopted || got.RunID != runs[0].id {
					t.Fatalf("posts %d adopted %v run %s; want %d %v %s", len(posts), got.Adopted, got.RunID, tc.posts, tc.adopted, runs[0].id)
				}
				if len(lists) == 0 || lists[0].Sub(posts[0]) < tc.minToList {
					t.Fatalf("listed at %v after the POST, want a listing no sooner than %v", lists, tc.minToList)
				}
				if tc.adopted && (obs.reconcile["adopted"] != 1 || !got.Sent.Equal(posts[0])) {
					t.Fatalf("reconcile %v sent %v", obs.reconcile, got.Sent)
				}
			})
		})
	}
}

func TestTrigger409WithoutOurRunRetriesUntilDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var script []step
		for range 100 {
			script = append(script, step{status: 409})
		}
		f := &fakeHex{t: t, script: script}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		req := trig("s")
		req.Deadline = time.Now().Add(3 * time.Minute)
		_, err := c.Trigger(context.Background(), req)
		var de *DeadlineError
		var ae *APIError
		if !errors.As(err, &de) || !errors.As(err, &ae) || ae.Status != 409 {
			t.Fatalf("err = %v, want a DeadlineError whose last error is the 409", err)
		}
		posts, lists, _ := f.snapshot()
		if len(lists) < len(posts) {
			t.Fatalf("%d posts but only %d listings: every 409 must be reconciled before a re-POST", len(posts), len(lists))
		}
	})
}

func TestTriggerNeverAdoptsClaimedRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, script: []step{{status: 500, create: true}}}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		req := trig("s")
		req.Claimed = func(id string) bool { return id == "run-1" }
		got, err := c.Trigger(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got.RunID != "run-2" || got.Adopted {
			t.Fatalf("got %+v, want a fresh run-2 (run-1 belongs to another slot)", got)
		}
	})
}

func TestTriggerListingFailureNeverRePOSTs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, script: []step{{status: 500}}, listFails: 5}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		if _, err := c.Trigger(context.Background(), trig("s")); err != nil {
			t.Fatal(err)
		}
		posts, lists, _ := f.snapshot()
		if len(lists) != 6 || len(posts) != 2 {
			t.Fatalf("lists %d posts %d, want 6 listings (5 failed) before the single re-POST", len(lists), len(posts))
		}
		if posts[1].Before(lists[5]) {
			t.Fatal("re-POST before a listing succeeded")
		}
	})
}

// swapToken is a TokenSource whose value a test changes (the rotated token file).
type swapToken struct {
	mu    sync.Mutex
	tok   string
	reads int
}

func (s *swapToken) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return s.tok, nil
}
func (s *swapToken) set(v string) { s.mu.Lock(); s.tok = v; s.mu.Unlock() }

func TestTriggerAuthPauseThenResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, token: "hxtp_new"}
		tok := &swapToken{tok: "hxtp_old"}
		c, logs, obs := testClient(t, f, tok, nil)
		done := make(chan *Triggered)
		go func() {
			got, err := c.Trigger(context.Background(), trig("s"))
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		posts, _, runs := f.snapshot()
		if len(posts) != 1 || len(runs) != 0 {
			t.Fatalf("while the token is bad: %d posts (want 1: no budget spent on a paused token)", len(posts))
		}
		f.mu.Lock()
		probes := f.probes
		f.mu.Unlock()
		if probes < 2 {
			t.Fatalf("%d probes in 10 minutes, want the cheap read retried", probes)
		}
		tok.set("hxtp_new") // the operator rotates the token file
		got := <-done
		if got.RunID != "run-1" || got.Attempts != 2 {
			t.Fatalf("got %+v", got)
		}
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
			t.Fatalf("%d ERROR lines, want exactly 1 per auth episode\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "systemctl restart hexcron") {
			t.Fatal("the ERROR does not say what to do")
		}
		if len(obs.holds) != 1 || obs.holds[0] != "auth" {
			t.Fatalf("holds %v", obs.holds)
		}
	})
}

func TestTriggerPermanent(t *testing.T) {
	for _, tc := range []struct {
		name, body, reason, trace string
		status                    int
		header                    map[string]string
	}{
		{"422 unpublished", `{"reason":"Project has not been published","traceId":"t-422"}`, "Project has not been published", "t-422", 422, nil},
		{"422 invalid inputs", `{"invalid":[{"paramName":"region","dataType":"STRING"}],"notFound":[{"paramName":"nope"}],"traceId":"t-inv"}`, "invalid input parameters", "t-inv", 422, nil},
		{"404 trace header", `{"reason":"Not found"}`, "Not found", "t-hdr", 404, map[string]string{"x-trace-id": "t-hdr"}},
		{"400 plain text", `Bad Request`, "Bad Request", "", 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeHex{t: t, script: []step{{status: tc.status, body: tc.body, header: tc.header}}}
				c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
				_, err := c.Trigger(context.Background(), trig("s"))
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err %v, want *APIError", err)
				}
				if ae.Class != ClassPermanent || ae.Status != tc.status || ae.Reason != tc.reason || ae.TraceID != tc.trace {
					t.Fatalf("got %+v", ae)
				}
				if posts, _, _ := f.snapshot(); len(posts) != 1 {
					t.Fatalf("%d posts, want 1 (no retry)", len(posts))
				}
			})
		})
	}
}

func TestTriggerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, script: []step{{status: 429, header: map[string]string{"Retry-After": "3600"}}}}
		c, _, obs := testClient(t, f, StaticToken("hxtp_ok"), nil)

		req := trig("past")
		req.Deadline = time.Now().Add(-time.Second)
		_, err := c.Trigger(context.Background(), req)
		if !errors.Is(err, ErrDeadline) {
			t.Fatalf("past deadline: err %v", err)
		}

		req = trig("s")
		req.Deadline = time.Now().Add(10 * time.Minute)
		start := time.Now()
		_, err = c.Trigger(context.Background(), req)
		var de *DeadlineError
		if !errors.As(err, &de) || !errors.Is(err, ErrDeadline) || de.Attempts != 1 || de.Slot != "s" {
			t.Fatalf("err %v", err)
		}
		if waited := time.Since(start); waited != 10*time.Minute {
			t.Fatalf("gave up after %v, want at the deadline (10m)", waited)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != time.Hour {
			t.Fatalf("last error %v", ae)
		}
		if posts, _, _ := f.snapshot(); len(posts) != 1 {
			t.Fatalf("%d posts", len(posts))
		}
		if obs.triggers["trigger_deadline"] != 2 {
			t.Fatalf("observer %v", obs.triggers)
		}
	})
}

func TestTriggerDeadlineWithUnresolvedAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The run appears only after 10 minutes: the deadline comes first.
		f := &fakeHex{t: t, script: []step{{status: 500, create: true}}, hideRuns: 10 * time.Minute}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		req := trig("s")
		req.Deadline = time.Now().Add(5 * time.Second)
		_, err := c.Trigger(context.Background(), req)
		var de *DeadlineError
		if !errors.As(err, &de) || de.Unresolved.IsZero() {
			// With the listing after the deadline showing nothing, Unresolved is cleared;
			// what must hold is that there was no second POST.
			if de == nil {
				t.Fatalf("err %v", err)
			}
		}
		if posts, _, _ := f.snapshot(); len(posts) != 1 {
			t.Fatalf("%d posts after an ambiguous attempt past the deadline, want 1", len(posts))
		}
		// Later, crash-recovery style reconcile finds it.
		time.Sleep(11 * time.Minute)
		run, err := c.Reconcile(context.Background(), testProject, de.Deadline.Add(-5*time.Second), nil)
		if err != nil || run == nil || run.RunID != "run-1" {
			t.Fatalf("Reconcile = %+v, %v", run, err)
		}
	})
}

func TestTriggerCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, script: []step{{hang: true, create: true}}}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Second); cancel() }()
		_, err := c.Trigger(ctx, trig("s"))
		var ce *CanceledError
		if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) || ce.Unresolved.IsZero() {
			t.Fatalf("err %v, want CanceledError with an unresolved attempt", err)
		}
	})
}

func TestConcurrentTriggersStayUnderCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		var wg sync.WaitGroup
		for i := range 45 {
			wg.Go(func() {
				req := trig("s")
				req.Slot = "s" + string(rune('a'+i))
				req.Deadline = time.Now().Add(2 * time.Hour)
				if _, err := c.Trigger(context.Background(), req); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		posts, _, runs := f.snapshot()
		if len(runs) != 45 {
			t.Fatalf("%d runs", len(runs))
		}
		for _, w := range []struct {
			per   time.Duration
			limit int
		}{{time.Minute, 20}, {time.Hour, 60}} {
			for i := range posts {
				n := 0
				for j := i; j < len(posts) && posts[j].Sub(posts[i]) < w.per; j++ {
					n++
				}
				if n > w.limit {
					t.Fatalf("%d POSTs within %v of %v, limit %d", n, w.per, posts[i], w.limit)
				}
			}
		}
	})
}

func TestReadsGoThroughReadBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		start := time.Now()
		for range 31 {
			if _, err := c.GetProjectRuns(context.Background(), testProject, RunsQuery{Limit: 5}); err != nil {
				t.Fatal(err)
			}
		}
		_, lists, _ := f.snapshot()
		if lists[29].Sub(start) != 0 {
			t.Fatalf("the first 30 status reads waited %v", lists[29].Sub(start))
		}
		if gap := lists[30].Sub(lists[0]); gap < time.Minute {
			t.Fatalf("31st status read %v after the first, want >= 1m (30/min)", gap)
		}
	})
}

// TestReadsHonourEveryStatusRule: with two status rules (a loose per-minute one and a
// tight per-hour one) both apply: the hourly rule holds the 6th read for an hour
// although the per-minute rule has room.
func TestReadsHonourEveryStatusRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), func(cfg *Config) {
			cfg.ReadLimits.Status = []Rule{{Limit: 30, Per: time.Minute}, {Limit: 5, Per: time.Hour}}
		})
		for range 6 {
			if _, err := c.GetProjectRuns(context.Background(), testProject, RunsQuery{Limit: 5}); err != nil {
				t.Fatal(err)
			}
		}
		_, lists, _ := f.snapshot()
		if gap := lists[4].Sub(lists[0]); gap != 0 {
			t.Fatalf("the first 5 reads waited %v", gap)
		}
		if gap := lists[5].Sub(lists[0]); gap < time.Hour {
			t.Fatalf("6th status read %v after the first, want >= 1h (the second rule, 5 per hour)", gap)
		}
	})
}

// badStatus makes sure a non-2xx read is an *APIError with the decoded reason.
func TestReadErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHex{t: t, token: "hxtp_right"}
		c, _, _ := testClient(t, f, StaticToken("hxtp_wrong"), nil)
		_, err := c.GetRunStatus(context.Background(), testProject, "r")
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Class != ClassAuth || ae.Reason != "Unauthorized" || ae.TraceID != "trace-401" {
			t.Fatalf("err %#v", err)
		}
	})
}

// TestConcurrentAmbiguousNeverShareARun: several slots of one project get ambiguous
// answers at once, some with a run created and some without. Every slot ends with
// its own run, no run is handed to two slots, and no run is left over.
func TestConcurrentAmbiguousNeverShareARun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 40
		var script []step
		for i := range n {
			switch i % 3 {
			case 0:
				script = append(script, step{status: 500, create: true})
			case 1:
				script = append(script, step{status: 502})
			default:
				script = append(script, step{drop: true, create: true})
			}
		}
		f := &fakeHex{t: t, script: script}
		c, _, _ := testClient(t, f, StaticToken("hxtp_ok"), nil)
		var mu sync.Mutex
		got := map[string]string{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req := trig(fmt.Sprintf("s%d", i))
				time.Sleep(time.Duration(i%4) * time.Second)
				r, err := c.Trigger(context.Background(), req)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := got[r.RunID]; ok {
					t.Errorf("run %s handed to %s and %s", r.RunID, prev, req.Slot)
				}
				got[r.RunID] = req.Slot
			})
		}
		wg.Wait()
		_, _, runs := f.snapshot()
		if len(runs) != n || len(got) != n {
			t.Fatalf("%d runs created, %d handed out; want %d and %d", len(runs), len(got), n, n)
		}
	})
}
