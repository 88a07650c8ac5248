package planner

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const limitsProject = "5a8591dd-4039-49df-9202-96385ba3eff8"

// bombYAML is 10 matrix keys of 10 values each: 10^10 combinations on 1 January.
func bombYAML() string {
	var b strings.Builder
	b.WriteString("schedules:\n  - name: bomb\n    project: " + limitsProject + "\n    cron: \"0 0 1 1 *\"\n    matrix:\n")
	for k := 0; k < 10; k++ {
		fmt.Fprintf(&b, "      k%d: [", k)
		for v := 0; v < 10; v++ {
			if v > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "v%d", v)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func parseErrors(t *testing.T, text string) []Problem {
	t.Helper()
	_, err := Parse("limits.yaml", []byte(text))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Parse accepted the config (err %v)", err)
	}
	return ce.Problems
}

func wantProblem(t *testing.T, ps []Problem, line int, field, contains string) {
	t.Helper()
	for _, p := range ps {
		if p.Line == line && p.Field == field && strings.Contains(p.Message, contains) {
			return
		}
	}
	t.Errorf("no problem at line %d field %s containing %q; got:\n%v", line, field, contains, ps)
}

// TestMatrixBomb: a matrix of 10^10 combinations is refused at its line, counted not
// built; so is a fan-out that no firing time can ever fit (61 runs at once under 60 per
// hour with a 15m window), although the 8-day sample holds no 1 January.
func TestMatrixBomb(t *testing.T) {
	ps := parseErrors(t, bombYAML())
	wantProblem(t, ps, 5, "schedules[0].matrix", "10000000000 combinations per firing time (10 keys); hexcron allows at most 10000")

	var vals []string
	for i := range 61 {
		vals = append(vals, fmt.Sprintf("r%d", i))
	}
	text := "schedules:\n  - name: wide\n    project: " + limitsProject + "\n    cron: \"0 0 1 1 *\"\n    matrix:\n      region: [" + strings.Join(vals, ", ") + "]\n"
	ps = parseErrors(t, text)
	wantProblem(t, ps, 5, "schedules[0].matrix",
		"61 combinations are due at each firing time, but budget.triggers[1] (60 per 1h) admits at most 60 triggers within the schedule's 15m window: no firing time can ever fit")

	// 60 fit: accepted.
	text = strings.Replace(text, ", r60]", "]", 1)
	if _, err := Parse("limits.yaml", []byte(text)); err != nil {
		t.Errorf("60 combinations under 60 per hour: %v", err)
	}
	// min_spacing counts too: 5 runs 1m apart need a window of at least 4m.
	text = "budget:\n  min_spacing: 1m\nschedules:\n  - name: spaced\n    project: " + limitsProject +
		"\n    cron: \"0 0 1 1 *\"\n    window: 3m\n    matrix:\n      region: [a, b, c, d, e]\n"
	ps = parseErrors(t, text)
	wantProblem(t, ps, 8, "schedules[0].matrix", "budget.min_spacing (1m) admits at most 4 triggers within the schedule's 3m window")
}

// TestFanoutNeverBuildsBomb: a schedule built in code with a 10^10 matrix (skipping
// validation) is counted, never expanded: Fanout builds nothing and Expand skips it.
func TestFanoutNeverBuildsBomb(t *testing.T) {
	m := map[string][]string{}
	for k := 0; k < 10; k++ {
		m[fmt.Sprintf("k%d", k)] = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	}
	spec, err := parseCron("* * * * *")
	if err != nil {
		t.Fatal(err)
	}
	s := Schedule{Name: "bomb", Project: limitsProject, Location: time.UTC, Window: time.Minute, Matrix: m, spec: spec}
	if n := s.FanoutCount(); n != 10_000_000_000 {
		t.Fatalf("FanoutCount = %d", n)
	}
	if f := s.Fanout(); f != nil {
		t.Fatalf("Fanout built %d combinations", len(f))
	}
	cfg := &Config{Location: time.UTC, Budget: Budget{Triggers: DefaultTriggers()}, Schedules: []Schedule{s}}
	if fs := Expand(cfg, Input{From: t0, Horizon: time.Hour}); len(fs) != 0 {
		t.Errorf("Expand built %d firings", len(fs))
	}
	// Saturation.
	for k := 10; k < 40; k++ {
		m[fmt.Sprintf("k%d", k)] = m["k0"]
	}
	if n := s.FanoutCount(); n != 1<<63-1 {
		t.Errorf("FanoutCount of 10^40 = %d, want saturation", n)
	}
}

// TestPlanBounded: a plan whose horizon holds more than MaxFirings firings covers only
// the whole days that fit, and says so.
func TestPlanBounded(t *testing.T) {
	cfg, err := Parse("limits.yaml", []byte("budget:\n  triggers: [{limit: 100000, per: 1s}]\nschedules:\n  - name: busy\n    project: "+
		limitsProject+"\n    cron: \"* * * * * *\"\n    window: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	res := Plan(cfg, Input{From: t0, Horizon: 30 * 24 * time.Hour}) // 2,592,000 firings asked
	if !res.Truncated || res.Horizon != 48*time.Hour {
		t.Errorf("Truncated %v, Horizon %s; want true, 48h (172800 firings fit in %d)", res.Truncated, res.Horizon, MaxFirings)
	}
	if n := len(res.Firings) + len(res.Unplaced); n != 172800 {
		t.Errorf("%d firings, want 172800", n)
	}
	small := Plan(cfg, Input{From: t0, Horizon: time.Hour})
	if small.Truncated || len(small.Firings) != 3600 {
		t.Errorf("an hour: truncated %v, %d firings", small.Truncated, len(small.Firings))
	}
}

// TestConfigFileLimits: what is not a regular file, or is too large, is refused before
// it is read (a FIFO must not block, /dev/zero must not be read).
func TestConfigFileLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("- 1\n"), 50<<20/4), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{big, "the file is 52428800 bytes; hexcron reads schedule files of at most 4194304 bytes (4 MiB)"},
		{fifo, "not a regular file (a FIFO)"},
		{"/dev/zero", "not a regular file (a character device)"},
		{dir, "not a regular file (a directory)"},
	} {
		_, err := LoadFile(c.path)
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].File != c.path || !strings.Contains(ce.Problems[0].Message, c.want) {
			t.Errorf("LoadFile(%s) = %v, want a problem naming the file: %q", c.path, err, c.want)
		}
	}
}

