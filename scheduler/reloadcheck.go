package scheduler

import (
	"fmt"

	"hexcron/planner"
)

// restartOnly lists the changes between the config in force and a reloaded one that a
// reload cannot apply: the Hex client (its base URL and token file) is built once at
// start, and so is the gateway's listener (its address and TLS files; its clients
// follow a reload). A reload with any of them is refused, so that triggers never go on to the old
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
	// The gateway's listener is opened at start: where it listens and how it speaks.
	oldGW, nextGW := gatewayServed(old.Gateway), gatewayServed(next.Gateway)
	if oldGW != nextGW {
		out = append(out, fmt.Sprintf("the gateway's listen or tls changed (from %s to %s)", oldGW, nextGW))
	}
	return out
}

// gatewayServed describes where and how the gateway listens: "none", or the address
// with its TLS files.
func gatewayServed(g *planner.Gateway) string {
	switch {
	case g == nil:
		return "none"
	case g.TLS == nil:
		return g.Listen + " (plain HTTP)"
	}
	return fmt.Sprintf("%s (tls cert %s, key %s)", g.Listen, g.TLS.Cert, g.TLS.Key)
}
