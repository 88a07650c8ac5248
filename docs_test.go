package main

// The executable guide: the command blocks that docs/operations.md and docs/config.md
// mark with <!-- doctest ... --> are run by TestDocs and their output compared with
// what the doc shows, so that a change that alters an output fails until the doc
// follows (go test -run TestDocs -update rewrites the shown outputs). See
// docs/testing.md, "The executable guide".

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"hexcron/state"
)

// docFiles are the documents whose marked blocks TestDocs runs.
var docFiles = []string{"docs/operations.md", "docs/config.md"}

// envDocNow names the fixed clock of a `hexcron` a doc block runs: the test binary,
// started under the name hexcron with this variable set, is that hexcron.
const envDocNow = "HEXCRON_DOCTEST_NOW"

func init() {
	// The test binary as the `hexcron` of a doc block (see docEnv.setup).
	v := os.Getenv(envDocNow)
	if v == "" || filepath.Base(os.Args[0]) != "hexcron" {
		return
	}
	now, err := time.Parse(time.RFC3339, v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", envDocNow, v, err)
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: func() time.Time { return now }}))
}

// docNow is the default clock of the "vm" environment: Friday 2026-11-27 10:20:00 UTC
// (11:20 in Europe/Berlin, the example config's zone).
var docNow = time.Date(2026, 11, 27, 10, 20, 0, 0, time.UTC)

// docStep is one command of a marked block and the output the doc shows for it.
type docStep struct {
	cmd      string // one shell command line (continuations joined), or a whole script
	want     []string
	from, to int    // the lines of the file holding want (0-based, to exclusive)
	prefix   string // what starts each want line in the file ("# " or "")
	fixed    bool   // the doc shows no output for it, and none can be written in
}

// docBlock is one marked block.
type docBlock struct {
	file  string
	line  int // 1-based line of the marker
	env   string
	now   time.Time
	steps []docStep
}

var markerRE = regexp.MustCompile(`^<!-- doctest(?::\s*(.*?))?\s*-->$`)

// parseDocBlocks finds the marked blocks of a document. A marker is an HTML comment
// `<!-- doctest -->`, optionally with `env=vm|checkout` and `now=RFC3339`, on the line
// before a fenced block:
//
//   - lines starting with "$ " are commands and the lines after each, up to the next
//     command, its output (docs/config.md's form);
//   - otherwise, every line not starting with "#" is a command (a trailing "\" joins
//     the next line) and the "# " lines right after it are its output; when no line
//     starts with "#", the whole block is one script and the fenced block right after
//     it (blank lines between allowed) is its output.
func parseDocBlocks(file string, lines []string) ([]docBlock, error) {
	var blocks []docBlock
	for i := 0; i < len(lines); i++ {
		m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		b := docBlock{file: file, line: i + 1, env: "checkout"}
		for _, opt := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(opt, "=")
			switch k {
			case "env":
				b.env = v
			case "now":
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: now: %w", file, i+1, err)
				}
				b.now = t
			default:
				return nil, fmt.Errorf("%s:%d: unknown doctest option %q", file, i+1, opt)
			}
		}
		if b.env != "vm" && b.env != "checkout" {
			return nil, fmt.Errorf("%s:%d: env %q: want vm or checkout", file, i+1, b.env)
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			return nil, fmt.Errorf("%s:%d: a doctest marker must be followed by a fenced block", file, i+1)
		}
		start := i + 2
		end := start
		for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("%s:%d: unclosed block", file, i+2)
		}
		body := lines[start:end]
		prompt := slices.ContainsFunc(body, func(l string) bool { return strings.HasPrefix(l, "$ ") })
		comments := slices.ContainsFunc(body, func(l string) bool { return strings.HasPrefix(l, "#") })
		switch {
		case prompt:
			for j := start; j < end; j++ {
				l := lines[j]
				if strings.HasPrefix(l, "$ ") {
					b.steps = append(b.steps, docStep{cmd: l[2:], from: j + 1, to: j + 1})
					continue
				}
				if len(b.steps) == 0 {
					return nil, fmt.Errorf("%s:%d: output before the first command", file, j+1)
				}
				s := &b.steps[len(b.steps)-1]
				s.want, s.to = append(s.want, l), j+1
			}
		case comments:
			for j := start; j < end; j++ {
				l := lines[j]
				if strings.HasPrefix(l, "#") {
					if len(b.steps) == 0 {
						return nil, fmt.Errorf("%s:%d: output before the first command", file, j+1)
					}
					s := &b.steps[len(b.steps)-1]
					if s.to != j {
						return nil, fmt.Errorf("%s:%d: a command's output lines must follow it", file, j+1)
					}
					s.want, s.to, s.prefix = append(s.want, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")), j+1, "# "
					continue
				}
				cmd := l
				for strings.HasSuffix(cmd, "\\") && j+1 < end {
					j++
					cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(lines[j])
				}
				b.steps = append(b.steps, docStep{cmd: cmd, from: j + 1, to: j + 1, prefix: "# "})
			}
		default:
			s := docStep{cmd: strings.Join(body, "\n")}
			k := end + 1
			for k < len(lines) && strings.TrimSpace(lines[k]) == "" {
				k++
			}
			if k < len(lines) && (lines[k] == "```" || lines[k] == "```text") {
				out := k + 1
				stop := out
				for stop < len(lines) && !strings.HasPrefix(lines[stop], "```") {
					stop++
				}
				s.want, s.from, s.to = append([]string(nil), lines[out:stop]...), out, stop
				end = stop
			} else {
				s.fixed = true
			}
			b.steps = append(b.steps, s)
		}
		blocks = append(blocks, b)
		i = end
	}
	return blocks, nil
}

