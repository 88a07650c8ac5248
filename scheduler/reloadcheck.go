package scheduler

import (
	"fmt"

	"hexcron/planner"
)

// restartOnly lists the changes between the config in force and a reloaded one that a
// reload cannot apply: the Hex client (its base URL and token file) is built once at
// start. A reload with any of them is refused, so that triggers never go on to the old
// host while the log says the new config runs.
func restartOnly(old, next *planner.Config) []string {
	if old == nil || next == nil {
		return nil
	}
	var out []string
	if old.Hex.BaseURL != next.Hex.BaseURL {
		out = append(out, fmt.Sprintf("hex.base_url changed from %s to %s", old.Hex.BaseURL, next.Hex.BaseURL))
	}
	if old.Hex.TokenFile != next.Hex.TokenFile {
		out = append(out, fmt.Sprintf("hex.token_file changed from %q to %q", old.Hex.TokenFile, next.Hex.TokenFile))
	}
	return out
}
