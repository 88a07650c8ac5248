package hexclient

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"
)

var now0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"7200", MaxWait, true},                                    // capped at 1h
		{"99999999999999999999999", MaxWait, true},                 // overflow: capped
		{"Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second, true},  // IMF-fixdate
		{"Sunday, 01-Mar-26 12:00:10 GMT", 10 * time.Second, true}, // RFC 850
		{"Sun Mar  1 12:00:20 2026", 20 * time.Second, true},       // asctime
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0, true},                 // past date means 0
		{"Mon, 01 Mar 2027 12:00:00 GMT", MaxWait, true},           // far future: capped
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"12abc", 0, false},
	} {
		got, ok := ParseRetryAfter(tc.in, now0)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestParseRateLimitReset(t *testing.T) {
	unix := func(d time.Duration) string { return strconv.FormatInt(now0.Add(d).Unix(), 10) }
	unixMilli := func(d time.Duration) string { return strconv.FormatInt(now0.Add(d).UnixMilli(), 10) }
	for _, tc := range []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"30", 30 * time.Second, true},
		{"2.5", 2500 * time.Millisecond, true},
		{unix(45 * time.Second), 45 * time.Second, true}, // a unix timestamp
		{unix(-time.Minute), 0, true},                    // already reset
		{unix(5 * time.Hour), MaxWait, true},
		{"99999999", MaxWait, true},                                         // just under the timestamp threshold: seconds, capped
		{unixMilli(45 * time.Second), 45 * time.Second, true},               // a unix timestamp in milliseconds
		{unixMilli(1500 * time.Millisecond), 1500 * time.Millisecond, true}, // its fraction of a second is kept
		{unixMilli(-time.Minute), 0, true},
		{unixMilli(5 * time.Hour), MaxWait, true},
		{"", 0, false},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"later", 0, false},
	} {
		got, ok := ParseRateLimitReset(tc.in, now0)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ParseRateLimitReset(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestHeaderWaitPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      http.Header
		want   time.Duration
		wantOK bool
	}{
		{"retry-after wins", http.Header{"Retry-After": {"10"}, "Ratelimit-Reset": {"20"}}, 10 * time.Second, true},
		{"garbage retry-after falls back to reset", http.Header{"Retry-After": {"soon"}, "Ratelimit-Reset": {"20"}}, 20 * time.Second, true},
		{"x-ratelimit-reset", http.Header{"X-Ratelimit-Reset": {"7"}}, 7 * time.Second, true},
		{"none", http.Header{}, 0, false},
		{"all garbage", http.Header{"Retry-After": {"x"}, "X-Ratelimit-Reset": {"y"}}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := HeaderWait(tc.h, now0)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("HeaderWait = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := Backoff{Base: 2 * time.Second, Cap: 5 * time.Minute}
	for n := 0; n < 100; n++ {
		ceil := b.Ceiling(n)
		want := min(5*time.Minute, 2*time.Second<<min(n, 20))
		if ceil != want {
			t.Fatalf("Ceiling(%d) = %v, want %v", n, ceil, want)
		}
		var lo, hi time.Duration = ceil, 0
		for range 200 {
			d := b.Delay(n, rng)
			if d < 0 || d > ceil {
				t.Fatalf("Delay(%d) = %v outside [0, %v]", n, d, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceil/4 || hi < ceil*3/4 {
			t.Fatalf("Delay(%d) spans only [%v, %v] of [0, %v]: not full jitter", n, lo, hi, ceil)
		}
	}
	if got := (Backoff{Base: time.Minute, Cap: 10 * time.Hour}).Ceiling(30); got != MaxWait {
		t.Fatalf("cap above MaxWait not clamped: %v", got)
	}
	if got := (Backoff{}).Delay(3, rng); got != 0 {
		t.Fatalf("zero backoff waits %v", got)
	}
}
