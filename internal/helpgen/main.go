// Command helpgen writes hexcron's man page and its bash and zsh completions from what
// the binary's --help says, so that they cannot drift from it: the command list and
// exit codes of `hexcron --help`, and each command's usage, text and flags from
// `hexcron COMMAND --help`. The Debian package build (dist/build-deb) runs it:
//
//	go run ./internal/helpgen --bin build/hexcron --out build/ --version 1.2.3 --date 2026-12-01
//
// It writes hexcron.1 (roff, man section 1), hexcron.bash and _hexcron (zsh).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("helpgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "", "the hexcron binary to ask for --help (required)")
	out := fs.String("out", ".", "directory to write hexcron.1, hexcron.bash and _hexcron into")
	version := fs.String("version", "", "version for the man page's footer (default: what `hexcron version` prints)")
	date := fs.String("date", "", "date for the man page's footer, YYYY-MM-DD (required, for a reproducible page)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *bin == "" || *date == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "helpgen: --bin and --date are required; no arguments")
		return 2
	}
	p, err := load(*bin)
	if err != nil {
		fmt.Fprintf(stderr, "helpgen: %v\n", err)
		return 1
	}
	if *version == "" {
		v, err := exec.Command(*bin, "version").Output()
		if err != nil {
			fmt.Fprintf(stderr, "helpgen: %s version: %v\n", *bin, err)
			return 1
		}
		*version = strings.TrimPrefix(strings.TrimSpace(string(v)), "hexcron ")
	}
	for name, text := range map[string]string{
		"hexcron.1":    p.manPage(*version, *date),
		"hexcron.bash": p.bash(),
		"_hexcron":     p.zsh(),
	} {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(text), 0o644); err != nil {
			fmt.Fprintf(stderr, "helpgen: %v\n", err)
			return 1
		}
	}
	return 0
}

// program is what hexcron --help and each command's --help say.
type program struct {
	Intro    []string // the lines before "Usage:"
	Commands []command
	Trailer  []string // the lines after the command list ("Run ...", "Exit codes: ...")
}

type command struct {
	Name, Summary string
	Usage         string   // after "Usage: ", e.g. "hexcron run [--config FILE] [flags]" ("" without one)
	Text          []string // between the usage line and "Flags:"
	Flags         []flagDef
}

type flagDef struct {
	Name  string // without the dash
	Arg   string // the value's placeholder ("string", "duration", "FILE"), "" for a bool
	Usage string
}

// load runs bin --help and bin COMMAND --help for each command.
func load(bin string) (*program, error) {
	top, err := help(bin, "--help")
	if err != nil {
		return nil, err
	}
	p, err := parseTop(top)
	if err != nil {
		return nil, err
	}
	for i := range p.Commands {
		c := &p.Commands[i]
		text, err := help(bin, c.Name, "--help")
		if err != nil {
			return nil, err
		}
		parseCommand(c, text)
	}
	return p, nil
}

// help runs bin with args and returns what it printed (--help goes to stdout for the
// top level, to stderr for a command); a non-zero exit is an error.
func help(bin string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

var commandLineRE = regexp.MustCompile(`^  (\S+)\s+(.+)$`)

// parseTop reads `hexcron --help`.
func parseTop(text string) (*program, error) {
	p := &program{}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	i := 0
	for ; i < len(lines) && !strings.HasPrefix(lines[i], "Usage:"); i++ {
		p.Intro = append(p.Intro, lines[i])
	}
	for ; i < len(lines) && lines[i] != "Commands:"; i++ {
	}
	if i == len(lines) {
		return nil, errors.New("no \"Commands:\" in hexcron --help")
	}
	for i++; i < len(lines) && lines[i] != ""; i++ {
		m := commandLineRE.FindStringSubmatch(lines[i])
		if m == nil {
			return nil, fmt.Errorf("hexcron --help: not a command line: %q", lines[i])
		}
		p.Commands = append(p.Commands, command{Name: m[1], Summary: m[2]})
	}
	for ; i < len(lines); i++ {
		if lines[i] != "" {
			p.Trailer = append(p.Trailer, lines[i])
		}
	}
	p.Intro = trimBlank(p.Intro)
	if len(p.Commands) == 0 || len(p.Intro) == 0 {
		return nil, errors.New("hexcron --help: no intro or no commands")
	}
	return p, nil
}

var (
	flagLineRE  = regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	shortFlagRE = regexp.MustCompile(`^  -(\S+)(?: (\S+))?\t(.*)$`)
)

// parseCommand reads `hexcron COMMAND --help`: "Usage: ...", text, "Flags:" and the
// flag package's defaults. A command without a usage line (version) keeps its summary.
func parseCommand(c *command, text string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "Usage: ") {
		return
	}
	c.Usage = strings.TrimPrefix(lines[0], "Usage: ")
	i := 1
	for ; i < len(lines) && lines[i] != "Flags:"; i++ {
		c.Text = append(c.Text, lines[i])
	}
	c.Text = trimBlank(c.Text)
	for i++; i < len(lines); i++ {
		l := lines[i]
		if m := shortFlagRE.FindStringSubmatch(l); m != nil {
			c.Flags = append(c.Flags, flagDef{Name: m[1], Arg: m[2], Usage: m[3]})
			continue
		}
		if m := flagLineRE.FindStringSubmatch(l); m != nil {
			c.Flags = append(c.Flags, flagDef{Name: m[1], Arg: m[2]})
			continue
		}
		if u, ok := strings.CutPrefix(l, "    \t"); ok && len(c.Flags) > 0 {
			f := &c.Flags[len(c.Flags)-1]
			f.Usage = strings.TrimSpace(f.Usage + " " + u)
		}
	}
}

func trimBlank(ls []string) []string {
	for len(ls) > 0 && strings.TrimSpace(ls[0]) == "" {
		ls = ls[1:]
	}
	for len(ls) > 0 && strings.TrimSpace(ls[len(ls)-1]) == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// takesFile reports whether a flag's value is a file name (for completion).
func (f flagDef) takesFile() bool {
	if f.Arg == "" {
		return false
	}
	return f.Arg == "FILE" || strings.Contains(strings.ToLower(f.Usage), "file")
}
