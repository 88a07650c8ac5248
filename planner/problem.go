package planner

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong (or suspicious) in a config file, with where it is.
type Problem struct {
	File    string // the config file's name as given to Parse or LoadFile
	Line    int    // 1-based line; 0 when the problem concerns the whole file
	Field   string // the key path, e.g. "schedules[3].cron"; "" for the whole file
	Message string // what is wrong and, where possible, what to do
}

// String formats the problem as FILE:LINE: field: message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ConfigError is returned by Parse and LoadFile when a config has errors; it carries
// every error found, not only the first.
type ConfigError struct {
	Problems []Problem // the errors, sorted by line
	Warnings []Problem // warnings found on the way; not part of Error()
}

// Error lists the problems one per line as FILE:LINE: field: message.
func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
