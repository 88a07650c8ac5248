package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The command tests' shared helpers. End-to-end helpers are in e2e_helpers_test.go.

// update rewrites golden files instead of comparing with them: `go test -update`, the
// one flag of every package with golden files (planner's too).
var update = flag.Bool("update", false, "rewrite the golden files (testdata/golden/*) from the current output")

// testEnv is an env with a fixed clock, no Hex token and no default config file.
func testEnv(t *testing.T, now time.Time, vars map[string]string) (*env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errb bytes.Buffer
	empty := t.TempDir()
	getenv := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if k == "CONFIGURATION_DIRECTORY" {
			return empty // no schedules.yaml there: status falls back to the database
		}
		return ""
	}
	return &env{stdout: &out, stderr: &errb, getenv: getenv, now: func() time.Time { return now }}, &out, &errb
}

// golden compares got with testdata/golden/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (-update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}
