package hexclient

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxWait caps every wait this package takes from a server header or a backoff.
const MaxWait = time.Hour

// unixThreshold separates a reset given as delta-seconds from one given as a unix
// timestamp (seconds): no server asks for a wait of three years, and no reset lies
// before 1973. unixMilliThreshold separates unix seconds from unix milliseconds: in
// seconds it is the year 5138, in milliseconds March 1973.
const (
	unixThreshold      = 100_000_000
	unixMilliThreshold = 100_000_000_000
)

// ParseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3): delta-seconds or an
// HTTP-date. A date in the past means 0. The wait is capped at MaxWait. ok is false
// for an empty or unparseable value (the caller falls back to its own backoff).
func ParseRetryAfter(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil { // overflow: a very large number of seconds
			return MaxWait, true
		}
		return capWait(secondsToDuration(float64(n))), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return capWait(t.Sub(now)), true
}

// ParseRateLimitReset parses a RateLimit-Reset or X-RateLimit-Reset value: seconds
// until the reset (fractions allowed); from 10⁸ on, a unix timestamp in seconds; from
// 10¹¹ on, a unix timestamp in milliseconds (Hex names neither the header nor its
// unit). A reset in the past means 0. ok is false for anything else.
func ParseRateLimitReset(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	if f >= unixMilliThreshold {
		f /= 1000
	}
	if f >= unixThreshold {
		sec, frac := math.Modf(f)
		if sec > float64(math.MaxInt64/int64(time.Second)) {
			return MaxWait, true
		}
		t := time.Unix(int64(sec), int64(frac*1e9))
		return capWait(t.Sub(now)), true
	}
	return capWait(secondsToDuration(f)), true
}

// HeaderWait returns the wait a 429 or 503 response names: Retry-After first, then
// RateLimit-Reset, then X-RateLimit-Reset. ok is false when none is usable.
func HeaderWait(h http.Header, now time.Time) (time.Duration, bool) {
	if d, ok := ParseRetryAfter(h.Get("Retry-After"), now); ok {
		return d, true
	}
	for _, k := range []string{"RateLimit-Reset", "X-RateLimit-Reset"} {
		if d, ok := ParseRateLimitReset(h.Get(k), now); ok {
			return d, true
		}
	}
	return 0, false
}

// Backoff is capped exponential backoff with full jitter: attempt n (0-based) waits a
// uniformly random duration in [0, min(Cap, Base·2ⁿ)].
type Backoff struct {
	Base time.Duration
	Cap  time.Duration
}

// Ceiling returns min(Cap, Base·2ⁿ), itself capped at MaxWait.
func (b Backoff) Ceiling(n int) time.Duration {
	c := b.Cap
	if c <= 0 || c > MaxWait {
		c = MaxWait
	}
	if b.Base <= 0 {
		return 0
	}
	if n < 0 {
		n = 0
	}
	if n >= 62 {
		return c
	}
	d := float64(b.Base) * math.Pow(2, float64(n))
	if d >= float64(c) {
		return c
	}
	return time.Duration(d)
}

// Delay returns attempt n's jittered wait, drawn from rng.
func (b Backoff) Delay(n int, rng *rand.Rand) time.Duration {
	c := b.Ceiling(n)
	if c <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(c) + 1))
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func secondsToDuration(s float64) time.Duration {
	if s >= MaxWait.Seconds() {
		return MaxWait
	}
	return time.Duration(s * float64(time.Second))
}

func capWait(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > MaxWait {
		return MaxWait
	}
	return d
}
