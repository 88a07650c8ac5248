package hexclient_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/clock"
	"hexcron/hexclient/hexsim"
	"hexcron/internal/bench"
)

// TestThroughputTable is issue 3's "zero 429s and near-cap throughput": a saturated
// backlog of 1,000 triggers for 8 simulated hours against each of hexsim's window
// models, limits 20/min and 60/h with no reserve, latencies jittered in [20 ms, 2 s].
// hexcron must get no 429 and at least 59 triggers per hour; the naive token-bucket
// client runs against the same servers and both rows are printed (cmd/hexbench prints
// the same experiment into docs/performance.md).
func TestThroughputTable(t *testing.T) {
	for _, w := range bench.Windows {
		for _, p := range []bench.Pattern{bench.PatternHexcron, bench.PatternNaive} {
			t.Run(string(p)+"/"+string(w), func(t *testing.T) {
				var res bench.ThroughputResult
				synctest.Test(t, func(t *testing.T) {
					var err error
					res, err = bench.Throughput(context.Background(), bench.ThroughputConfig{Clock: clock.System{}, Pattern: p, Window: w,
						Backlog: 1000, Workers: 20, Duration: 8 * time.Hour, Latency: hexsim.Latency{Min: 20 * time.Millisecond, Max: 2 * time.Second}})
					if err != nil {
						t.Fatal(err)
					}
				})
				var b strings.Builder
				bench.WriteThroughputTable(&b, []bench.ThroughputResult{res})
				t.Log(strings.Split(b.String(), "\n")[2])
				if p != bench.PatternHexcron {
					return
				}
				if res.TooMany != 0 {
					t.Errorf("hexcron received %d 429s", res.TooMany)
				}
				if res.PerHour < 59 || res.PerHour > 60 {
					t.Errorf("hexcron: %.2f triggers per hour, want within [59, 60]", res.PerHour)
				}
				if res.Requests != res.Triggered {
					t.Errorf("%d requests for %d runs: every request should create a run", res.Requests, res.Triggered)
				}
			})
		}
	}
}
