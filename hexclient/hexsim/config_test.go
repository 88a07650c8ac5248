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
	} {
		_, err := ParseConfig([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.yaml, err, c.want)
		}
	}
}
