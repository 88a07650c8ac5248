package hexclient

// Stable slog attribute keys used by every log line of this package.
const (
	KeyProject = "project"
	KeySlot    = "slot"
	KeyRun     = "run"
	KeyAttempt = "attempt"
	KeyWait    = "wait"
	KeyErr     = "err"
	KeyTraceID = "trace_id"
	KeyStatus  = "status"
)

// Log messages other packages and tests look for: each text is kept here once.
const (
	// MsgTrigger429 is the WARN of a 429 to a trigger the budget had admitted.
	MsgTrigger429 = "Hex answered 429 to a trigger the budget had admitted: probably another client triggers as this Hex user; shrinking the effective trigger limits"
	// MsgRead429 is the WARN of a 429 to a read the read budget had admitted.
	MsgRead429 = "Hex answered 429 to a read the read budget had admitted: probably another client calls Hex as this Hex user; reads paused"
	// MsgWaitingForBudget is the DEBUG line of a trigger waiting for the trigger budget.
	MsgWaitingForBudget = "waiting for trigger budget"
)
