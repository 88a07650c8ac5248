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
		reads.Status = nil
		for _, r := range conf.Budget.Reads {
			reads.Status = append(reads.Status, r)
		}
	}
	return b, reads
}