// docEnv is where a document's blocks of one env run, in order: a scratch directory
// as the working directory, a bin directory on $PATH with `hexcron` (this test binary,
// on a fixed clock) and `sudo` (which only runs its arguments), and for "vm" a scratch
// root standing in for / (paths under /etc/hexcron, /var/lib/hexcron, /root are
// moved there in the commands, and the root is cut from their output).
type docEnv struct {
	name, root, bin, cwd string
}

func newDocEnv(t *testing.T, name string) *docEnv {
	t.Helper()
	repo, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	e := &docEnv{name: name, root: filepath.Join(base, "root"), bin: filepath.Join(base, "bin"), cwd: filepath.Join(base, "work")}
	for _, d := range []string{e.bin, e.cwd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	link(self, filepath.Join(e.bin, "hexcron"))
	if err := os.WriteFile(filepath.Join(e.bin, "sudo"), []byte("#!/bin/sh\nexport SUDO_USER=\"$USER\" USER=root\nexec \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	switch name {
	case "checkout":
		// The repository's files, read-only by convention, with room for the
		// commands' own files (plan.txt) and a built ./hexcron.
		entries, err := os.ReadDir(repo)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if en.Name() != ".git" && en.Name() != "hexcron" { // a binary built in the checkout is not the one under test
				link(filepath.Join(repo, en.Name()), filepath.Join(e.cwd, en.Name()))
			}
		}
		link(self, filepath.Join(e.cwd, "hexcron"))
	case "vm":
		etc, lib := filepath.Join(e.root, "etc", "hexcron"), filepath.Join(e.root, "var", "lib", "hexcron")
		for _, d := range []string{etc, lib, filepath.Join(e.root, "root")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		copyFile(t, filepath.Join(repo, "schedules.example.yaml"), filepath.Join(etc, "schedules.yaml"))
		copyFile(t, filepath.Join(repo, "testdata", "docs", "schedules.new.yaml"), filepath.Join(e.cwd, "schedules.new.yaml"))
		fillDocsDB(t, filepath.Join(lib, "hexcron.db"))
	}
	return e
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// vmPathRE finds the VM paths a "vm" block's commands name.
var vmPathRE = regexp.MustCompile(`(^|[\s=:'"])/(etc/hexcron|var/lib/hexcron|root)\b`)

// run runs one command (or script) as the doc shows it and returns what it printed,
// stdout and stderr together, with the scratch root cut from it.
func (e *docEnv) run(t *testing.T, cmd string, now time.Time) string {
	t.Helper()
	if e.name == "vm" {
		cmd = vmPathRE.ReplaceAllString(cmd, "$1$$HEXCRON_DOC_ROOT/$2")
	}
	var out bytes.Buffer
	c := exec.Command("bash", "--noprofile", "--norc", "-c", "exec 2>&1\n"+cmd)
	c.Dir = e.cwd
	c.Stdout, c.Stderr = &out, &out
	c.Env = []string{
		"PATH=" + e.bin + string(os.PathListSeparator) + "/usr/local/bin:/usr/bin:/bin",
		"HOME=" + e.cwd, "USER=alice", "LANG=C.UTF-8", "TZ=UTC",
		"HEXCRON_DOC_ROOT=" + e.root,
		envDocNow + "=" + now.Format(time.RFC3339),
	}
	if err := c.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("bash: %v", err)
		}
	}
	return strings.ReplaceAll(out.String(), e.root, "")
}

func TestDocs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	for _, file := range docFiles {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(raw), "\n")
			blocks, err := parseDocBlocks(file, lines)
			if err != nil {
				t.Fatal(err)
			}
			if len(blocks) == 0 {
				t.Fatalf("%s marks no block to run", file)
			}
			envs := map[string]*docEnv{}
			type edit struct {
				from, to int
				lines    []string
			}
			var edits []edit
			for _, b := range blocks {
				e := envs[b.env]
				if e == nil {
					e = newDocEnv(t, b.env)
					envs[b.env] = e
				}
				now := b.now
				if now.IsZero() {
					now = docNow
				}
				for _, s := range b.steps {
					got := strings.Split(strings.TrimSuffix(e.run(t, s.cmd, now), "\n"), "\n")
					if len(got) == 1 && got[0] == "" {
						got = nil
					}
					if slices.Equal(got, s.want) {
						continue
					}
					if *update && !s.fixed {
						var repl []string
						for _, l := range got {
							repl = append(repl, strings.TrimRight(s.prefix+l, " "))
						}
						edits = append(edits, edit{s.from, s.to, repl})
						continue
					}
					t.Errorf("%s:%d: the output of\n  %s\ndiffers from what the doc shows (go test -run TestDocs -update rewrites it):\n%s",
						b.file, b.line, strings.ReplaceAll(s.cmd, "\n", "\n  "), lineDiff(s.want, got))
				}
			}
			if *update && len(edits) > 0 {
				sort.Slice(edits, func(i, j int) bool { return edits[i].from > edits[j].from })
				for _, ed := range edits {
					lines = slices.Replace(lines, ed.from, ed.to, ed.lines...)
				}
				if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: rewrote %d outputs", file, len(edits))
			}
		})
	}
}

