package main

import (
	"strings"
	"testing"
)

// TestHelpDefaultsOnce: no flag of any command's --help states its default twice (in
// its text and again in the "(default ...)" the flag package adds).
func TestHelpDefaultsOnce(t *testing.T) {
	for _, c := range commands() {
		e, _, errb := testEnv(t, fixtureNow, nil)
		if code := run([]string{c.name, "--help"}, e); code != exitOK {
			t.Fatalf("%s --help: exit %d", c.name, code)
		}
		// A flag is its "  -name" line and the indented lines after it.
		var flag []string
		check := func() {
			if text := strings.Join(flag, " "); strings.Count(text, "(default") > 1 {
				t.Errorf("hexcron %s --help states a default twice: %s", c.name, text)
			}
		}
		for _, l := range strings.Split(errb.String(), "\n") {
			if strings.HasPrefix(l, "  -") {
				check()
				flag = nil
			}
			if flag != nil || strings.HasPrefix(l, "  -") {
				flag = append(flag, strings.TrimSpace(l))
			}
		}
		check()
	}
}
