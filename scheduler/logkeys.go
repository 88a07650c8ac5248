package scheduler

// Stable slog attribute keys. journalctl filters (`journalctl -u hexcron | grep
// schedule=revenue-dashboard`) and log pipelines rely on these names: change none.
const (
	keySchedule = "schedule"
	keyProject  = "project"
	keySlot     = "slot"
	keyRun      = "run"
	keyStatus   = "status"
	keyAttempt  = "attempt"
	keyWait     = "wait"
	keyErr      = "err"
	keyPlanned  = "planned"
	keyNominal  = "nominal"
	keyShift    = "shift"
	keyReason   = "reason"
	keyURL      = "url"
	keyTraceID  = "trace_id"
	keyElapsed  = "elapsed"
)
