package planner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary YAML to the parser: it must never panic, must return
// either a config or a *ConfigError, and a config it accepts must expand and plan.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v is not a *ConfigError with problems", err)
			}
			for _, p := range ce.Problems {
				if p.File != "fuzz.yaml" || p.Message == "" || strings.Contains(p.String(), "\n") && !strings.Contains(string(data), "\n") {
					t.Fatalf("malformed problem %+v", p)
				}
			}
			return
		}
		for i := range cfg.Schedules {
			s := &cfg.Schedules[i]
			if s.Location == nil || s.Window <= 0 || s.Timeout <= 0 || s.spec == nil {
				t.Fatalf("accepted schedule without defaults: %+v", s)
			}
			s.Prev(t0)
		}
		res := Plan(cfg, Input{From: t0, Horizon: 2 * time.Hour})
		if res == nil {
			t.Fatal("nil plan")
		}
	})
}
