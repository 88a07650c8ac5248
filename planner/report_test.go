package planner

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlanReportGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/plan/*.yaml")
	files = append(files, "../schedules.example.yaml")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			from := utc("2026-11-29T23:00:00Z") // Monday 00:00 in Berlin
			in := Input{From: from, Horizon: 3 * time.Hour}
			res := Plan(cfg, in)
			verify(t, cfg, in, res)
			var table, verbose, js bytes.Buffer
			if err := WriteTable(&table, filepath.Base(file), res, false); err != nil {
				t.Fatal(err)
			}
			if err := WriteTable(&verbose, filepath.Base(file), res, true); err != nil {
				t.Fatal(err)
			}
			if len(res.Unplaced) > 0 {
				golden(t, "plan/"+name+".verbose.txt", verbose.String())
			} else if verbose.String() != table.String() {
				t.Error("--verbose changed a plan where everything fits")
			}
			if err := WriteJSON(&js, res); err != nil {
				t.Fatal(err)
			}
			golden(t, "plan/"+name+".txt", table.String())
			golden(t, "plan/"+name+".json", js.String())

			var shape map[string]json.RawMessage
			if err := json.Unmarshal(js.Bytes(), &shape); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"from", "horizon", "rules", "hours", "firings", "unplaced"} {
				if _, ok := shape[k]; !ok {
					t.Errorf("JSON lacks %q", k)
				}
			}
		})
	}
}

// TestExamplePlanFitsAndSpreads keeps schedules.example.yaml honest: valid, every
// firing placed over a whole week, and some firings visibly moved.
func TestExamplePlanFitsAndSpreads(t *testing.T) {
	cfg, err := LoadFile("../schedules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) > 0 || len(cfg.Schedules) < 12 {
		t.Fatalf("warnings %v, %d schedules", cfg.Warnings, len(cfg.Schedules))
	}
	res := Plan(cfg, Input{From: utc("2026-11-29T23:00:00Z"), Horizon: 7 * 24 * time.Hour})
	if len(res.Unplaced) > 0 {
		t.Fatalf("%d unplaced: %s", len(res.Unplaced), res.Unplaced[0].Reason)
	}
	shifted := 0
	for _, f := range res.Firings {
		if f.Shift() > 0 {
			shifted++
		}
	}
	if shifted == 0 {
		t.Fatal("nothing is spread: the example should show the planner at work")
	}
}
