package planner

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits on what a config may ask for, so that no file (a mistake or a hostile one)
// can make validate, plan or a running daemon's reload take unbounded time or memory.
// docs/config.md states them.
const (
	// MaxConfigBytes is the largest schedules file hexcron reads (4 MiB: a real file
	// with thousands of schedules is a few hundred KB).
	MaxConfigBytes = 4 << 20
	// MaxTokens bounds the YAML tokens of a file (words, keys, values and the
	// punctuation - : , [ ] { } ?), counted while the YAML parser reads the file: past
	// it the parser is stopped before it builds more nodes.
	MaxTokens = 100_000
	// MaxFanout is the most matrix combinations one schedule may have per firing time.
	MaxFanout = 10_000
	// MaxWindow is the longest window a schedule may have.
	MaxWindow = 31 * 24 * time.Hour
	// MaxFirings bounds one plan: Plan stops its horizon early rather than expand more
	// firings (Result.Truncated says so).
	MaxFirings = 200_000
	// MaxHorizon is the longest horizon `hexcron plan` and `hexcron run` accept.
	MaxHorizon = 366 * 24 * time.Hour
)

// readConfigFile reads path, refusing before reading anything a file that is not a
// regular file (a FIFO would block, /dev/zero never ends) or is larger than
// MaxConfigBytes.
func readConfigFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; no effect on regular files.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fileProblem(path, fmt.Sprintf("not a regular file (%s): hexcron reads its schedules from a plain file", fileKind(fi.Mode())))
	}
	if fi.Size() > MaxConfigBytes {
		return nil, fileProblem(path, tooBig(fi.Size()))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", path, err)
	}
	if len(data) > MaxConfigBytes { // it grew while being read
		return nil, fileProblem(path, tooBig(int64(len(data))))
	}
	return data, nil
}

func tooBig(size int64) string {
	return fmt.Sprintf("the file is %d bytes; hexcron reads schedule files of at most %d bytes (%d MiB)", size, MaxConfigBytes, MaxConfigBytes>>20)
}

func fileProblem(path, msg string) error {
	return &ConfigError{Problems: []Problem{{File: path, Message: msg}}}
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// errTooManyTokens stops the YAML parser (returned by tokenCounter.Read).
var errTooManyTokens = errors.New("too many YAML tokens")

// tokenCounter passes the config's bytes to the YAML parser as it asks for them and
// counts the tokens they hold: every maximal run of bytes that are not blanks or YAML
// punctuation, and every punctuation byte. Each node the parser builds starts at such
// a token or is an implicit null or collection next to one (at most three nodes per
// token, plus the document), so the count bounds the nodes from above. Once the count
// passes limit, the next Read fails and the parser stops: it never builds more than a
// bounded number of nodes, whatever the file holds.
type tokenCounter struct {
	r        io.Reader
	limit    int
	tokens   int
	lines    int // newlines passed to the parser
	inWord   bool
	exceeded bool
}

func (c *tokenCounter) Read(p []byte) (int, error) {
	if c.exceeded {
		return 0, errTooManyTokens
	}
	n, err := c.r.Read(p)
	for _, b := range p[:n] {
		switch b {
		case '\n':
			c.lines++
			c.inWord = false
		case ' ', '\t', '\r':
			c.inWord = false
		case '-', ':', '?', ',', '[', ']', '{', '}':
			c.tokens++
			c.inWord = false
		default:
			if !c.inWord {
				c.tokens++
				c.inWord = true
			}
		}
	}
	if c.tokens > c.limit {
		c.exceeded = true
	}
	return n, err
}

// countTokens is the tokenCounter's count for a whole input (tests, fuzzing).
func countTokens(data []byte) int {
	c := &tokenCounter{r: nil, limit: math.MaxInt}
	c.r = &sliceReader{b: data}
	_, _ = io.Copy(io.Discard, c)
	return c.tokens
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// countNodes counts the nodes of a parsed document (aliases not followed).
func countNodes(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	total := 1
	for _, c := range n.Content {
		total += countNodes(c)
	}
	return total
}

// FanoutCount is the number of matrix combinations (1 without a matrix), computed
// without building them; it saturates at math.MaxInt64.
func (s *Schedule) FanoutCount() int64 {
	return fanoutCount(s.Matrix)
}

func fanoutCount(m map[string][]string) int64 {
	n := int64(1)
	for _, vals := range m {
		v := int64(len(vals))
		if v == 0 {
			return 0
		}
		if n > math.MaxInt64/v {
			return math.MaxInt64
		}
		n *= v
	}
	return n
}

// room is the most triggers rule limit-per-per admits in a closed span of length span
// at whole seconds: every window [t, t+per) holds at most limit of them.
func room(limit int, per, span time.Duration) int64 {
	return int64(limit) * (int64(span/per) + 1)
}

// checkFanout refuses a matrix whose combinations, all due at one firing time, can
// never fit in the schedule's window under the tightest trigger rule (or min_spacing),
// whatever the date, and any matrix of more than MaxFanout combinations. It reports
// false when it refused.
func (d *decoder) checkFanout(cfg *Config, s *Schedule, r *rawSched, f string) bool {
	fan := s.FanoutCount()
	if fan <= 1 {
		return true
	}
	report := func(format string, a ...any) bool {
		d.errs = append(d.errs, Problem{File: d.file, Line: r.mline, Field: join(f, "matrix"), Message: fmt.Sprintf(format, a...)})
		return false
	}
	if fan > MaxFanout {
		return report("%s combinations per firing time (%d keys); hexcron allows at most %d", fanText(fan), len(s.Matrix), MaxFanout)
	}
	for k, rule := range cfg.Budget.Triggers {
		if allowed := room(rule.Effective(), rule.Per, s.Window); fan > allowed {
			desc := fmt.Sprintf("%d per %s", rule.Effective(), FormatDuration(rule.Per))
			if rule.Reserve > 0 {
				desc += fmt.Sprintf(": limit %d minus reserve %d", rule.Limit, rule.Reserve)
			}
			return report("%d combinations are due at each firing time, but budget.triggers[%d] (%s) admits at most %d triggers within the schedule's %s window: no firing time can ever fit",
				fan, k, desc, allowed, FormatDuration(s.Window))
		}
	}
	if sp := cfg.Budget.MinSpacing; sp > 0 {
		if allowed := room(1, sp, s.Window); fan > allowed {
			return report("%d combinations are due at each firing time, but budget.min_spacing (%s) admits at most %d triggers within the schedule's %s window: no firing time can ever fit",
				fan, FormatDuration(sp), allowed, FormatDuration(s.Window))
		}
	}
	return true
}

func fanText(n int64) string {
	if n == math.MaxInt64 {
		return "more than 9223372036854775806"
	}
	return fmt.Sprint(n)
}
