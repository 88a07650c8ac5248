package bench

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"hexcron/clock"
)

// naive is the usual client: a token bucket per Hex rule, each refilled continuously
// and full at the start, and a fixed exponential backoff on 429.
type naive struct {
	clk   clock.Clock
	hc    *http.Client
	url   string
	token string

	mu      sync.Mutex
	buckets []bucket
}

// bucket is a continuously refilled token bucket; tokens may go negative, which
// reserves future tokens (as golang.org/x/time/rate's Wait does).
type bucket struct {
	capacity float64
	per      time.Duration // time to refill capacity tokens
	tokens   float64
	last     time.Time
}

func newNaive(clk clock.Clock, hc *http.Client, url, token string) *naive {
	now := clk.Now()
	return &naive{clk: clk, hc: hc, url: url, token: token, buckets: []bucket{
		{capacity: 20, per: time.Minute, tokens: 20, last: now},
		{capacity: 60, per: time.Hour, tokens: 60, last: now},
	}}
}

// reserve takes one token from every bucket and returns how long to wait for it.
func (n *naive) reserve() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.clk.Now()
	var wait time.Duration
	for i := range n.buckets {
		b := &n.buckets[i]
		rate := b.capacity / float64(b.per) // tokens per nanosecond
		b.tokens = min(b.capacity, b.tokens+float64(now.Sub(b.last))*rate)
		b.last = now
		b.tokens--
		if b.tokens < 0 {
			wait = max(wait, time.Duration(-b.tokens/rate))
		}
	}
	return wait
}

// trigger sends one trigger until it is created (or ctx ends).
func (n *naive) trigger(ctx context.Context, slot string) {
	for attempt := 0; ctx.Err() == nil; {
		if clock.Sleep(ctx, n.clk, n.reserve()) != nil {
			return
		}
		status := n.post(ctx)
		switch status {
		case http.StatusCreated:
			return
		case http.StatusTooManyRequests:
			backoff := 30 * time.Second << min(attempt, 7) // 30 s·2ⁿ, at most 64 min
			attempt++
			if clock.Sleep(ctx, n.clk, backoff) != nil {
				return
			}
		default:
			if clock.Sleep(ctx, n.clk, 30*time.Second) != nil {
				return
			}
		}
	}
}

func (n *naive) post(ctx context.Context) int {
	actx, cancel := clock.WithTimeout(ctx, n.clk, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, n.url, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	res, err := n.hc.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
