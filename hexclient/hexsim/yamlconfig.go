package hexsim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// fileConfig is the YAML form of Config (see docs/hexsim.md).
type fileConfig struct {
	Seed                 int64         `yaml:"seed"`
	BaseURL              string        `yaml:"base_url"`
	AppURL               string        `yaml:"app_url"`
	ProjectVersionString bool          `yaml:"project_version_string"`
	ListOrder            ListOrder     `yaml:"list_order"`
	RejectUnknownInputs  bool          `yaml:"reject_unknown_inputs"`
	ReadOnlyTokens       []string      `yaml:"read_only_tokens"`
	SharedUser           bool          `yaml:"shared_user"`
	Tokens               []string      `yaml:"tokens"`
	Users                []fileUser    `yaml:"users"`
	Projects             []fileProject `yaml:"projects"`
	Limits               fileLimits    `yaml:"limits"`
	Runs                 fileRuns      `yaml:"runs"`
	Faults               fileFaults    `yaml:"faults"`
	Latency              fileLatency   `yaml:"latency"`
}

type fileLatency struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

type fileUser struct {
	Name   string   `yaml:"name"`
	Tokens []string `yaml:"tokens"`
}

type fileProject struct {
	ID        string            `yaml:"id"`
	Title     string            `yaml:"title"`
	Published *bool             `yaml:"published"`
	Inputs    []string          `yaml:"inputs"`
	Access    Access            `yaml:"access"`
	Version   int               `yaml:"version"`
	Schedules []fileHexSchedule `yaml:"schedules"`
}

type fileHexSchedule struct {
	Cadence  string `yaml:"cadence"`
	Enabled  bool   `yaml:"enabled"`
	Cron     string `yaml:"cron"`
	Timezone string `yaml:"timezone"`
}

type fileRule struct {
	Limit int           `yaml:"limit"`
	Per   time.Duration `yaml:"per"`
}

type fileLimits struct {
	Trigger        []fileRule  `yaml:"trigger"`
	AllCalls       []fileRule  `yaml:"all_calls"`
	Status         []fileRule  `yaml:"status"`
	Kernels        int         `yaml:"kernels"`
	Window         WindowModel `yaml:"window"`
	AllCallsWindow WindowModel `yaml:"all_calls_window"`
	Style          RetryStyle  `yaml:"style"`
	ResetUnit      ResetUnit   `yaml:"reset_unit"`
}

type fileRuns struct {
	Pending       time.Duration       `yaml:"pending"`
	PendingJitter time.Duration       `yaml:"pending_jitter"`
	Running       time.Duration       `yaml:"running"`
	RunningJitter time.Duration       `yaml:"running_jitter"`
	Outcomes      map[Outcome]float64 `yaml:"outcomes"`
	UnknownStatus string              `yaml:"unknown_status"`
	Conflict409   bool                `yaml:"conflict_409"`
}

type fileFaults struct {
	Probabilities map[Fault]float64 `yaml:"probabilities"`
	Next          []Fault           `yaml:"next"`
	At            map[int]Fault     `yaml:"at"`
	Delay         time.Duration     `yaml:"delay"`
	RetryAfter    time.Duration     `yaml:"retry_after"`
}

// ParseConfig decodes a sim config from YAML, strictly (an unknown key is an error),
// and validates it. An empty document is the default config. Clock is left nil.
func ParseConfig(data []byte) (Config, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse sim config: %w", err)
	}
	cfg := Config{
		Seed: fc.Seed, BaseURL: fc.BaseURL, AppURL: fc.AppURL, ProjectVersionString: fc.ProjectVersionString,
		ListOrder: fc.ListOrder, RejectUnknownInputs: fc.RejectUnknownInputs, ReadOnlyTokens: fc.ReadOnlyTokens,
		SharedUser: fc.SharedUser, Tokens: fc.Tokens,
		Limits: Limits{Trigger: rules(fc.Limits.Trigger), AllCalls: rules(fc.Limits.AllCalls), Status: rules(fc.Limits.Status),
			Kernels: fc.Limits.Kernels, Window: fc.Limits.Window, AllCallsWindow: fc.Limits.AllCallsWindow,
			Style: fc.Limits.Style, ResetUnit: fc.Limits.ResetUnit},
		Runs: Lifecycle{Pending: fc.Runs.Pending, PendingJitter: fc.Runs.PendingJitter, Running: fc.Runs.Running,
			RunningJitter: fc.Runs.RunningJitter, Outcomes: fc.Runs.Outcomes, UnknownStatus: fc.Runs.UnknownStatus,
			Conflict409: fc.Runs.Conflict409},
		Faults: Faults{Probabilities: fc.Faults.Probabilities, Next: fc.Faults.Next, At: fc.Faults.At,
			Delay: fc.Faults.Delay, RetryAfter: fc.Faults.RetryAfter},
		Latency: Latency(fc.Latency),
	}
	for _, u := range fc.Users {
		cfg.Users = append(cfg.Users, User(u))
	}
	for _, p := range fc.Projects {
		pr := Project{ID: p.ID, Title: p.Title, Published: p.Published == nil || *p.Published, Inputs: p.Inputs,
			Access: p.Access, Version: p.Version}
		for _, hs := range p.Schedules {
			pr.Schedules = append(pr.Schedules, HexSchedule(hs))
		}
		cfg.Projects = append(cfg.Projects, pr)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("parse sim config: %w", err)
	}
	return cfg, nil
}

// LoadConfig reads and parses a sim config file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load sim config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func rules(fr []fileRule) []Rule {
	if fr == nil {
		return nil
	}
	out := make([]Rule, 0, len(fr))
	for _, r := range fr {
		out = append(out, Rule(r))
	}
	return out
}
