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

	// Kind names what is wrong without the values of one occurrence, so that the same
	// warning on many schedules can be shown once (GroupWarnings); "" when it has none.
	Kind string
	// Schedule is the name of the schedule the problem is about, "" when none.
	Schedule string
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

// GroupWarnings returns the warnings as lines for people, in order: a warning is its
// own line (String) unless more than three share its Kind; those are one line with
// their count and the first three schedules, "FILE: 300 schedules: KIND (a at line 12,
// b at line 20, c at line 28 and 297 more)". grouped reports whether any line stands
// for several warnings.
func GroupWarnings(ws []Problem) (lines []string, grouped bool) {
	const named = 3 // schedules named on a grouped line
	byKind := map[string][]Problem{}
	for _, w := range ws {
		if w.Kind != "" {
			byKind[w.Kind] = append(byKind[w.Kind], w)
		}
	}
	done := map[string]bool{}
	for _, w := range ws {
		group := byKind[w.Kind]
		if w.Kind == "" || len(group) <= named {
			lines = append(lines, w.String())
			continue
		}
		if done[w.Kind] {
			continue
		}
		done[w.Kind] = true
		grouped = true
		var names []string
		for _, g := range group[:min(named, len(group))] {
			name := g.Schedule
			if name == "" {
				name = g.Field
			}
			names = append(names, fmt.Sprintf("%s at line %d", name, g.Line))
		}
		list := strings.Join(names, ", ")
		if len(group) > named {
			list += fmt.Sprintf(" and %d more", len(group)-named)
		}
		lines = append(lines, fmt.Sprintf("%s: %d schedules: %s (%s)", w.File, len(group), w.Kind, list))
	}
	return lines, grouped
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
