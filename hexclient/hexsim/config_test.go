package hexsim

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
seed: 4
users:
  - {name: alice, tokens: [hxtp_a1, hxtw_a2]}
projects:
  - {id: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c}
  - {id: 1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d, published: false, inputs: []}
limits:
  trigger: [{limit: 5, per: 10m}]
  status: []
  kernels: -1
  window: anchored
  style: none
runs:
  pending: 1m30s
  outcomes: {STUCK: 1}
faults:
  at: {2: drop-after-create}
  probabilities: {"503": 0.5}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seed != 4 || cfg.Users[0].Tokens[1] != "hxtw_a2" || !cfg.Projects[0].Published || cfg.Projects[1].Published ||
		cfg.Projects[0].Inputs != nil || cfg.Projects[1].Inputs == nil {
		t.Fatalf("decoded %+v", cfg)
	}
	if cfg.Limits.Trigger[0] != (Rule{5, 10 * time.Minute}) || cfg.Limits.Status == nil || len(cfg.Limits.Status) != 0 ||
		cfg.Limits.AllCalls != nil || cfg.Limits.Window != WindowAnchored || cfg.Runs.Pending != 90*time.Second ||
		cfg.Faults.At[2] != FaultDrop || cfg.Faults.Probabilities[FaultKernelCap] != 0.5 {
		t.Fatalf("decoded %+v", cfg)
	}
	d := cfg.withDefaults()
	if len(d.Limits.AllCalls) != 1 || len(d.Limits.Status) != 0 || d.Limits.Kernels != -1 || d.Runs.Running != 30*time.Second {
		t.Fatalf("defaults %+v", d.Limits)
	}
	if empty, err := ParseConfig(nil); err != nil || empty.Limits.Trigger != nil {
		t.Fatalf("empty config: %+v %v", empty, err)
	}
}

// TestParseConfigChoices: every undocumented behaviour the sim offers as a choice can
// be set from YAML (and defaults to what Hex documents, or to the usual guess).
func TestParseConfigChoices(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
list_order: unordered
reject_unknown_inputs: true
read_only_tokens: [hxtw_ro]
projects:
  - id: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c
    access: read
    version: 12
    schedules: [{cadence: CUSTOM, enabled: true, cron: "0 6 * * *", timezone: UTC}]
  - {id: 1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d, access: none}
limits:
  all_calls_window: rolling
  style: x-ratelimit
  reset_unit: unix-ms
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListOrder != ListUnordered || !cfg.RejectUnknownInputs || cfg.ReadOnlyTokens[0] != "hxtw_ro" ||
		cfg.Projects[0].Access != AccessRead || cfg.Projects[0].Version != 12 || cfg.Projects[1].Access != AccessNone ||
		cfg.Projects[0].Schedules[0] != (HexSchedule{Cadence: "CUSTOM", Enabled: true, Cron: "0 6 * * *", Timezone: "UTC"}) ||
		cfg.Limits.AllCallsWindow != WindowRolling || cfg.Limits.Style != StyleXRateLimit || cfg.Limits.ResetUnit != ResetUnixMilli {
		t.Fatalf("decoded %+v", cfg)
	}
	d := Config{}.withDefaults()
	if d.ListOrder != ListNewestFirst || d.RejectUnknownInputs || d.Limits.AllCallsWindow != WindowAnchored ||
		d.Limits.Window != WindowFixed || d.Limits.ResetUnit != ResetUnix {
		t.Fatalf("defaults %+v", d)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"tokenz: []", "field tokenz not found"},
		{"limits: {window: sliding}", "unknown window model"},
		{"limits: {style: loud}", "unknown 429 style"},
		{"limits: {trigger: [{limit: 3}]}", "no positive window length"},
		{"tokens: [abc]", "not of the form"},
		{"tokens: [hxtp_a, hxtp_a]", "listed twice"},
		{"users: [{tokens: [hxtp_a]}]", "no name"},
		{"projects: [{id: nope}]", "not a UUID"},
		{"runs: {outcomes: {DONE: 1}}", "unknown outcome"},
		{"runs: {pending: soon}", "cannot unmarshal"},
		{"faults: {probabilities: {delay: 0.7, 409: 0.7}}", "add up to"},
		{"faults: {next: [boom]}", "unknown fault"},
		{"faults: {at: {0: delay}}", "bad scripted fault"},
		{"list_order: random", "unknown list order"},
		{"limits: {reset_unit: fortnights}", "unknown reset unit"},
		{"limits: {all_calls_window: sliding}", "unknown window model"},
		{"read_only_tokens: [nope]", "read-only token is not of the form"},
		{"projects: [{id: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, access: admin}]", "unknown access"},
		{"projects: [{id: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, schedules: [{cadence: YEARLY}]}]", "schedule cadence"},
	} {
		_, err := ParseConfig([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.yaml, err, c.want)
		}
	}
}
