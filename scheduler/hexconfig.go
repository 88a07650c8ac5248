package scheduler

import (
	"hexcron/hexclient"
	"hexcron/planner"
)

// ClientLimits maps a config's budget onto the Hex client: the trigger rules with
// their reserves and min_spacing, and every rule of budget.reads as a cap on the
// status calls (each rule applies on its own; Hex's 60 calls per minute of any kind
// stays the all-calls cap).
func ClientLimits(conf *planner.Config) (hexclient.Budget, hexclient.ReadLimits) {
	b := conf.Budget.Trigger() // the model the plan places firings by
	reads := hexclient.DefaultReadLimits()
	if len(conf.Budget.Reads) > 0 {
		reads.Status = append([]hexclient.Rule(nil), conf.Budget.Reads...)
	}
	return b, reads
}

// ClientConfig is the one mapping of a validated config onto the Hex client: deps
// carries what the config file does not say (the token source, clock, logger, ledger,
// observer, version, HTTP client, a simulator's base URL); ClientConfig adds conf's
// base URL (unless deps names one), its trigger budget and its read limits.
// `hexcron run`, `trigger` and `check` build their clients with it.
func ClientConfig(conf *planner.Config, deps hexclient.Config) hexclient.Config {
	deps.Budget, deps.ReadLimits = ClientLimits(conf)
	if deps.BaseURL == "" {
		deps.BaseURL = conf.Hex.BaseURL
	}
	return deps
}
