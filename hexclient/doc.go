// Package hexclient is hexcron's client for the Hex API: typed calls on Hex's current
// plural paths, one classification of every HTTP outcome, the trigger budget (a sliding
// log shared through a Ledger), backoff that never bypasses that budget, and the
// idempotent Trigger that never creates a second run for one slot knowingly.
//
// It knows nothing of schedules, cron or YAML. Time comes from an injected clock.Clock
// and jitter from an injected *rand.Rand, so everything here runs on virtual time.
// The Hex token is never logged, never put in an error string and never sent to a
// plain-HTTP URL other than loopback.
package hexclient
