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
