package planner

import (
	"strings"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{350 * time.Millisecond, "350ms"},
		{1500 * time.Millisecond, "1.5s"},
		{61500 * time.Millisecond, "1m2s"},
		{45 * time.Second, "45s"},
		{time.Minute, "1m"},
		{90 * time.Minute, "1h30m"},
		{time.Hour, "1h"},
		{4*time.Minute + 10*time.Second, "4m10s"},
		{24 * time.Hour, "24h"},
		{47*time.Hour + 59*time.Minute, "47h59m"},
		{48 * time.Hour, "2d"},
		{60 * time.Hour, "2d12h"},
		{90 * 24 * time.Hour, "90d"},
		{-2 * time.Second, "-2s"},
	} {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestStateRetention: state.retention takes days, Go durations and 0; anything under a
// minute (but 0), negative or not a duration is an error naming file, line and field.
func TestStateRetention(t *testing.T) {
	const schedules = "schedules:\n  - {name: a, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: \"@daily\"}\n"
	day := 24 * time.Hour
	for _, tt := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{"", DefaultRetention, ""},
		{"90d", 90 * day, ""},
		{"30d", 30 * day, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"36h", 36 * time.Hour, ""},
		{"1m", time.Minute, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{"59s", 0, `c.yaml:2: state.retention: must be at least 1m, or 0 to keep everything (got 59s)`},
		{"-1d", 0, `c.yaml:2: state.retention: must not be negative (got -1d)`},
		{"soon", 0, `c.yaml:2: state.retention: "soon" is not a duration: write it like 90d, 30d, 36h or 0 (keep everything)`},
		{"1.5d", 0, `c.yaml:2: state.retention: "1.5d" is not a duration`},
		{"40000d", 0, `c.yaml:2: state.retention: "40000d" is not a duration`},
		{"[1d]", 0, `c.yaml:2: state.retention: must be a duration`},
	} {
		doc := schedules
		if tt.value != "" {
			doc = "state:\n  retention: " + tt.value + "\n" + schedules
		}
		cfg, err := Parse("c.yaml", []byte(doc))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("retention %q: err = %v, want %q", tt.value, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("retention %q: %v", tt.value, err)
			continue
		}
		if cfg.State.Retention != tt.want {
			t.Errorf("retention %q = %v, want %v", tt.value, cfg.State.Retention, tt.want)
		}
	}
}
