package scheduler

import (
	"slices"
	"testing"
	"time"

	"hexcron/hexclient"
	"hexcron/planner"
)

// TestClientLimitsKeepsEveryReadRule: every rule of budget.reads reaches the client's
// status caps (a config with an hourly read rule besides the per-minute one must not
// lose it), and the trigger rules keep their reserves.
func TestClientLimitsKeepsEveryReadRule(t *testing.T) {
	conf, err := planner.Parse("reads.yaml", []byte(`budget:
  triggers: [{limit: 20, per: 1m}, {limit: 60, per: 1h, reserve: 10}]
  reads: [{limit: 30, per: 1m}, {limit: 600, per: 1h, reserve: 100}]
  min_spacing: 5s
schedules:
  - {name: a, project: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, cron: "0 * * * *"}
`))
	if err != nil {
		t.Fatal(err)
	}
	b, reads := ClientLimits(conf)
	wantStatus := []hexclient.Rule{{Limit: 30, Per: time.Minute}, {Limit: 600, Per: time.Hour, Reserve: 100}}
	if !slices.Equal(reads.Status, wantStatus) {
		t.Errorf("status rules %+v, want %+v", reads.Status, wantStatus)
	}
	if reads.All != hexclient.DefaultReadLimits().All {
		t.Errorf("all-calls rule %+v, want Hex's %+v", reads.All, hexclient.DefaultReadLimits().All)
	}
	wantTrig := []hexclient.Rule{{Limit: 20, Per: time.Minute}, {Limit: 60, Per: time.Hour, Reserve: 10}}
	if !slices.Equal(b.Rules, wantTrig) || b.MinSpacing != 5*time.Second {
		t.Errorf("trigger budget %+v, want %+v and 5s spacing", b, wantTrig)
	}
}

// TestRunRequestView: a schedule with a view sends Hex's viewId and no inputParams.
func TestRunRequestView(t *testing.T) {
	conf, err := planner.Parse("v.yaml", []byte(`schedules:
  - {name: a, project: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, cron: "0 * * * *", view: view-1, update_published_results: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &conf.Schedules[0]
	req := runRequest(s, s.Firings(time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC))[0])
	if req.ViewID != "view-1" || req.InputParams != nil || req.UpdatePublishedResults == nil || !*req.UpdatePublishedResults {
		t.Fatalf("run request %+v", req)
	}
}
