package hexsim

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestLatencyJitter: with Latency set, every answer takes between Min and Max on the
// sim's clock, the delays differ, the ledger's time falls inside the round trip, and
// the same seed gives the same delays.
func TestLatencyJitter(t *testing.T) {
	const lo, hi = 20 * time.Millisecond, 2 * time.Second
	run := func() []time.Duration {
		var rtts []time.Duration
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, Config{Seed: 3, Latency: Latency{Min: lo, Max: hi},
				Limits: Limits{AllCalls: []Rule{{Limit: -1}}, Status: []Rule{{Limit: -1}}, Trigger: []Rule{{Limit: -1}}}})
			var sent []time.Time
			for i := range 40 {
				start := time.Now()
				var r resp
				if i%2 == 0 {
					r, _ = h.trigger(tokA, proj1)
				} else {
					r = h.do("GET", "/projects", tokA, nil)
				}
				if r.status != http.StatusCreated && r.status != http.StatusOK {
					t.Fatalf("request %d: %d %s", i, r.status, r.body)
				}
				rtt := time.Since(start)
				if rtt < lo || rtt > hi {
					t.Errorf("request %d took %s, want within [%s, %s]", i, rtt, lo, hi)
				}
				sent = append(sent, start)
				rtts = append(rtts, rtt)
			}
			for i, rq := range h.sim.Requests() {
				if rq.Time.Before(sent[i]) || rq.Time.After(sent[i].Add(rtts[i])) {
					t.Errorf("request %d: ledger time %s outside its round trip [%s, +%s]", i, rq.Time, sent[i], rtts[i])
				}
			}
		})
		return rtts
	}
	a, b := run(), run()
	distinct := map[time.Duration]bool{}
	for i := range a {
		distinct[a[i]] = true
		if a[i] != b[i] {
			t.Fatalf("request %d: %s then %s with the same seed", i, a[i], b[i])
		}
	}
	if len(distinct) < 30 {
		t.Fatalf("only %d distinct delays in %d requests: not jittered", len(distinct), len(a))
	}
}

// TestLatencyZeroAddsNothing: without Latency, answers take no virtual time.
func TestLatencyZeroAddsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		start := time.Now()
		h.trigger(tokA, proj1)
		if d := time.Since(start); d != 0 {
			t.Fatalf("round trip took %s", d)
		}
	})
}

func TestLatencyConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte("latency: {min: 20ms, max: 2s}"))
	if err != nil || cfg.Latency != (Latency{Min: 20 * time.Millisecond, Max: 2 * time.Second}) {
		t.Fatalf("decoded %+v, %v", cfg.Latency, err)
	}
	for _, bad := range []string{"latency: {min: 2s, max: 1s}", "latency: {min: -1s}"} {
		if _, err := ParseConfig([]byte(bad)); err == nil || !strings.Contains(err.Error(), "latency") {
			t.Errorf("%s: %v, want a latency error", bad, err)
		}
	}
}
