package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

// Pattern is a way of pacing triggers.
type Pattern string

// The patterns the throughput experiment compares.
const (
	// PatternHexcron is hexclient.Trigger: the sliding-log budget, holds on 429.
	PatternHexcron Pattern = "hexcron"
	// PatternNaive is what a client usually does: a continuously refilled token bucket
	// per Hex rule (20 per minute, 60 per hour) and, on a 429, a fixed backoff of
	// 30 s·2ⁿ (n: the trigger's earlier 429s) before trying the same trigger again.
	PatternNaive Pattern = "naive"
)

// Windows are the window models hexsim can count Hex's limits with.
var Windows = []hexsim.WindowModel{hexsim.WindowFixed, hexsim.WindowAnchored, hexsim.WindowRolling}

// ThroughputConfig is one run of the saturated-backlog experiment. Zero fields take
// the defaults named on each.
type ThroughputConfig struct {
	// Clock is the time source of the client and of hexsim. Required.
	Clock clock.Clock
	// Pattern is the client under test (default PatternHexcron).
	Pattern Pattern
	// Window is how hexsim counts its limits (default hexsim.WindowFixed).
	Window hexsim.WindowModel
	// Backlog is how many triggers are queued at the start (default 1,000).
	Backlog int
	// Workers is how many triggers are in progress at once, each taking the next one
	// from the backlog as soon as its own ends (default 20: no more than 20 can be
	// admitted in a minute anyway). The backlog never runs dry, so the client always
	// has triggers waiting for admission.
	Workers int
	// Duration is how long the experiment runs on Clock (default 8 h).
	Duration time.Duration
	// Latency is hexsim's response latency (default 20 ms to 2 s).
	Latency hexsim.Latency
	// Seed seeds hexsim and the client's jitter (default 1).
	Seed int64
}

// ThroughputResult is what Hex (hexsim's ledger) saw during one run.
type ThroughputResult struct {
	Pattern  Pattern
	Window   hexsim.WindowModel
	Duration time.Duration
	// Triggered is the number of runs created during Duration.
	Triggered int
	// Requests is the number of RunProject requests Hex received.
	Requests int
	// TooMany is the number of those answered 429.
	TooMany int
	// PerHour is Triggered per hour of Duration.
	PerHour float64
}

const benchProject = "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"

// Throughput runs a backlog of triggers against hexsim (Hex's default limits, 20 per
// minute and 60 per hour, counted with cfg.Window, answering with jittered latency)
// over an in-memory network for cfg.Duration, and reports what Hex saw.
func Throughput(ctx context.Context, cfg ThroughputConfig) (ThroughputResult, error) {
	if cfg.Clock == nil {
		return ThroughputResult{}, errors.New("bench: throughput: no clock")
	}
	if cfg.Pattern == "" {
		cfg.Pattern = PatternHexcron
	}
	if cfg.Window == "" {
		cfg.Window = hexsim.WindowFixed
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 20
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 8 * time.Hour
	}
	if cfg.Latency == (hexsim.Latency{}) {
		cfg.Latency = hexsim.Latency{Min: 20 * time.Millisecond, Max: 2 * time.Second}
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	sim := hexsim.New(hexsim.Config{Clock: cfg.Clock, Seed: cfg.Seed, Latency: cfg.Latency,
		Limits: hexsim.Limits{Window: cfg.Window}})
	pn := hexsim.NewPipeNet()
	stop := pn.Serve(sim)
	tr := pn.Transport()
	defer func() { tr.CloseIdleConnections(); stop() }()
	hc := &http.Client{Transport: tr}

	var trigger func(ctx context.Context, slot string)
	switch cfg.Pattern {
	case PatternHexcron:
		c, err := hexclient.New(hexclient.Config{BaseURL: "http://127.0.0.1/api/v1", Token: hexclient.StaticToken("hxtp_bench"),
			HTTPClient: hc, Clock: cfg.Clock, Rand: rand.New(rand.NewPCG(uint64(cfg.Seed), 2))})
		if err != nil {
			return ThroughputResult{}, fmt.Errorf("bench: throughput: %w", err)
		}
		trigger = func(ctx context.Context, slot string) {
			_, _ = c.Trigger(ctx, hexclient.TriggerRequest{Slot: slot, ProjectID: benchProject})
		}
	case PatternNaive:
		n := newNaive(cfg.Clock, hc, "http://127.0.0.1/api/v1/projects/"+benchProject+"/runs", "hxtp_bench")
		trigger = n.trigger
	default:
		return ThroughputResult{}, fmt.Errorf("bench: throughput: unknown pattern %q", cfg.Pattern)
	}

	start := cfg.Clock.Now()
	end := start.Add(cfg.Duration)
	rctx, cancel := context.WithCancel(ctx)
	queue := make(chan string, cfg.Backlog)
	for i := range cfg.Backlog {
		queue <- "bench@" + strconv.Itoa(i)
	}
	close(queue)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for slot := range queue {
				if rctx.Err() != nil {
					return
				}
				trigger(rctx, slot)
			}
		})
	}
	err := clock.Sleep(ctx, cfg.Clock, cfg.Duration)
	cancel()
	wg.Wait()
	if err != nil {
		return ThroughputResult{}, fmt.Errorf("bench: throughput: %w", err)
	}
	res := ThroughputResult{Pattern: cfg.Pattern, Window: cfg.Window, Duration: cfg.Duration}
	for _, r := range sim.Requests() {
		if r.Op != "RunProject" || !r.Time.Before(end) {
			continue
		}
		res.Requests++
		if r.Status == http.StatusTooManyRequests {
			res.TooMany++
		}
		if r.RunCreated != "" {
			res.Triggered++
		}
	}
	res.PerHour = float64(res.Triggered) / cfg.Duration.Hours()
	return res, nil
}

// ThroughputAll runs every pattern against every window model with cfg's other
// settings, concurrently, in the order hexcron then naive, fixed, anchored, rolling.
func ThroughputAll(ctx context.Context, cfg ThroughputConfig) ([]ThroughputResult, error) {
	var cfgs []ThroughputConfig
	for _, p := range []Pattern{PatternHexcron, PatternNaive} {
		for _, w := range Windows {
			c := cfg
			c.Pattern, c.Window = p, w
			cfgs = append(cfgs, c)
		}
	}
	out := make([]ThroughputResult, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Go(func() { out[i], errs[i] = Throughput(ctx, c) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// WriteThroughputTable writes results as a Markdown table.
func WriteThroughputTable(w io.Writer, rs []ThroughputResult) error {
	if _, err := fmt.Fprintln(w, "| client | window model | 429s received | RunProject requests | runs created | triggers per hour |\n|---|---|--:|--:|--:|--:|"); err != nil {
		return err
	}
	for _, r := range rs {
		if _, err := fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %.1f |\n", r.Pattern, r.Window, r.TooMany, r.Requests, r.Triggered, r.PerHour); err != nil {
			return err
		}
	}
	return nil
}