// lineDiff shows want and got line by line: "  " same, "- " only in the doc, "+ "
// only in the output (a plain longest-common-subsequence diff).
func lineDiff(want, got []string) string {
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			fmt.Fprintf(&b, "  %s\n", want[i])
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&b, "+ %s\n", got[j])
			j++
		default:
			fmt.Fprintf(&b, "- %s\n", want[i])
			i++
		}
	}
	return b.String()
}

// TestParseDocBlocks covers the three block forms and the markers' options.
func TestParseDocBlocks(t *testing.T) {
	doc := strings.Split("text\n"+
		"<!-- doctest: env=vm now=2026-11-27T10:20:00Z -->\n"+
		"```sh\n"+
		"sudo hexcron a \\\n"+
		"  --flag; echo $?\n"+
		"# out 1\n"+
		"#\n"+
		"hexcron b\n"+
		"```\n"+
		"<!-- doctest -->\n"+
		"```\n"+
		"$ hexcron c\n"+
		"line c\n"+
		"$ hexcron d\n"+
		"```\n"+
		"<!-- doctest -->\n"+
		"```sh\n"+
		"hexcron e\n"+
		"hexcron f\n"+
		"```\n"+
		"\n"+
		"```\n"+
		"out e\n"+
		"```\n", "\n")
	blocks, err := parseDocBlocks("x.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []docBlock{
		{file: "x.md", line: 2, env: "vm", now: docNow, steps: []docStep{
			{cmd: "sudo hexcron a  --flag; echo $?", want: []string{"out 1", ""}, from: 5, to: 7, prefix: "# "},
			{cmd: "hexcron b", from: 8, to: 8, prefix: "# "},
		}},
		{file: "x.md", line: 10, env: "checkout", steps: []docStep{
			{cmd: "hexcron c", want: []string{"line c"}, from: 12, to: 13},
			{cmd: "hexcron d", from: 14, to: 14},
		}},
		{file: "x.md", line: 16, env: "checkout", steps: []docStep{
			{cmd: "hexcron e\nhexcron f", want: []string{"out e"}, from: 22, to: 23},
		}},
	}
	if !reflect.DeepEqual(blocks, want) {
		t.Errorf("parseDocBlocks =\n%#v\nwant\n%#v", blocks, want)
	}
	for _, bad := range []string{
		"<!-- doctest: env=mars -->\n```\n$ x\n```",
		"<!-- doctest: speed=2 -->\n```\n$ x\n```",
		"<!-- doctest -->\ntext\n```\n$ x\n```",
		"<!-- doctest -->\n```\n$ x\n",
		"<!-- doctest -->\n```sh\n# out first\nx\n```",
	} {
		if _, err := parseDocBlocks("bad.md", strings.Split(bad, "\n")); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

// fillDocsDB writes the database the "vm" blocks of docs/operations.md read: a
// morning of schedules.example.yaml up to docNow (Friday 2026-11-27 10:20 UTC, 11:20
// in Berlin), through the state API at fixed instants.
func fillDocsDB(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db, err := state.Open(ctx, path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	projects := map[string]string{
		"revenue-dashboard":     "5a8591dd-4039-49df-9202-96385ba3eff8",
		"ops-dashboard":         "9b2f4c1e-7a3d-4e8b-9c0f-1d2e3f4a5b6c",
		"marketing-funnel":      "3c4d5e6f-7081-4293-a4b5-c6d7e8f90a1b",
		"support-kpis":          "4d5e6f70-8192-43a4-b5c6-d7e8f90a1b2c",
		"inventory-sync":        "6f708192-a3b4-45c6-97d8-e9f00a1b2c3d",
		"fraud-signals":         "708192a3-b4c5-46d7-88e9-f00a1b2c3d4e",
		"nightly-finance-close": "8192a3b4-c5d6-47e8-b9f0-0a1b2c3d4e5f",
		"nightly-data-quality":  "92a3b4c5-d6e7-48f9-8a0b-1c2d3e4f5a6b",
		"churn-model-scores":    "a3b4c5d6-e7f8-4901-9b1c-2d3e4f5a6b7c",
		"regional-sales-report": "0f1e2d3c-4b5a-4789-8abc-def012345678",
		"exec-summary":          "b4c5d6e7-f809-4a1b-8c2d-3e4f5a6b7c8d",
		"weekly-cohorts":        "c5d6e7f8-091a-4b2c-9d3e-4f5a6b7c8d9e",
	}
	n := 0
	// run records one slot triggered at sent (its attempt in the ledger), started 6s
	// later, and ended after elapsed with end (0 elapsed: still running).
	run := func(key string, kind state.Kind, sent time.Time, end state.State, elapsed time.Duration) {
		t.Helper()
		n++
		id := fmt.Sprintf("%08x-1c2d-4e3f-8a4b-5c6d7e8f%04x", 0x5d7e0000+n*0x1111, n)
		sched, _, _ := strings.Cut(key, "@")
		project := projects[sched]
		if kind == state.KindManual {
			_, err := db.PlanSlot(ctx, state.Slot{Key: key, Kind: kind, Project: project, Timeout: 30 * time.Minute}, sent)
			must(err)
		}
		aid, _, err := db.Admit(ctx, state.Holder{}, sent, sent.Add(-2*time.Hour), key, func([]state.Attempt) time.Duration { return 0 })
		must(err)
		must(db.Complete(ctx, aid, sent.Add(400*time.Millisecond)))
		must(db.Transition(ctx, key, state.StateTriggered, state.Update{At: sent.Add(time.Second), RunID: id,
			RunURL: "https://app.hex.tech/app/" + project + "/latest?runId=" + id, TraceID: fmt.Sprintf("%016x%016x", uint64(n)*0x9e3779b97f4a7c15, uint64(n)*0xc2b2ae3d27d4eb4f),
			Triggered: sent, Project: project, Timeout: 30 * time.Minute, ProjectVersion: strconv.Itoa(3 + n%4)}))
		start := sent.Add(6 * time.Second)
		must(db.Transition(ctx, key, state.StateRunning, state.Update{At: start.Add(time.Second), Started: start}))
		if elapsed == 0 {
			return
		}
		must(db.Transition(ctx, key, end, state.Update{At: start.Add(elapsed + 5*time.Second),
			Reason: "hex status " + strings.ToUpper(string(end)), Started: start, Ended: start.Add(elapsed), Elapsed: elapsed}))
	}
	d := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		must(err)
		return tm
	}
	ok, errored := state.StateCompleted, state.StateErrored
	run("weekly-cohorts@2026-11-23T05:00:00Z", state.KindScheduled, d("2026-11-23T05:00:00Z"), ok, 38*time.Minute)
	for i, region := range []string{"amer", "anz", "apac", "emea", "latam"} {
		end := ok
		if region == "apac" {
			end = errored
		}
		run("regional-sales-report@2026-11-26T11:30:00Z[region="+region+"]", state.KindScheduled,
			d("2026-11-26T11:30:00Z").Add(time.Duration(i)*5*time.Second), end, time.Duration(70+13*i)*time.Second)
	}
	run("churn-model-scores@2026-11-26T23:00:00Z", state.KindScheduled, d("2026-11-26T23:00:00Z"), ok, 54*time.Minute)
	run("nightly-finance-close@2026-11-27T01:00:00Z", state.KindScheduled, d("2026-11-27T01:00:00Z"), ok, 41*time.Minute+3*time.Second)
	run("nightly-data-quality@2026-11-27T01:15:00Z", state.KindScheduled, d("2026-11-27T01:15:00Z"), ok, 12*time.Minute)
	run("exec-summary@2026-11-27T07:00:00Z", state.KindScheduled, d("2026-11-27T07:00:00Z"), ok, 91*time.Second)
	run("revenue-dashboard@2026-11-27T09:00:00Z", state.KindScheduled, d("2026-11-27T09:00:00Z"), ok, 192*time.Second)
	run("revenue-dashboard@2026-11-27T10:00:00Z", state.KindScheduled, d("2026-11-27T10:00:00Z"), ok, 210*time.Second)
	run("ops-dashboard@2026-11-27T10:00:00Z", state.KindScheduled, d("2026-11-27T10:00:05Z"), ok, 108*time.Second)
	run("marketing-funnel@2026-11-27T10:00:00Z", state.KindScheduled, d("2026-11-27T10:00:10Z"), errored, 47*time.Second)
	run("support-kpis@2026-11-27T10:00:00Z", state.KindScheduled, d("2026-11-27T10:00:15Z"), ok, 122*time.Second)
	run("inventory-sync@2026-11-27T10:00:00Z", state.KindScheduled, d("2026-11-27T10:00:20Z"), ok, 156*time.Second)
	run("fraud-signals@2026-11-27T10:00:30Z", state.KindScheduled, d("2026-11-27T10:00:30Z"), ok, 250*time.Second)
	run("revenue-dashboard@2026-11-27T10:12:40Z+manual", state.KindManual, d("2026-11-27T10:12:40Z"), ok, 185*time.Second)
	run("inventory-sync@2026-11-27T10:15:00Z", state.KindScheduled, d("2026-11-27T10:15:00Z"), "", 0)
}

// logKeysRE finds the stable log keys operations.md lists.
var logKeysRE = regexp.MustCompile(`(?s)These\s+keys\s+are\s+stable[^:]*:(.*?)\.\s`)

// TestDocsLogKeys: the stable log keys docs/operations.md lists are exactly the key
// constants of scheduler/logkeys.go and hexclient/logkeys.go.
func TestDocsLogKeys(t *testing.T) {
	raw, err := os.ReadFile("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	m := logKeysRE.FindSubmatch(raw)
	if m == nil {
		t.Fatal(`docs/operations.md has no sentence "These keys are stable ...: ` + "`schedule=`" + `, ...."`)
	}
	var doc []string
	for _, k := range regexp.MustCompile("`([a-z_]+)=`").FindAllSubmatch(m[1], -1) {
		doc = append(doc, string(k[1]))
	}
	sort.Strings(doc)
	var code []string
	for _, f := range []string{"scheduler/logkeys.go", "hexclient/logkeys.go"} {
		for _, v := range stringConsts(t, f) {
			if !slices.Contains(code, v) {
				code = append(code, v)
			}
		}
	}
	sort.Strings(code)
	if !slices.Equal(doc, code) {
		t.Errorf("docs/operations.md lists the stable log keys\n  %v\nthe code defines\n  %v", doc, code)
	}
}

// stringConsts returns the values of the string constants of a Go file whose names
// start with key or Key (the log keys).
func stringConsts(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, v := range vs.Values {
				if name := vs.Names[i].Name; !strings.HasPrefix(name, "key") && !strings.HasPrefix(name, "Key") {
					continue
				}
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
		return true
	})
	return out
}

// TestDocsLogMessages: every message the log table of docs/operations.md lists is one
// the daemon can log: a string literal of package scheduler or hexclient (or, ending
// in "...", the start of one), or a slot state (the run-end lines).
func TestDocsLogMessages(t *testing.T) {
	raw, err := os.ReadFile("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "| message (`msg=`)") {
			in = true
			continue
		}
		if in && !strings.HasPrefix(l, "|") {
			break
		}
		if in && !strings.HasPrefix(l, "|---") {
			cell := strings.SplitN(l, "|", 3)[1]
			for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
				msgs = append(msgs, m[1])
			}
		}
	}
	if len(msgs) < 20 {
		t.Fatalf("found %d messages in docs/operations.md's log table (want its rows: | message (`msg=`) | ...)", len(msgs))
	}
	var lits []string
	for _, dir := range []string{"scheduler", "hexclient"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					lits = append(lits, s)
				}
				return true
			})
		}
	}
	for _, m := range msgs {
		if state.State(m).Valid() {
			continue
		}
		prefix, partial := strings.CutSuffix(m, "...")
		found := slices.ContainsFunc(lits, func(l string) bool {
			return l == m || partial && strings.HasPrefix(l, prefix)
		})
		if !found {
			t.Errorf("docs/operations.md lists the log message %q, which the code does not log", m)
		}
	}
}
