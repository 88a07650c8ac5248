package planner

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

// FuzzConfigLimits repeats a fragment of YAML (often past the size or token limits):
// Parse must refuse what is over a limit with the limit's message, and whatever
// yaml.v3 builds stays within three nodes per counted token.
func FuzzConfigLimits(f *testing.F) {
	f.Add([]byte("- 1\n"), uint32(2_000_000))
	f.Add([]byte("1,"), uint32(60_000))
	f.Add([]byte("a: b\n"), uint32(30_000))
	f.Add([]byte("[:, :]\n"), uint32(100))
	f.Add([]byte("x-n: &a [1]\n"), uint32(3))
	f.Add([]byte("\"long string without tokens "), uint32(200_000))
	f.Fuzz(func(t *testing.T, frag []byte, times uint32) {
		if len(frag) == 0 {
			return
		}
		n := min(int(times), (MaxConfigBytes+4096)/len(frag)+1)
		data := []byte(strings.Repeat(string(frag), n))
		_, err := Parse("fuzz.yaml", data)
		var ce *ConfigError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error %v is not a *ConfigError", err)
		}
		switch {
		case len(data) > MaxConfigBytes:
			if ce == nil || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0].Message, "hexcron reads schedule files of at most") {
				t.Fatalf("%d bytes: %v", len(data), err)
			}
		case countTokens(data) > MaxTokens:
			if ce == nil || !strings.Contains(ce.Error(), "YAML tokens by this line") && !strings.Contains(ce.Error(), "YAML:") {
				t.Fatalf("%d tokens: %v", countTokens(data), err)
			}
		default:
			if err := checkTokenBound(data); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzFanoutCount builds matrices from fuzzed shapes: FanoutCount is the exact product
// (saturated), Fanout builds exactly that many combinations when it may and nothing
// when the count is over MaxFanout, and Parse refuses such a matrix at its line.
func FuzzFanoutCount(f *testing.F) {
	f.Add([]byte{10, 10, 10, 10, 10, 10, 10, 10, 10, 10})
	f.Add([]byte{2, 3, 4})
	f.Add([]byte{100, 100, 2})
	f.Add([]byte{61})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, shape []byte) {
		if len(shape) == 0 || len(shape) > 64 {
			return
		}
		m := map[string][]string{}
		want := big.NewInt(1)
		for k, n := range shape {
			if n == 0 {
				return
			}
			vals := make([]string, n)
			for v := range vals {
				vals[v] = fmt.Sprintf("v%d", v)
			}
			m[fmt.Sprintf("k%d", k)] = vals
			want.Mul(want, big.NewInt(int64(n)))
		}
		s := Schedule{Matrix: m}
		got := s.FanoutCount()
		if want.IsInt64() && got != want.Int64() || !want.IsInt64() && got != 1<<63-1 {
			t.Fatalf("FanoutCount = %d, want %s", got, want)
		}
		fan := s.Fanout()
		switch {
		case got > MaxFanout && fan != nil:
			t.Fatalf("Fanout built %d combinations over the limit", len(fan))
		case got <= MaxFanout && int64(len(fan)) != got:
			t.Fatalf("Fanout built %d, FanoutCount says %d", len(fan), got)
		}
		var b strings.Builder
		b.WriteString("schedules:\n  - name: a\n    project: " + limitsProject + "\n    cron: \"0 0 1 1 *\"\n    window: 744h\n    matrix:\n")
		for k := range shape {
			fmt.Fprintf(&b, "      k%d: [%s]\n", k, strings.Join(m[fmt.Sprintf("k%d", k)], ", "))
		}
		_, err := Parse("fan.yaml", []byte(b.String()))
		if got > MaxFanout {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Problems[0].Line != 6 || ce.Problems[0].Field != "schedules[0].matrix" {
				t.Fatalf("%d combinations: %v", got, err)
			}
		}
	})
}