// TestTokenLimit: a file under the size limit but with too many tokens is refused, and
// the YAML parser stopped reading long before the end of the file.
func TestTokenLimit(t *testing.T) {
	data := []byte("x-many: [" + strings.Repeat("1,", 1_500_000) + "1]\nschedules: []\n")
	if len(data) > MaxConfigBytes {
		t.Fatalf("test file too large: %d", len(data))
	}
	ps := parseErrors(t, string(data))
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "more than 100000 YAML tokens by this line") || ps[0].Line != 1 {
		t.Errorf("problems: %v", ps)
	}
	r := bytes.NewReader(data)
	c := &tokenCounter{r: r, limit: MaxTokens}
	var doc yaml.Node
	if err := yaml.NewDecoder(c).Decode(&doc); err == nil || !c.exceeded {
		t.Fatalf("decode: %v (exceeded %v)", err, c.exceeded)
	}
	if read := len(data) - r.Len(); read > 4*MaxTokens {
		t.Errorf("the parser read %d of %d bytes before stopping", read, len(data))
	}
}

// TestTokenCountBoundsNodes: the token count bounds the nodes yaml.v3 builds, on the
// test configs and on shapes with many implicit nulls.
func TestTokenCountBoundsNodes(t *testing.T) {
	inputs := []string{":", "- :\n- :\n- :\n", "[:, :, :]", "{a, b, c}", "? a\n? b\n", "- - - -\n", "a:\nb:\nc:\n",
		"&a [*a, *a]", "--- a\n", "!!null", "[[[[]]]]", "{: }"}
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		if err := checkTokenBound([]byte(in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// checkTokenBound is nil when yaml.v3 rejects data or builds at most 3 nodes per
// counted token plus three.
func checkTokenBound(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil
	}
	if nodes, tokens := countNodes(&doc), countTokens(data); nodes > 3*tokens+3 {
		return fmt.Errorf("%d nodes from %d tokens", nodes, tokens)
	}
	return nil
}

// TestHostileValues: item 9 of issue 11, each a clear message at its line and field.
func TestHostileValues(t *testing.T) {
	head := "schedules:\n  - name: a\n    project: " + limitsProject + "\n    cron: \"0 6 * * *\"\n"
	cases := []struct {
		name, text  string
		line        int
		field, want string
	}{
		{"int over 2^31", "budget:\n  max_running: 2147483648\n" + head, 2, "budget.max_running", `"2147483648" is too large: at most 2147483647`},
		{"int under -2^31", head + "    priority: -2147483649\n", 5, "schedules[0].priority", `"-2147483649" is too small: at least -2147483648`},
		{"empty reads", "budget:\n  reads: []\n" + head, 2, "budget.reads", "needs at least one rule like {limit: 30, per: 1m} (the default is 30 status and list calls per 1m)"},
		{"huge window", head + "    window: 2562047h\n", 5, "schedules[0].window", "2562047h is longer than the longest window hexcron plans, 31d (744h)"},
		{"null in matrix", head + "    matrix:\n      region: [emea, ~]\n", 6, "schedules[0].matrix.region[1]", `is null ("~"): write the value in quotes if you mean that text`},
		{"null word in matrix", head + "    matrix:\n      region: [null, emea]\n", 6, "schedules[0].matrix.region[0]", `is null ("null")`},
		{"bidi override", head + "    matrix:\n      region: [\"em\\u202Eea\"]\n", 6, "schedules[0].matrix.region[0]", "invisible or control character U+202E"},
		{"bell", head + "    matrix:\n      region: [\"em\\aea\"]\n", 6, "schedules[0].matrix.region[0]", "control character U+0007"},
		{"zero width", head + "    matrix:\n      region: [\"em\u200bea\"]\n", 6, "schedules[0].matrix.region[0]", "U+200B"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, parseErrors(t, c.text), c.line, c.field, c.want)
		})
	}
	// Quoted, the word null is a value.
	if _, err := Parse("ok.yaml", []byte(head+"    matrix:\n      region: [\"null\", emea]\n")); err != nil {
		t.Errorf("quoted null: %v", err)
	}
}

