package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"hexcron/systemd"
)

// TestRunExitCodes: `run` exits 78 (EX_CONFIG) when its config is invalid or unreadable
// at start, with or without --simulate, and only then: a missing token is 1 (the
// operator may install it while systemd keeps retrying) and a bad flag 2.
func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("schedules:\n  - name: x\n    project: 5a8591dd-4039-49df-9202-96385ba3eff8\n    cron: \"*/15 * * *\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("schedules:\n  - {name: x, project: 5a8591dd-4039-49df-9202-96385ba3eff8, cron: \"0 * * * *\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "hexcron.db")
	for _, tc := range []struct {
		name     string
		args     []string
		vars     map[string]string
		code     int
		inStderr string
	}{
		{"invalid config", []string{"run", "--config", bad, "--db", db}, map[string]string{"HEX_API_TOKEN": "hxtp_test"},
			exitConfig, bad + ":4: schedules[0].cron"},
		{"missing config", []string{"run", "--config", filepath.Join(dir, "nope.yaml"), "--db", db}, map[string]string{"HEX_API_TOKEN": "hxtp_test"},
			exitConfig, "nope.yaml"},
		{"invalid config, simulate", []string{"run", "--simulate", "--config", bad, "--db", db}, nil,
			exitConfig, "schedules[0].cron"},
		{"no token", []string{"run", "--config", good, "--db", db}, nil,
			exitError, "no Hex token"},
		{"bad flag", []string{"run", "--config", good, "--bogus"}, nil,
			exitUsage, "flag provided but not defined: -bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, errb := testEnv(t, fixtureNow, tc.vars)
			if code := run(tc.args, e); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb)
			}
			if !strings.Contains(errb.String(), tc.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inStderr, errb)
			}
		})
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a run that could not start created its database (stat: %v)", err)
	}

	// The real process: the status systemd sees.
	if testing.Short() {
		return
	}
	cmd := exec.Command(binPath, "run", "--config", bad, "--db", db)
	cmd.Env = append(os.Environ(), "HEX_API_TOKEN=hxtp_test")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitConfig {
		t.Errorf("hexcron run with an invalid config: %v, want exit status %d\n%s", err, exitConfig, out)
	}
}

// TestUnitPreventsRestartOnConfigError: the unit restarts on failure, except with the
// status `run` gives an invalid config, which a restart cannot fix.
func TestUnitPreventsRestartOnConfigError(t *testing.T) {
	var restart, prevent []string
	section := ""
	for _, l := range strings.Split(string(systemd.Unit()), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			section = l
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || section != "[Service]" || strings.HasPrefix(l, "#") {
			continue
		}
		switch k {
		case "Restart":
			restart = append(restart, v)
		case "RestartPreventExitStatus":
			prevent = append(prevent, strings.Fields(v)...)
		}
	}
	if strings.Join(restart, " ") != "on-failure" {
		t.Errorf("Restart=%q, want on-failure", restart)
	}
	found := false
	for _, p := range prevent {
		found = found || p == strconv.Itoa(exitConfig)
		if p == strconv.Itoa(exitUsage) || p == strconv.Itoa(exitError) {
			t.Errorf("RestartPreventExitStatus= names %s: Go exits 2 on a panic and 1 on transient failures, which a restart may fix", p)
		}
	}
	if !found {
		t.Errorf("RestartPreventExitStatus=%q does not name %d (exitConfig)", prevent, exitConfig)
	}
}
