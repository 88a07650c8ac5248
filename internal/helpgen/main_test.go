package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// genDir and genProgram are helpgen's output for the real hexcron, built once by
// TestMain, and what its --help says.
var (
	genDir     string
	genProgram *program
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "helpgen-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "hexcron")
		if out, err := exec.Command("go", "build", "-buildmode=pie", "-trimpath", "-o", bin, "hexcron").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build hexcron: %v\n%s", err, out)
			return 1
		}
		var stderr bytes.Buffer
		if code := run([]string{"--bin", bin, "--out", dir, "--version", "1.2.3", "--date", "2026-12-01"}, &stderr); code != 0 {
			fmt.Fprintf(os.Stderr, "helpgen exit %d: %s", code, stderr.String())
			return 1
		}
		if genProgram, err = load(bin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		genDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// gen returns the directory helpgen wrote into and the parsed --help.
func gen(*testing.T) (string, *program) { return genDir, genProgram }

// need returns the path of tool, or skips (fails under CI=true, where .ci/run installs
// it) when it is missing.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found; on Debian: apt-get install %s", tool, pkg)
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("%s (CI=%s requires this check)", msg, ci)
	}
	t.Skip(msg)
	return ""
}

// TestManPage: groff formats the page without a warning, and the page has every
// command and every flag `hexcron --help` lists, and the exit codes with 78.
func TestManPage(t *testing.T) {
	dir, p := gen(t)
	groff := need(t, "groff", "groff-base")
	page := filepath.Join(dir, "hexcron.1")
	warn, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", page).CombinedOutput()
	if err != nil || len(warn) > 0 {
		t.Errorf("groff -ww: err=%v\n%s", err, warn)
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-P", "-cbou", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=200")
	text, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(text)), " ")
	flat = strings.ReplaceAll(flat, "\u2010", "-") // groff's hyphen at a line break
	if len(p.Commands) < 5 {
		t.Fatalf("only %d commands parsed from hexcron --help", len(p.Commands))
	}
	for _, c := range p.Commands {
		if !strings.Contains(flat, "hexcron "+c.Name) {
			t.Errorf("the page has no section for %q", c.Name)
		}
		for _, f := range c.Flags {
			if !strings.Contains(flat, "--"+f.Name) {
				t.Errorf("the page lacks %s's flag --%s", c.Name, f.Name)
			}
		}
	}
	if n := len(p.Commands[0].Flags); n < 5 {
		t.Errorf("only %d flags parsed for %q", n, p.Commands[0].Name)
	}
	for _, want := range []string{"HEXCRON(1)", "NAME hexcron - triggers Hex project runs", "EXIT STATUS", "78", "1.2.3", "2026-12-01"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the page lacks %q:\n%s", want, text)
		}
	}
}

// TestBashCompletion sources the completion in bash and completes as a user would.
func TestBashCompletion(t *testing.T) {
	dir, _ := gen(t)
	bash := need(t, "bash", "bash")
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "schedules.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ line, want string }{
		{"hexcron va", "validate"},
		{"hexcron ", "run plan validate check status history trigger sim version help --help --version"},
		{"hexcron run --met", "--metrics-addr"},
		{"hexcron run --sim", "--simulate"},
		{"hexcron run --config sch", "schedules.yaml"},
		{"hexcron plan --config=x --js", "--json"},
		{"hexcron history --s", "--schedule --since --slot --state"},
		{"hexcron help st", "status"},
		{"hexcron run --horizon ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			words := strings.Fields(tt.line)
			if strings.HasSuffix(tt.line, " ") {
				words = append(words, "")
			}
			var quoted []string
			for _, w := range words {
				quoted = append(quoted, fmt.Sprintf("%q", w))
			}
			script := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _hexcron; echo "${COMPREPLY[*]}"`,
				filepath.Join(dir, "hexcron.bash"), strings.Join(quoted, " "), len(words)-1)
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
			cmd.Dir = work
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("completing %q = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

// TestZshCompletion checks that zsh parses the completion and that compinit registers
// it for hexcron from a directory in $fpath, as /usr/share/zsh/vendor-completions is.
func TestZshCompletion(t *testing.T) {
	dir, p := gen(t)
	zsh := need(t, "zsh", "zsh")
	file := filepath.Join(dir, "_hexcron")
	if out, err := exec.Command(zsh, "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	script := fmt.Sprintf(`fpath=(%q $fpath); autoload -U compinit; compinit -u -d %q; print -r -- "$_comps[hexcron]"`,
		dir, filepath.Join(t.TempDir(), "zcompdump"))
	out, err := exec.Command(zsh, "-f", "-c", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "_hexcron" {
		t.Fatalf("compinit did not register _hexcron for hexcron: err=%v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Commands {
		if !regexp.MustCompile(`(?m)^    '` + regexp.QuoteMeta(c.Name) + `:`).Match(b) {
			t.Errorf("no command entry for %q", c.Name)
		}
		for _, f := range c.Flags {
			if !bytes.Contains(b, []byte("'--"+f.Name)) {
				t.Errorf("no spec for %s --%s", c.Name, f.Name)
			}
		}
	}
}

// TestParseCommand covers the two layouts of Go's flag defaults (a short flag's usage on
// the same line) and a command without a usage line.
func TestParseCommand(t *testing.T) {
	text := "Usage: hexcron x [-n N] NAME\n\nDoes x.\n\n  indented example\n\nFlags:\n" +
		"  -config FILE\n    \tconfig FILE to read\n  -n int\tcount (default 3)\n  -v\tverbose\n  -wait\n    \twait until it ends;\n    \tthen exit\n"
	c := command{Name: "x", Summary: "do x"}
	parseCommand(&c, text)
	want := command{Name: "x", Summary: "do x", Usage: "hexcron x [-n N] NAME",
		Text: []string{"Does x.", "", "  indented example"},
		Flags: []flagDef{{"config", "FILE", "config FILE to read"}, {"n", "int", "count (default 3)"},
			{"v", "", "verbose"}, {"wait", "", "wait until it ends; then exit"}}}
	if fmt.Sprintf("%#v", c) != fmt.Sprintf("%#v", want) {
		t.Errorf("parseCommand =\n%#v\nwant\n%#v", c, want)
	}
	if !c.Flags[0].takesFile() || c.Flags[1].takesFile() || c.Flags[2].takesFile() {
		t.Errorf("takesFile: config %v, n %v, v %v; want true, false, false", c.Flags[0].takesFile(), c.Flags[1].takesFile(), c.Flags[2].takesFile())
	}
	v := command{Name: "version", Summary: "print the version"}
	parseCommand(&v, "hexcron dev\n")
	if v.Usage != "" || len(v.Flags) != 0 || len(v.Text) != 0 {
		t.Errorf("version's --help (no usage line) parsed as %#v", v)
	}
}