// TestTokenAnywhere: a value that looks like a Hex token is refused wherever it is, and
// no message repeats it.
func TestTokenAnywhere(t *testing.T) {
	const tok = "hxtp_Secret123abc"
	head := "schedules:\n  - name: a\n    project: " + limitsProject + "\n    cron: \"0 6 * * *\"\n"
	cases := []struct {
		name, text string
		line       int
		field      string
	}{
		{"params", head + "    params: {key: " + tok + "}\n", 5, "schedules[0].params.key"},
		{"matrix", head + "    matrix:\n      region: [emea, " + tok + "]\n", 6, "schedules[0].matrix.region[1]"},
		{"x- key", "x-secrets: {api: " + tok + "}\n" + head, 1, "x-secrets.api"},
		{"workspace token in a list", "x-list: [a, hxtw_Other987]\n" + head, 1, "x-list[1]"},
		{"name", strings.Replace(head, "name: a", "name: "+strings.ToLower(tok), 1), 2, "schedules[0].name"},
		{"key", head + "    params: {" + tok + ": 1}\n", 5, "schedules[0].params.(key)"},
		{"comment", head + "    # old token " + tok + "\n    window: 5m\n", 6, "schedules[0].window"},
		{"token key", "hex:\n  token: " + tok + "\n" + head, 2, "hex.token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("tok.yaml", []byte(c.text))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("accepted: %v", err)
			}
			all := ce.Error()
			for _, w := range ce.Warnings {
				all += w.String()
			}
			if strings.Contains(strings.ToLower(all), "secret123") || strings.Contains(all, "Other987") {
				t.Errorf("a message repeats the token:\n%s", all)
			}
			wantProblem(t, ce.Problems, c.line, c.field, "Hex API token")
			if n := strings.Count(all, "\n") + 1; c.name == "token key" && n != 1 {
				t.Errorf("a token under token: reported %d times:\n%s", n, all)
			}
		})
	}
}
