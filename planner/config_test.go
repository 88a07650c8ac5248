package planner

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/**) from the current output")

// golden compares got with testdata/<name>, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// describe renders a parse result: the errors and warnings, or the config.
func describe(cfg *Config, err error) string {
	var b strings.Builder
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		b.WriteString("errors:\n" + ce.Error() + "\n")
		for _, w := range ce.Warnings {
			b.WriteString("warning: " + w.String() + "\n")
		}
		return b.String()
	case err != nil:
		return "error: " + err.Error() + "\n"
	}
	fmt.Fprintf(&b, "hex: %s token_file=%q\n", cfg.Hex.BaseURL, cfg.Hex.TokenFile)
	fmt.Fprintf(&b, "budget: triggers=%v reads=%v min_spacing=%s max_running=%d\n", cfg.Budget.Triggers, cfg.Budget.Reads, cfg.Budget.MinSpacing, cfg.Budget.MaxRunning)
	fmt.Fprintf(&b, "state: retention=%s\n", FormatDuration(cfg.State.Retention))
	fmt.Fprintf(&b, "timezone: %s\n", cfg.Location)
	for _, s := range cfg.Schedules {
		fmt.Fprintf(&b, "- %s (line %d) project=%s cron=%q tz=%s window=%s timeout=%s overlap=%s catchup=%s priority=%d\n",
			s.Name, s.Line, s.Project, s.Cron, s.Location, s.Window, s.Timeout, s.Overlap, s.Catchup, s.Priority)
		fmt.Fprintf(&b, "  params=%v use_cached_sql=%s update_published_results=%s matrix=%v fanout=%d\n",
			s.Params, boolp(s.UseCachedSQL), boolp(s.UpdatePublishedResults), s.Matrix, len(s.Fanout()))
		for _, n := range s.Notify {
			fmt.Fprintf(&b, "  notify %s slack=%v users=%v groups=%v screenshot=%v\n", n.HexType(), n.SlackChannels, n.UserIDs, n.GroupIDs, n.IncludeSuccessScreenshot)
		}
	}
	for _, w := range cfg.Warnings {
		b.WriteString("warning: " + w.String() + "\n")
	}
	return b.String()
}

func boolp(p *bool) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no testdata configs", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(filepath.Base(file), data)
			if good := strings.HasPrefix(name, "good-"); good != (err == nil) {
				t.Errorf("Parse error = %v, want error: %v", err, !good)
			}
			if err != nil && strings.Contains(err.Error(), "hxtp_") {
				t.Error("an error message repeats the token")
			}
			golden(t, "config/"+name+".golden", describe(cfg, err))
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a wrapped not-exist error", err)
	}
}

func TestScheduleHelpers(t *testing.T) {
	cfg, err := LoadFile("testdata/config/good-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Schedule("regional-report")
	fs := s.Firings(utc("2026-11-30T11:30:00Z"))
	var slots []string
	for _, f := range fs {
		slots = append(slots, f.Slot)
	}
	want := []string{
		"regional-report@2026-11-30T11:30:00Z[region=emea]",
		"regional-report@2026-11-30T11:30:00Z[region=amer]",
		"regional-report@2026-11-30T11:30:00Z[region=apac]",
	}
	if !slices.Equal(slots, want) {
		t.Fatalf("slots %v", slots)
	}
	if got := fs[0].Deadline.Sub(fs[0].Release); got != s.Window {
		t.Fatalf("deadline - release = %s", got)
	}
	p := cfg.Schedule("revenue-dashboard").InputParams(map[string]string{"region": "amer"})
	if p["region"] != "amer" || p["source"] != "hexcron" {
		t.Fatalf("params %v", p)
	}
	if got := SlotKey("x", utc("2026-01-01T00:00:00Z"), map[string]string{"b": "2", "a": "1"}); got != "x@2026-01-01T00:00:00Z[a=1,b=2]" {
		t.Fatal(got)
	}
	prev, ok := cfg.Schedule("regional-report").Prev(utc("2026-11-30T11:30:00Z"))
	if !ok || !prev.Equal(utc("2026-11-27T11:30:00Z")) { // Friday, 06:30 in New York
		t.Fatalf("prev = %s %v", prev, ok)
	}
}
