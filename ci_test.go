package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCIRefusesTrackedBinaries runs .ci/tracked-files (which .ci/run calls first) in a
// scratch git repository: it fails naming every tracked ELF, Mach-O or PE binary and
// every file over 2 MB, leaves text alone (even one starting with "MZ"), and passes
// once they are untracked.
func TestCIRefusesTrackedBinaries(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	script, err := filepath.Abs(".ci/tracked-files")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	pe := make([]byte, 256)
	copy(pe, "MZ")
	pe[0x3c] = 0x80
	copy(pe[0x80:], "PE\x00\x00")
	files := map[string][]byte{
		"main.go":              []byte("package main\n"),
		"notes/mz.txt":         []byte("MZ is not always an executable\n"),
		"planner/planner.test": append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...),
		"bin/tool-darwin":      append([]byte{0xcf, 0xfa, 0xed, 0xfe}, make([]byte, 100)...),
		"bin/tool.exe":         pe,
		"testdata/huge.json":   bytes.Repeat([]byte("{}\n"), 1<<20), // 3 MB
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", ".")
	run := func() (string, error) {
		cmd := exec.Command("bash", script)
		cmd.Dir = filepath.Join(dir, "notes") // any directory inside the repository
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err == nil {
		t.Fatalf("passed with binaries tracked:\n%s", out)
	}
	for _, want := range []string{"planner/planner.test: ELF", "bin/tool-darwin: Mach-O", "bin/tool.exe: PE", "testdata/huge.json: 3145728 bytes, over the 2 MB limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, clean := range []string{"main.go", "mz.txt"} {
		if strings.Contains(out, clean) {
			t.Errorf("%s named:\n%s", clean, out)
		}
	}
	git("rm", "-q", "--cached", "planner/planner.test", "bin/tool-darwin", "bin/tool.exe", "testdata/huge.json")
	if out, err := run(); err != nil {
		t.Fatalf("fails with only text tracked: %v\n%s", err, out)
	}
}
