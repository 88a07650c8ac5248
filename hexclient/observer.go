package hexclient

import "time"

// Observer receives counts for metrics. Every method must be cheap and must not block.
// A nil Config.Observer is fine.
type Observer interface {
	// OnTrigger is called once per RunProject attempt with its outcome: the attempt's
	// Class name ("ok", "rate_limited", "kernel_cap", "ambiguous", "auth", "permanent",
	// "unreachable", "canceled"), and once per Trigger call that ends, with "created",
	// "adopted", "failed", "deadline" or "canceled" prefixed by "trigger_".
	OnTrigger(outcome string)
	// On429 is called for every 429; predicted is false when the budget had admitted
	// the request (probably another client of this Hex user).
	On429(predicted bool)
	// OnReconcile is called once per reconcile with "adopted", "none" or "error".
	OnReconcile(result string)
	// OnHold is called when triggering is held ("kernel_cap", "rate_limited", "auth")
	// until the given instant (zero for "until a probe succeeds").
	OnHold(reason string, until time.Time)
}

type nopObserver struct{}

func (nopObserver) OnTrigger(string)         {}
func (nopObserver) On429(bool)               {}
func (nopObserver) OnReconcile(string)       {}
func (nopObserver) OnHold(string, time.Time) {}
